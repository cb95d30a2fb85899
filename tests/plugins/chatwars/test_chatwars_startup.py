"""Start-up (issue 13): a command arriving while the first connection attempt is still in
progress waits for it, bounded by the call timeout, instead of answering "not connected"."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bot_plugins.chatwars.service import STARTUP_WAIT
from bot_plugins.chatwars.simulator import ChatWarsSimulator


@contextlib.asynccontextmanager
async def slow_broker(target: str, delay: float) -> AsyncIterator[str]:
    """A TCP relay in front of the broker that answers nothing for ``delay`` seconds after
    each connection is accepted: a broker that is slow to take a connection. Yields the
    broker URL through the relay."""
    parts = urlsplit(target)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        up_reader, up_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(relay(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    relay_port = server.sockets[0].getsockname()[1]
    netloc = parts.netloc.rsplit("@", 1)
    auth = f"{netloc[0]}@" if len(netloc) == 2 else ""
    try:
        yield urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{relay_port}"))
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_command_during_a_slow_first_connection_waits_for_it(
    bot_harness: Callable[..., Any],
    chatwars_settings: dict[str, Any],
    chatwars_sim: ChatWarsSimulator,
) -> None:
    # Slower than the start-up wait, well within the call timeout.
    delay = STARTUP_WAIT + 1.0
    async with slow_broker(chatwars_settings["amqp_url"], delay) as url:
        settings = {**chatwars_settings, "amqp_url": url, "timeout": delay + 10.0}
        async with bot_harness(plugins={"chatwars": settings}, admins={"console": ["boss"]}) as bot:
            assert not bot.client("chatwars").connected  # start-up returned before it
            [reply] = await bot.chat(kind="private").say("!cw balance", user="boss", admin=True)
            assert (
                reply
                == "The bot's ChatWars balance is 100,000 gold (1,000 gold pouches can be paid out)."
            )


async def test_a_command_piped_in_at_start_is_answered_by_bot_run(
    tmp_path: Path, chatwars_settings: dict[str, Any], chatwars_sim: ChatWarsSimulator
) -> None:
    """The stable pipe contract (``printf '!cw balance\\n' | bot run --config real.yaml``)
    against a broker slower to take the connection than the start-up wait."""
    delay = STARTUP_WAIT + 1.0
    async with slow_broker(chatwars_settings["amqp_url"], delay) as url:
        section = {**chatwars_settings, "amqp_url": url, "timeout": delay + 10.0}
        config = tmp_path / "real.yaml"
        config.write_text(
            json.dumps({"bot": {"database": "bot.db"}, "plugins": {"chatwars": section}})
        )
        env = {k: v for k, v in os.environ.items() if k != "BOT_SECRET_KEY"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            "--config",
            str(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
            env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(b"!cw balance\n"), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines() == [
        "The bot's ChatWars balance is 100,000 gold (1,000 gold pouches can be paid out)."
    ]
