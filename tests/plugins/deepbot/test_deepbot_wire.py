"""The websocket under the DeepBot connection (plugins/deepbot/wire.py), over real sockets.

Each server is a few lines of ``websockets``. What is checked: frames written in one loop
iteration leave in one write and in order, also ahead of the close frame; replies handed over
in ``data_received`` never overtake a message still queued for the reader (a fragmented one, a
binary one, one the handler declined); a handler's bug does not break the connection; invalid
UTF-8 still fails the connection the library's way. Plus the DeepBot connection itself: a
hundred calls in flight share a few writes and each gets its own answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bot_plugins.deepbot.client import DeepBotClient
from bot_plugins.deepbot.simulator import DeepBotSimulator, SimUser
from bot_plugins.deepbot.wire import WireConnection

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    """A websocket server on a free port running ``handler`` per connection; yields its URL."""
    async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None) as srv:
        yield f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}"


@asynccontextmanager
async def wire(url: str) -> AsyncIterator[WireConnection]:
    async with connect(
        url, compression=None, ping_interval=None, create_connection=WireConnection
    ) as ws:
        assert isinstance(ws, WireConnection)
        yield ws


async def test_frames_of_one_iteration_leave_in_one_write_in_order() -> None:
    received: list[str] = []
    done = asyncio.Event()

    async def record(ws: ServerConnection) -> None:
        async for message in ws:
            received.append(str(message))
            if len(received) == 50:
                done.set()

    async with server(record) as url, wire(url) as ws:
        for i in range(50):  # no await suspends: all in one loop iteration
            await ws.send_text(f"m{i}")
        assert ws.writes == 1  # the first frame left at once, the rest wait for the turn
        await asyncio.wait_for(done.wait(), 10)
        assert ws.writes == 2
    assert received == [f"m{i}" for i in range(50)]


async def test_a_lone_frame_is_written_at_once() -> None:
    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with server(silent) as url, wire(url) as ws:
        await ws.send_text("first")
        assert ws.writes == 1
        await asyncio.sleep(0)
        await ws.send_text("next turn")  # a new iteration: written at once again
        assert ws.writes == 2


async def test_batched_frames_are_not_overtaken_by_the_close() -> None:
    received: list[str] = []
    closed = asyncio.Event()

    async def record(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                received.append(str(message))
        finally:
            closed.set()

    async with server(record) as url:
        async with wire(url) as ws:
            for i in range(20):
                await ws.send_text(f"m{i}")
        # leaving the block closed the connection before the loop turned
        await asyncio.wait_for(closed.wait(), 10)
    assert received == [f"m{i}" for i in range(20)]


async def test_send_after_close_raises_connection_closed() -> None:
    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with server(silent) as url, wire(url) as ws:
        await ws.close()
        with pytest.raises(ConnectionClosed):
            await ws.send_text("too late")


async def collect(ws: WireConnection, count: int, decline: str = "") -> list[tuple[str, str]]:
    """Read ``count`` messages through both paths, noting which path each took."""
    seen: list[tuple[str, str]] = []

    def on_text(text: str) -> bool:
        if text == decline:
            return False
        seen.append(("fast", text))
        return True

    ws.on_text = on_text
    while len(seen) < count:
        message = await asyncio.wait_for(ws.recv(), 10)
        seen.append(("reader", message if isinstance(message, str) else message.decode()))
    return seen


async def test_a_fragmented_message_is_not_overtaken_by_the_frames_after_it() -> None:
    async def fragments_first(ws: ServerConnection) -> None:
        await ws.recv()  # wait until the client is ready
        await ws.send(["frag", "mented"])  # one message in two frames
        for i in range(5):
            await ws.send(f"r{i}")
        await ws.wait_closed()

    async with server(fragments_first) as url, wire(url) as ws:
        task = asyncio.ensure_future(collect(ws, 6))
        await ws.send("go")
        seen = await task
    assert [text for _, text in seen] == ["fragmented", "r0", "r1", "r2", "r3", "r4"]
    assert seen[0] == ("reader", "fragmented")


async def test_binary_and_declined_messages_keep_their_place() -> None:
    async def mixed(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("a")
        await ws.send(b"binary")
        await ws.send("b")
        await ws.send("declined")
        await ws.send("c")
        await ws.wait_closed()

    async with server(mixed) as url, wire(url) as ws:
        task = asyncio.ensure_future(collect(ws, 5, decline="declined"))
        await ws.send("go")
        seen = await task
    assert [text for _, text in seen] == ["a", "binary", "b", "declined", "c"]
    assert ("reader", "binary") in seen and ("reader", "declined") in seen


async def test_a_failing_handler_does_not_break_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def two(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("boom")
        await ws.send("fine")
        await ws.wait_closed()

    got: list[str] = []
    arrived = asyncio.Event()

    def on_text(text: str) -> bool:
        if text == "boom":
            raise RuntimeError("handler bug")
        got.append(text)
        arrived.set()
        return True

    async with server(two) as url, wire(url) as ws:
        ws.on_text = on_text
        await ws.send("go")
        await asyncio.wait_for(arrived.wait(), 10)
        assert got == ["fine"]
        assert ws.state.name == "OPEN"
    assert "A DeepBot frame handler failed" in caplog.text


async def test_invalid_utf8_still_fails_the_connection_with_1007() -> None:
    async def bad(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(b"\xff\xfe", text=True)
        await ws.wait_closed()

    calls: list[str] = []
    async with server(bad) as url, wire(url) as ws:
        ws.on_text = lambda text: bool(calls.append(text)) or True
        await ws.send("go")
        with pytest.raises(ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), 10)
    assert calls == []
    assert caught.value.sent is not None and caught.value.sent.code == 1007


# --- through the DeepBot connection ---------------------------------------------------------


async def test_a_hundred_calls_in_flight_share_writes_and_get_their_own_answers() -> None:
    users = [SimUser(f"viewer{i}", points=Decimal(i)) for i in range(100)]
    async with DeepBotSimulator(secret="s3cret", users=users) as sim:
        async with DeepBotClient(sim.url, "s3cret", timeout=10, ping_interval=None) as client:
            ws = client._ws
            assert isinstance(ws, WireConnection)
            before = ws.writes
            answers = await asyncio.gather(*(client.get_points(f"viewer{i}") for i in range(100)))
            assert answers == [Decimal(i) for i in range(100)]
            assert ws.writes - before < 10  # one write per loop iteration, not one per call
