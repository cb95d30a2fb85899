"""Protocol client for ParcelTrack, the tutorial's example API. It knows nothing about chat.

ParcelTrack is a websocket carrying JSON text frames. A request is ``{"id", "op", ...}`` and
its reply carries the same id with ``"ok": true`` or ``"ok": false, "code": ...``:

- ``hello {key}`` must come first; a wrong key is refused with ``bad_key``;
- ``track {parcel}`` answers ``{"parcel": {"id", "status", "place"}}``, or ``unknown_parcel``;
- ``watch {parcel}`` answers like ``track``; from then on the server pushes
  ``{"event": "moved", "parcel": {...}}`` each time the parcel moves, until ``unwatch``.
  Watches last as long as the connection: after a reconnect they must be sent again.

Documented limits: parcel ids look like ``PX-1001`` (two letters, a dash, 4 to 10 digits), and
one connection watches at most 20 parcels (``too_many_watches``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from bot import NotConnected, ServiceError, ServiceTimeout, UserError, backoff_delays

log = logging.getLogger(__name__)

SERVICE = "parcels"
PARCEL_ID = re.compile(r"^[A-Z]{2}-\d{4,10}$")
MAX_WATCHES = 20

#: the API's result codes as sentences for chat users; the API's own text is never shown
MESSAGES = {
    "bad_key": "ParcelTrack refused our API key; an admin must check plugins.parcels.key.",
    "unknown_parcel": "ParcelTrack does not know that parcel.",
    "too_many_watches": f"ParcelTrack watches at most {MAX_WATCHES} parcels at a time.",
    "bad_reply": "ParcelTrack sent a reply we do not understand.",
}


class ParcelError(ServiceError):
    """ParcelTrack refused a request; ``code`` is its own result code."""

    def __init__(self, code: str) -> None:
        message = MESSAGES.get(code, f"ParcelTrack refused the request ({code}).")
        super().__init__(message, service=SERVICE, code=code)


@dataclass(frozen=True)
class Parcel:
    id: str
    status: str
    place: str

    @classmethod
    def from_wire(cls, data: Any) -> Parcel:
        try:
            return cls(str(data["id"]), str(data["status"]), str(data.get("place") or "unknown"))
        except (KeyError, TypeError, AttributeError):
            raise ParcelError("bad_reply") from None

    def describe(self) -> str:
        return f"{self.id}: {self.status.replace('_', ' ')} at {self.place}"


def parcel_id(text: str) -> str:
    """A parcel id as users type it ("px-1001"), checked and normalised ("PX-1001")."""
    candidate = text.strip().upper()
    if not PARCEL_ID.match(candidate):
        raise UserError(f"{text.strip()!r} is not a parcel id; they look like PX-1001.")
    return candidate


class ParcelClient:
    """One connection to ParcelTrack, kept open by :meth:`run`, shared by every command."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        on_moved: Callable[[Parcel], None] = lambda parcel: None,
        timeout: float = 5.0,
        reconnect_base: float = 0.2,
        reconnect_cap: float = 15.0,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.on_moved = on_moved
        #: parcels to watch; sent again after every reconnect, since the API forgets them
        self.watched: set[str] = set()
        #: why the connection is down, for bot_health (never contains the key)
        self.last_error = "not connected yet"
        self._key = key
        self._reconnect = (reconnect_base, reconnect_cap)
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0

    @property
    def connected(self) -> bool:
        return self._ws is not None

    # ------------------------------------------------------------------ connection

    async def run(self) -> None:
        """Stay connected until cancelled, reconnecting with backoff."""
        delays = backoff_delays(*self._reconnect)
        while True:
            try:
                async with connect(self.url, open_timeout=self.timeout) as ws:
                    await self._hello(ws)
                    delays = backoff_delays(*self._reconnect)
                    await self._read(ws)
                self.last_error = "the connection was closed"
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI) as exc:
                self.last_error = f"cannot reach ParcelTrack ({type(exc).__name__})"
            except ParcelError as exc:
                self.last_error = exc.message
            finally:
                self._lost()
            await asyncio.sleep(next(delays))

    async def wait_connected(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            message = f"ParcelTrack is not reachable: {self.last_error}."
            raise ServiceTimeout(message, service=SERVICE) from None

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _hello(self, ws: ClientConnection) -> None:
        await ws.send(json.dumps({"id": 0, "op": "hello", "key": self._key}))
        try:
            reply = json.loads(await asyncio.wait_for(ws.recv(), self.timeout))
        except ValueError:
            raise ParcelError("bad_reply") from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            raise ParcelError(str(reply.get("code") if isinstance(reply, dict) else "bad_reply"))
        # Watches do not survive a reconnect: send them again. Their replies are not awaited
        # (the reader is not running yet); a parcel that vanished meanwhile just stays quiet.
        for number, parcel in enumerate(sorted(self.watched), start=1):
            await ws.send(json.dumps({"id": -number, "op": "watch", "parcel": parcel}))
        self._ws = ws
        self.last_error = ""
        self._connected.set()

    async def _read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            try:
                message = json.loads(frame)
            except ValueError:
                continue  # tolerant in what we accept: skip what does not parse
            if not isinstance(message, dict):
                continue
            if message.get("event") == "moved":
                self._moved(message.get("parcel"))
                continue
            future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)

    def _moved(self, data: Any) -> None:
        try:
            self.on_moved(Parcel.from_wire(data))
        except Exception:
            # A bad push or a failing callback must never end the connection.
            log.exception("a ParcelTrack push could not be handled")

    def _lost(self) -> None:
        self._ws = None
        self._connected.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._not_connected())
        self._pending.clear()

    def _not_connected(self) -> NotConnected:
        message = f"ParcelTrack is not connected right now: {self.last_error}."
        return NotConnected(message, service=SERVICE)

    # ------------------------------------------------------------------ requests

    async def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        ws = self._ws
        if ws is None:
            raise self._not_connected()
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"id": request_id, "op": op, **fields}))
            reply = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise ServiceTimeout("ParcelTrack did not answer in time.", service=SERVICE) from None
        finally:
            self._pending.pop(request_id, None)
        if not reply.get("ok"):
            raise ParcelError(str(reply.get("code") or "error"))
        return reply

    async def track(self, parcel: str) -> Parcel:
        reply = await self._request("track", parcel=parcel_id(parcel))
        return Parcel.from_wire(reply.get("parcel"))

    async def watch(self, parcel: str) -> Parcel:
        """Start hearing about a parcel's moves; returns where it is now."""
        parcel = parcel_id(parcel)
        if parcel not in self.watched and len(self.watched) >= MAX_WATCHES:
            raise ParcelError("too_many_watches")
        reply = await self._request("watch", parcel=parcel)
        self.watched.add(parcel)
        return Parcel.from_wire(reply.get("parcel"))

    async def unwatch(self, parcel: str) -> None:
        parcel = parcel_id(parcel)
        self.watched.discard(parcel)
        await self._request("unwatch", parcel=parcel)
