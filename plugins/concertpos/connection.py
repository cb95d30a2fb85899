"""One websocket connection to a ConcertPOS gateway: shards, reconnects, reply routing.

Why it is shaped like this:

* **Replies carry no request id.** They are matched by ``result.event`` (``payitems`` answers
  as ``payitem``) in order per event. Error replies name no event, so they go to the oldest
  request still waiting (``ratelimit`` names its command and is routed by that; an error
  named after a command, like the official client's ``getlicense``, goes to that command).
  A request that times out leaves a placeholder that swallows its late reply, so the reply
  can never be handed to the next caller; if the reply never comes, the connection is
  recycled to get back in step.
* **The server's rate limit must never trip.** Every request spends its points from the
  :class:`~.ratelimit.RateBudget` before it is sent; a ``ratelimit`` reply pauses the budget
  for its ``retry_after``.
* **Shards.** A connection failure moves on to the next URL; after a whole round fails the
  connection backs off (``bot.backoff``) and starts over. A connection that drops fails every
  waiting request at once (a sale with :class:`~.errors.OutcomeUnknown`: it may have been
  booked) and is re-established in the background.

The api key is added to every request here and nowhere else; it is never logged, and neither
are frames (websockets would log them, key included, at DEBUG).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.backoff import backoff_delays

from .errors import (
    ConcertPOSNotConnected,
    ConcertPOSTimeout,
    OutcomeUnknown,
    RateLimited,
    error_from_reply,
)
from .models import ConnectionState, PosEvent, as_text
from .ratelimit import RateBudget

log = logging.getLogger(__name__)
#: websockets logs every frame at DEBUG, and every frame carries the api key: its logger for
#: our connections never passes anything below INFO, whatever level the bot runs at.
wire_log = logging.getLogger(f"{__name__}.wire")
# A filter, not a level: the level stays inherited (quiet at the bot's WARNING), and DEBUG
# records, the ones with frames, never pass even when the bot runs at DEBUG.
wire_log.addFilter(lambda record: record.levelno >= logging.INFO)

#: reply event name -> the command it answers (when they differ)
_COMMAND_OF_EVENT = {"payitem": "payitems"}
#: a connection that lived this long resets the reconnect backoff
_STABLE_AFTER = 10.0
#: the largest frame we accept; an unlimited transaction list can be big
_MAX_FRAME = 16 * 1024 * 1024


def _mark_retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _why(exc: BaseException) -> str:
    """A short, secret-free reason for a failed connection attempt.

    The exception's own text is left out: a handshake failure may quote the request line,
    and a URL's query string can carry something private.
    """
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return type(exc).__name__


def redact_url(url: str) -> str:
    """Scheme, host and path only: a query string may carry something private."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(eq=False, slots=True)
class _Pending:
    """A request waiting for its reply; ``abandoned`` once its caller stopped waiting."""

    seq: int
    command: str
    future: asyncio.Future[Mapping[str, Any]]
    abandoned: bool = False


