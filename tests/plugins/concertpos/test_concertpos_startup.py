"""Issue 13's start-up case as a user meets it: ``printf '!pos products\\n' | bot run`` against
a real (not simulated) gateway that takes 1 s to accept the connection.

The bot runs as its own process (the console pipe contract); the gateway is the simulator
behind a TCP forwarder that holds every connection for a second, on real sockets.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from concertpos_support import CONCERTPOS_API_KEY, slow_proxy

from bot_plugins.concertpos.simulator import ConcertPOSSimulator


def run_bot(config: Path, stdin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BOT_SECRET_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=90,
    )


async def test_a_piped_first_command_is_answered_by_a_gateway_slow_to_accept(
    tmp_path: Path, concertpos_sim: ConcertPOSSimulator
) -> None:
    async with slow_proxy(concertpos_sim.url, 1.0) as url:
        config = tmp_path / "bot.yaml"
        config.write_text(
            "bot:\n  database: bot.db\n"
            "plugins:\n  concertpos:\n"
            f"    url: {url}\n    api_key: {CONCERTPOS_API_KEY}\n"
            "    timeout: 8\n    connect_timeout: 8\n"
        )
        result = await asyncio.to_thread(run_bot, config, "!pos products\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        "Products at point of sale 1:",
        "#1 Beer 4.50 (+2.00 deposit)",
    ]
    assert CONCERTPOS_API_KEY not in result.stdout + result.stderr
