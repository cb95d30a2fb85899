"""Misbehaving network pieces for the games tests: a TCP proxy that can go silent, and a
websocket server that answers every request correctly but buries the answer in junk.

Both are real sockets; nothing of the project is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bot_plugins.games import wire


class SilentProxy:
    """Forwards TCP to ``port``; :meth:`go_silent` drops every byte both ways while the
    sockets stay open, the way a dead NAT entry or a pulled cable looks to both ends."""

    def __init__(self, port: int) -> None:
        self.target_port = port
        self.silent = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def __aenter__(self) -> SilentProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def go_silent(self) -> None:
        self.silent = True

    def speak_again(self) -> None:
        self.silent = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                if not self.silent:
                    writer.write(data)
                    await writer.drain()
        writer.close()


# ---------------------------------------------------------------- the fuzzing server

JunkMaker = Callable[[random.Random, dict[str, Any]], str]


def _bad_json(rng: random.Random, request: dict[str, Any]) -> str:
    return rng.choice(['{"res": 342, "game_id": ', "}{", "null", "[1, 2", "\x00\xff", "{'a': 1}"])


def _not_an_object(rng: random.Random, request: dict[str, Any]) -> str:
    return json.dumps(rng.choice([[1, 2, 3], "text", 42, None, True]))


def _deeply_nested(rng: random.Random, request: dict[str, Any]) -> str:
    depth = rng.choice([100, 1000, 50_000])
    return '{"res": 342, "game_id": "g", "targets": ' + "[" * depth + "]" * depth + "}"


def _huge(rng: random.Random, request: dict[str, Any]) -> str:
    # Over the client's frame limit: the client drops the link and must reconnect.
    return json.dumps({"res": 470, "game_id": "g", "user_name": "x" * (wire.MAX_FRAME_BYTES + 1)})


def _big_text(rng: random.Random, request: dict[str, Any]) -> str:
    # Under the limit, but far too long for a chat: names must be clipped when read.
    gid = request.get("game_id") or "some-game"
    return json.dumps({"res": 470, "game_id": gid, "user_name": "n" * 100_000, "user_id": 7})


def _wrong_types(rng: random.Random, request: dict[str, Any]) -> str:
    res = rng.choice([None, "abc", 3.5, -1, 10**30, [342], {"x": 1}, True, "342x"])
    game_id = rng.choice([None, 17, "", " ", "a b", "x" * 5000, ["g"], {"g": 1}, 1e308])
    return json.dumps({"res": res, "game_id": game_id, "text": rng.choice([None, 5, "t"])})


def _wrong_shapes(rng: random.Random, request: dict[str, Any]) -> str:
    """Known codes with unusable bodies, about other games (never the waiting call's).

    Replies that name no game (345, 340, 3401) are left out: without request ids a stray one
    that is well formed cannot be told from the answer, by any client: a limit of the
    protocol, not something a fuzz test can hold a client to.
    """
    res = rng.choice([342, 341, 362, 368, 470, 480, 333, 334, 640, 3402])
    body = {
        "targets": rng.choice([[1, None, {"a": []}], "a,b", 5, {"k": "v"}]),
        "actions": rng.choice([None, 7, ["Goal", None], {"g": 5}]),
        "past_events": rng.choice([[], {"e": None}, {"e": {"happened_at": "x"}}]),
        "games": rng.choice([None, [], {"g": None}, "x"]),
        "status": rng.choice([None, 5, "s" * 3000]),
        "open_at": rng.choice([None, -1, 1e308, "soon", float("nan")]),
    }
    return json.dumps({"res": res, "game_id": f"other-{rng.randrange(10**6)}", **body})


def _stray_error(rng: random.Random, request: dict[str, Any]) -> str:
    """A 666 no call can own: about another game, or without a game id."""
    message: dict[str, Any] = {"res": 666, "text": rng.choice(["boom", "", "e" * 5000])}
    if rng.random() < 0.5:
        message["game_id"] = f"other-{rng.randrange(10**6)}"
    return json.dumps(message)


def _push(rng: random.Random, request: dict[str, Any]) -> str:
    """A well-formed event about some game (the client hands it on as an event)."""
    gid = rng.choice([request.get("game_id") or "g-1", f"other-{rng.randrange(100)}"])
    res = rng.choice([470, 480, 362, 368])
    return json.dumps(
        {
            "response_header": {"t": wire.now_ms()},
            "res": res,
            "game_id": gid,
            "user_id": rng.randrange(100),
            "user_name": f"user{rng.randrange(100)}",
            "pool_id": f"pool-{rng.randrange(1000)}",
        }
    )


JUNK: dict[str, JunkMaker] = {
    "bad_json": _bad_json,
    "not_an_object": _not_an_object,
    "deeply_nested": _deeply_nested,
    "huge": _huge,
    "big_text": _big_text,
    "wrong_types": _wrong_types,
    "wrong_shapes": _wrong_shapes,
    "stray_error": _stray_error,
    "push": _push,
}


class FuzzServer:
    """Answers each request with its correct reply, preceded by up to ``junk_per_request``
    junk frames (every kind in :data:`JUNK` but ``huge``), and now and then a frame over the
    client's size limit, which makes the client drop the link and reconnect. ``sent`` counts
    frames by kind. Stray 666s come before the real reply, where a client that waits for one
    call alone could take them for its refusal (the vendor's 666 carries only ``text``).
    """

    def __init__(self, seed: int, *, junk_per_request: int = 8, huge_every: int = 40) -> None:
        self.rng = random.Random(seed)
        self.junk_per_request = junk_per_request
        self.huge_every = huge_every
        self.sent: Counter[str] = Counter()
        self.requests = 0
        self.connections = 0
        self._server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> FuzzServer:
        # The server's own limit must let it receive anything the client sends.
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                request = json.loads(raw)
                self.requests += 1
                await self._junk(ws, request)
                reply = self.reply_to(request)
                if reply is not None:
                    await ws.send(json.dumps(reply))
                    self.sent["reply"] += 1

    async def _junk(self, ws: ServerConnection, request: dict[str, Any]) -> None:
        kinds = [k for k in JUNK if k != "huge"]
        for _ in range(self.rng.randrange(self.junk_per_request + 1)):
            kind = self.rng.choice(kinds)
            await ws.send(JUNK[kind](self.rng, request))
            self.sent[kind] += 1
        if self.huge_every and self.rng.randrange(self.huge_every) == 0:
            self.sent["huge"] += 1
            await ws.send(_huge(self.rng, request))

    def reply_to(self, request: dict[str, Any]) -> dict[str, Any] | None:
        op = wire.read_code(request.get("op"))
        gid = request.get("game_id")
        head = {"response_header": {"t": wire.now_ms()}}
        if op == wire.OP_GET_DETAILS:
            return {
                **head,
                "res": wire.RES_DETAILS,
                "game_id": gid,
                "name": "Fuzz game",
                "status": wire.STATUS_IN_PROGRESS,
                "actions": {"goal": {"name": "Goal"}},
                "targets": {"home": {"symbol": "hom", "display_name": "Home", "targets": {}}},
            }
        if op == wire.OP_LIST:
            return {**head, "res": wire.RES_LIST, "games": {"g-1": {"name": "Fuzz game"}}}
        if op == wire.OP_JOIN:
            return {**head, "res": wire.RES_JOINED, "game_id": gid}
        if op == wire.OP_LEAVE:
            return {**head, "res": wire.RES_LEFT, "game_id": gid}
        if op == wire.OP_PING:
            return {**head, "res": wire.RES_PONG}
        return {**head, "res": wire.RES_ERROR, "text": f"op {op} is not fuzzed"}
