"""A local ParcelTrack: the same wire protocol on a real socket, for tests and demos.

``simulate: true`` starts one inside the bot; from the repository root,
``bot simulate --plugin-dir examples parcels --port 8780`` runs one on its own. The test hooks
let a test move parcels (which pushes to watchers), drop every connection, or make the server
silent.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bot import Simulator

from .client import MAX_WATCHES, Parcel

SAMPLE = (
    Parcel("PX-1001", "in_transit", "Leeds depot"),
    Parcel("PX-1002", "delivered", "front door"),
    Parcel("PX-1003", "label_created", "sender"),
)


class ParcelSimulator(Simulator):
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str = "parcels-key",
        parcels: Iterable[Parcel] = SAMPLE,
    ) -> None:
        self.host, self.port, self.key = host, port, key
        self.parcels = {p.id: p for p in parcels}
        #: test hook: every request received (keys masked)
        self.requests: list[dict[str, Any]] = []
        #: test hook: read requests but never answer them
        self.silent = False
        self._watches: dict[ServerConnection, set[str]] = {}
        self._server: Server | None = None

    @property
    def connections(self) -> int:
        """Test hook: how many clients are logged in now."""
        return len(self._watches)

    async def start(self) -> None:
        self._server = await serve(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def move(self, parcel: str, status: str, place: str) -> int:
        """Test hook: the parcel moves; returns how many connections were told."""
        moved = self.parcels[parcel] = Parcel(parcel, status, place)
        push = json.dumps({"event": "moved", "parcel": asdict(moved)})
        told = 0
        for ws, watched in list(self._watches.items()):
            if parcel in watched:
                await ws.send(push)
                told += 1
        return told

    async def drop_connections(self) -> None:
        """Test hook: close every connection, as a server restart would."""
        for ws in list(self._watches):
            await ws.close()

    async def _serve(self, ws: ServerConnection) -> None:
        try:
            hello = json.loads(await ws.recv())
            self.requests.append({**hello, "key": "***"})
            if hello.get("op") != "hello" or hello.get("key") != self.key:
                await ws.send(json.dumps({"id": hello.get("id"), "ok": False, "code": "bad_key"}))
                return
            await ws.send(json.dumps({"id": hello.get("id"), "ok": True}))
            self._watches[ws] = set()
            async for frame in ws:
                request = json.loads(frame)
                self.requests.append(request)
                if not self.silent:
                    answer = self._answer(request, self._watches[ws])
                    await ws.send(json.dumps({"id": request.get("id"), **answer}))
        except (ConnectionClosed, ValueError, AttributeError, TypeError):
            pass
        finally:
            self._watches.pop(ws, None)

    def _answer(self, request: dict[str, Any], watched: set[str]) -> dict[str, Any]:
        op, parcel = request.get("op"), self.parcels.get(request.get("parcel", ""))
        if op not in ("track", "watch", "unwatch"):
            return {"ok": False, "code": "bad_request"}
        if op == "unwatch":
            watched.discard(request.get("parcel", ""))
            return {"ok": True}
        if parcel is None:
            return {"ok": False, "code": "unknown_parcel"}
        if op == "watch":
            if parcel.id not in watched and len(watched) >= MAX_WATCHES:
                return {"ok": False, "code": "too_many_watches"}
            watched.add(parcel.id)
        return {"ok": True, "parcel": asdict(parcel)}


def simulator_from_args(argv: list[str]) -> ParcelSimulator:
    """Options for ``bot simulate parcels ...``."""
    parser = argparse.ArgumentParser(prog="bot simulate parcels", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8780)
    parser.add_argument("--key", default="parcels-key", help="the API key clients must send")
    args = parser.parse_args(argv)
    return ParcelSimulator(host=args.host, port=args.port, key=args.key)