class PosConnection:
    """The transport under :class:`~.client.ConcertPOSClient`; knows commands only by name.

    ``on_event`` gets every message that answers no request (broadcasts included);
    ``on_reconnect`` is called when a connection comes up again after one was lost.
    """

    def __init__(
        self,
        urls: Sequence[str],
        api_key: str,
        *,
        budget: RateBudget,
        costs: Mapping[str, int],
        on_event: Callable[[PosEvent], None],
        on_reconnect: Callable[[], None],
        timeout: float = 10.0,
        connect_timeout: float = 10.0,
        reconnect_min: float = 0.2,
        reconnect_max: float = 15.0,
        late_reply_grace: float | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one ConcertPOS URL is needed")
        if not api_key:
            raise ValueError("an api key is needed")
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self._urls = list(urls)
        self._api_key = api_key
        self._budget = budget
        self._costs = dict(costs)
        self._publish = on_event
        self._on_reconnect = on_reconnect
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._reconnect = (reconnect_min, reconnect_max)
        self._grace = timeout if late_reply_grace is None else late_reply_grace

        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._url_index = 0
        self._current_url: str | None = None
        self._connected_at: float | None = None
        self._ever_connected = False
        self._reconnects = 0
        self._last_error: str | None = None

        self._seq = 0
        self._send_lock = asyncio.Lock()
        self._by_command: dict[str, deque[_Pending]] = {}
        self._in_order: dict[int, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, wait: float | None = None) -> bool:
        """Start connecting in the background (for good) and wait up to ``wait`` seconds
        (default: ``connect_timeout`` per URL) for the first connection."""
        if self._supervisor is None or self._supervisor.done():
            self._closing = False
            self._supervisor = asyncio.create_task(self._supervise(), name="concertpos")
        limit = self._connect_timeout * len(self._urls) if wait is None else wait
        if not await self.wait_connected(limit):
            log.warning("ConcertPOS: no shard reachable yet; retrying in the background")
            return False
        return True

    async def close(self) -> None:
        """Stop reconnecting, close the connection and fail whatever still waits."""
        self._closing = True
        supervisor, self._supervisor = self._supervisor, None
        ws = self._ws
        if ws is not None:
            await ws.close()
        if supervisor is not None:
            supervisor.cancel()
            try:
                await supervisor
            except asyncio.CancelledError:
                pass
        self._fail_all()
        for task in list(self._tasks):
            task.cancel()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def urls(self) -> tuple[str, ...]:
        """The endpoints tried in order (may hold a query string: do not show them raw)."""
        return tuple(self._urls)

    async def wait_connected(self, within: float) -> bool:
        """Wait up to ``within`` seconds for a connection (e.g. after a reconnect)."""
        try:
            await asyncio.wait_for(self._connected.wait(), within)
        except TimeoutError:
            return False
        return True

    def state(self) -> ConnectionState:
        loop_time = asyncio.get_running_loop().time()
        up = self.connected
        return ConnectionState(
            connected=up,
            url=redact_url(self._current_url) if up and self._current_url else None,
            shard_index=self._url_index if up else None,
            connected_for=(
                loop_time - self._connected_at if up and self._connected_at is not None else None
            ),
            reconnects=self._reconnects,
            last_error=self._last_error,
        )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ connection

    def _delays(self) -> Iterator[float]:
        return backoff_delays(base=self._reconnect[0], cap=self._reconnect[1])

    async def _supervise(self) -> None:
        """Connect, serve, and reconnect with backoff, moving through the shards."""
        loop = asyncio.get_running_loop()
        delays = self._delays()
        failures = 0
        while not self._closing:
            url = self._urls[self._url_index]
            try:
                ws = await connect(
                    url,
                    open_timeout=self._connect_timeout,
                    close_timeout=2,
                    max_size=_MAX_FRAME,
                    logger=wire_log,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_error = f"cannot connect to {redact_url(url)} ({_why(exc)})"
                log.warning("ConcertPOS: %s", self._last_error)
                self._url_index = (self._url_index + 1) % len(self._urls)
                failures += 1
                if failures >= len(self._urls):
                    failures = 0
                    await asyncio.sleep(next(delays))
                continue
            failures = 0
            opened = loop.time()
            await self._serve(ws, url)
            if self._closing:
                break
            self._reconnects += 1
            if loop.time() - opened >= _STABLE_AFTER:
                delays = self._delays()
            await asyncio.sleep(next(delays))

    async def _serve(self, ws: ClientConnection, url: str) -> None:
        loop = asyncio.get_running_loop()
        if self._ever_connected:
            # An updatepos may have been broadcast while we were away.
            self._on_reconnect()
        self._ever_connected = True
        self._ws, self._current_url, self._connected_at = ws, url, loop.time()
        self._last_error = None
        self._connected.set()
        log.info("ConcertPOS: connected to %s", redact_url(url))
        try:
            async for raw in ws:
                try:
                    self._on_message(raw)
                except Exception:
                    log.exception("ConcertPOS: could not handle a message")
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
            self._connected.clear()
            self._fail_all()
            if not self._closing:
                self._last_error = f"the connection to {redact_url(url)} was lost"
                log.warning("ConcertPOS: %s", self._last_error)

    def _fail_all(self) -> None:
        """The connection is gone: no waiting request can get its reply any more."""
        pending = list(self._in_order.values())
        self._in_order.clear()
        self._by_command.clear()
        for item in pending:
            if item.abandoned or item.future.done():
                continue
            if item.command == "payitems":
                item.future.set_exception(
                    OutcomeUnknown("the connection dropped before ConcertPOS confirmed it")
                )
            else:
                item.future.set_exception(
                    ConcertPOSNotConnected(
                        "The connection to ConcertPOS dropped before it answered; try again."
                    )
                )

    # ------------------------------------------------------------------ routing

    def _register(self, item: _Pending) -> None:
        self._by_command.setdefault(item.command, deque()).append(item)
        self._in_order[item.seq] = item

    def _unregister(self, item: _Pending) -> None:
        self._in_order.pop(item.seq, None)
        queue = self._by_command.get(item.command)
        if queue and item in queue:
            queue.remove(item)

    def _take(self, command: str | None) -> _Pending | None:
        """The oldest request waiting for ``command``'s reply, or the oldest of all."""
        if command is not None:
            queue = self._by_command.get(command)
            if not queue:
                return None
            item = queue.popleft()
            self._in_order.pop(item.seq, None)
            return item
        if not self._in_order:
            return None
        item = self._in_order.pop(next(iter(self._in_order)))
        self._by_command[item.command].remove(item)
        return item

    def _on_message(self, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                log.debug("ConcertPOS: ignoring a binary frame")
                return
        try:
            message = json.loads(raw)
        except ValueError:
            log.debug("ConcertPOS: ignoring a frame that is not JSON")
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        result = message.get("result")
        if kind == "command":
            # "currently unused" per the doc: pass it on rather than guess at a meaning.
            self._publish(PosEvent("command", as_text(message.get("command")), {"result": result}))
            return
        if not isinstance(result, dict):
            log.debug("ConcertPOS: ignoring a %s without a result object", kind)
            return
        params = result.get("parameters")
        if not isinstance(params, dict):
            params = {} if params is None else {"value": params}
        if kind == "event":
            name = as_text(result.get("event")).lower()
            item = self._take(_COMMAND_OF_EVENT.get(name, name))
            if item is None:
                self._publish(PosEvent("event", name, params))
            elif not item.abandoned and not item.future.done():
                item.future.set_result(params)
        elif kind == "error":
            self._on_error(result.get("error"), result.get("code"))
        elif kind == "broadcast":
            name = as_text(result.get("message"))
            self._publish(PosEvent("broadcast", name, params))
        else:
            log.debug("ConcertPOS: ignoring a message of type %r", kind)

    def _on_error(self, error: Any, code: Any) -> None:
        name = as_text(error).lower()
        target: str | None = None
        if name == "ratelimit" and isinstance(code, Mapping):
            target = as_text(code.get("command")).lower() or None
        elif name in self._costs or name in _COMMAND_OF_EVENT:
            target = _COMMAND_OF_EVENT.get(name, name)  # e.g. the "getlicense" error
        item = self._take(target) if target else None
        if item is None:
            item = self._take(None)
        exc = error_from_reply(error, code, command=item.command if item else None)
        if isinstance(exc, RateLimited):
            self._budget.pause(exc.retry_after)
            log.warning("ConcertPOS: the server rate-limited us (%s)", exc.command)
        if item is None:
            log.warning("ConcertPOS: error %r with no request waiting", exc.code)
            self._publish(PosEvent("error", exc.code or "unknown", {"message": exc.message}))
        elif not item.abandoned and not item.future.done():
            item.future.set_exception(exc)

    # ------------------------------------------------------------------ requests

    async def call(
        self, command: str, params: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        """Spend the command's points, send it, and return its reply's ``parameters``."""
        if self._ws is None:
            raise ConcertPOSNotConnected()
        spend = await self._budget.acquire(
            self._costs[command], max_wait=self._timeout, command=command
        )
        payload = json.dumps(
            {"command": command, "parameters": {"api_key": self._api_key, **(params or {})}},
            separators=(",", ":"),
        )
        loop = asyncio.get_running_loop()
        self._seq += 1
        item = _Pending(self._seq, command, loop.create_future())
        # A caller cancelled at the wrong moment leaves nobody to read the failure that
        # _fail_all may still set: mark it read, so asyncio does not log it as lost.
        item.future.add_done_callback(_mark_retrieved)
        try:
            async with self._send_lock:
                ws = self._ws
                if ws is None:
                    raise ConcertPOSNotConnected()
                self._register(item)
                try:
                    await ws.send(payload)
                except ConnectionClosed:
                    self._unregister(item)
                    raise ConcertPOSNotConnected(
                        "The connection to ConcertPOS dropped; nothing was sent. Try again."
                    ) from None
                except BaseException:
                    # Cancelled mid-send: the frame may be out. Keep its place (and its
                    # points) so a reply that still comes is swallowed, not misdelivered;
                    # if none comes, the connection is recycled as after a timeout.
                    self._abandon(item, ws)
                    raise
        except BaseException:
            if not item.abandoned:
                self._budget.refund(spend)  # nothing went out
            raise
        self._budget.mark_sent(spend)
        log.debug("ConcertPOS: sent %s", command)
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), self._timeout)
        except TimeoutError:
            if item.future.done() and not item.future.cancelled():
                return item.future.result()
            self._abandon(item, ws)
            if command == "payitems":
                raise OutcomeUnknown("no confirmation came back in time") from None
            raise ConcertPOSTimeout(command, self._timeout) from None
        except asyncio.CancelledError:
            self._abandon(item, ws)
            raise

    def _abandon(self, item: _Pending, ws: ClientConnection) -> None:
        """Keep the request's place so its late reply is swallowed, not misdelivered; if the
        reply still has not come after another timeout, reconnect to get back in step."""
        item.abandoned = True
        if item.seq not in self._in_order:
            return

        def check() -> None:
            if item.seq in self._in_order and self._ws is ws:
                log.warning("ConcertPOS: %s never answered; reconnecting to resync", item.command)
                self._spawn(ws.close())

        asyncio.get_running_loop().call_later(self._grace, check)
