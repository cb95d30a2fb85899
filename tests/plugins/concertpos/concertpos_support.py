"""Constants and helpers shared by the ConcertPOS conftest and test files.

A module of its own (not ``conftest``) because test files cannot import from a conftest
reliably: every plugin's test folder has one, all named ``conftest``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from bot_plugins.concertpos.client import ConcertPOSClient

CONCERTPOS_API_KEY = "test-key-5d1c0e"
CONCERTPOS_INSTANCE = "festival"
#: a short window: the doc's 100 points per 30 s become 100 points per WINDOW s
WINDOW = 0.6

#: client settings for tests: the simulator's window, fast timeouts and reconnects
FAST: dict[str, Any] = {
    "timeout": 2.0,
    "connect_timeout": 1.0,
    "rate_window": WINDOW,
    "rate_margin": 0.05,
    "reconnect_min": 0.02,
    "reconnect_max": 0.1,
}

ClientFactory = Callable[..., Awaitable[ConcertPOSClient]]


def plugin_section(url: str | list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    """A ``plugins.concertpos`` config section for the test simulator, with the same short
    window, timeouts and reconnects as :data:`FAST` (``url=None``: set it in ``overrides``)."""
    section: dict[str, Any] = {
        "api_key": CONCERTPOS_API_KEY,
        "timeout": FAST["timeout"],
        "connect_timeout": FAST["connect_timeout"],
        "rate_window": WINDOW,
        "rate_margin": FAST["rate_margin"],
        "reconnect_min": FAST["reconnect_min"],
        "reconnect_max": FAST["reconnect_max"],
    }
    if url is not None:
        section["url"] = url
    section.update(overrides)
    return section


@asynccontextmanager
async def slow_proxy(target: str, delay: float) -> AsyncIterator[str]:
    """A TCP forwarder to ``target``'s port that answers each connection only after
    ``delay`` seconds: a gateway that is slow to accept, on real sockets."""
    target_port = int(target.split(":")[2].split("/")[0])
    pipes: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        for task in (
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ):
            pipes.add(task)
            task.add_done_callback(pipes.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield target.replace(f":{target_port}/", f":{port}/")
    finally:
        server.close()
        for task in list(pipes):
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
