"""Benchmark: the command path. `python bench/command_path.py [--sequential 2000]`

Simulated chat users send ``!points <user>`` through the harness -> dispatcher -> DeepBot
plugin -> the DeepBot simulator over a loopback websocket -> reply. Floor, same run: a bare
websockets client making the same ``get_points`` round trips against the same simulator.
The simulator runs in its own process (``bot simulate deepbot``), as DeepBot does: sharing
the bot's event loop would bill its work to both sides.

1. Sequential: p50/p99 of the full path vs the bare round trip (targets 1.25x / 1.5x), one
   bare round trip and one command alternating, so the machine's drift lands on both alike.
2. 100 users in flight on one DeepBot connection: throughput vs the bare client pipelining
   100 requests (target >= 0.5x).
3. 1,000 users in flight: no errors, no crossed replies (each user has a distinct balance).
4. Network stubbed (the handler returns at once): dispatch cost per command — parse, lookup,
   permission, link lookup in SQLite, reply — p50 (target <= 25 µs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

from _common import Report, arguments, ms, pct, per_second, us
from websockets.asyncio.client import connect

from bot.messages import Message, Reply
from bot.testing import BotHarness

SECRET = "bench-secret"
USERS = 1000


def viewer(i: int) -> str:
    return f"viewer{i}"


class Sink:
    """A responder that keeps the last reply (the benchmark's chat window), and when it came:
    a user sees the reply when the transport is handed it, not when the command's task has
    also wound down (one more turn of the loop that nobody waits for)."""

    __slots__ = ("at", "last")

    def __init__(self) -> None:
        self.last = ""
        self.at = 0.0

    async def send(self, reply: Reply) -> None:
        self.at = time.perf_counter()
        self.last = reply.text

    async def confirm(self, question: str, timeout: float) -> bool | None:
        return None


# --------------------------------------------------------------------------- floor


async def bare_pipelined(url: str, n: int, window: int) -> float:
    """Requests per second with ``window`` in flight on one connection."""
    async with connect(url) as ws:
        await ws.send(f"api|register|{SECRET}")
        await ws.recv()
        sent = received = 0
        t0 = time.perf_counter()
        while sent < min(window, n):
            await ws.send(f"api|get_points|{viewer(sent % USERS)}")
            sent += 1
        while received < n:
            await ws.recv()
            received += 1
            if sent < n:
                await ws.send(f"api|get_points|{viewer(sent % USERS)}")
                sent += 1
        return n / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- full path


def message(i: int, sink: Sink) -> Message:
    return Message("console", f"chat{i}", f"user{i}", f"user{i}", f"!points {viewer(i)}", sink)


async def paired_sequential(url: str, h: BotHarness, n: int) -> tuple[list[float], list[float]]:
    """``n`` bare round trips and ``n`` commands, alternating one of each.

    Side by side call for call, a drift of the machine (another process waking, a frequency
    change) lands on both alike; measured in blocks of thousands, it decided the ratio.
    Returns (bare, full) latencies.
    """
    d = h.bot.dispatcher
    sink = Sink()
    bare: list[float] = []
    full: list[float] = []
    async with connect(url) as ws:
        await ws.send(f"api|register|{SECRET}")
        await ws.recv()
        for i in range(n):
            name = viewer(i % USERS)
            t0 = time.perf_counter()
            await ws.send(f"api|get_points|{name}")
            reply = json.loads(await ws.recv())
            bare.append(time.perf_counter() - t0)
            assert reply["param"] == name
            msg = message(i % USERS, sink)
            t0 = time.perf_counter()
            await d.submit(msg)
            full.append(sink.at - t0)
    assert sink.last.startswith(viewer((n - 1) % USERS) + " has")
    return bare, full


async def full_concurrent(h: BotHarness, users: int, rounds: int) -> tuple[float, list[float], int]:
    """Each user sends ``rounds`` commands one after another; returns (cmd/s, latencies, errors)."""
    d = h.bot.dispatcher
    latencies: list[float] = []
    errors = 0

    async def user(i: int) -> None:
        nonlocal errors
        sink = Sink()
        msg = message(i, sink)
        expected = (
            f"{viewer(i)} has {i:,}.00 points" if i >= 1000 else f"{viewer(i)} has {i}.00 points"
        )
        for _ in range(rounds):
            t0 = time.perf_counter()
            await d.submit(msg)
            latencies.append(time.perf_counter() - t0)
            if sink.last != expected:
                errors += 1
                if errors < 5:
                    print(f"  unexpected reply for {viewer(i)}: {sink.last!r}")

    t0 = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(users)))
    return users * rounds / (time.perf_counter() - t0), latencies, errors


# --------------------------------------------------------------------------- stubbed network

STUB = textwrap.dedent(
    '''
    from bot import Permission, command, hookimpl

    @command("points", permission=Permission.LINKED, service="deepbot")
    async def points(ctx, user: str | None = None) -> str:
        """Answer at once (the network stubbed)."""
        link = ctx.link()
        return f"{user or link.account} has 10.00 points"

    @hookimpl
    def bot_commands():
        return [points]
    '''
)


async def dispatch_cost(n: int) -> list[float]:
    with tempfile.TemporaryDirectory() as d:
        plugins = Path(d) / "plugins"
        plugins.mkdir()
        (plugins / "stub.py").write_text(STUB)
        async with BotHarness(
            {"stub": {}}, config={"bot": {"plugin_dirs": [str(plugins)]}}, directory=Path(d)
        ) as h:
            h.bot.store.set_link("console", "user1", "deepbot", "viewer1")
            sink = Sink()
            msg = Message("console", "chat1", "user1", "user1", "!points viewer1", sink)
            disp = h.bot.dispatcher
            for _ in range(2000):
                await disp.submit(msg)
            out = []
            for _ in range(n):
                t0 = time.perf_counter()
                await disp.submit(msg)
                out.append(time.perf_counter() - t0)
            assert sink.last == "viewer1 has 10.00 points"
            return out


@contextlib.contextmanager
def simulator_process() -> Iterator[str]:
    """``bot simulate deepbot`` with USERS viewers (viewer<i> has i points); yields its URL."""
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "users.json"
        data.write_text(json.dumps([{"user": viewer(i), "points": i} for i in range(USERS)]))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "simulate",
                "deepbot",
                "--port",
                "0",
                "--secret",
                SECRET,
                "--data",
                str(data),
                "--no-example",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            yield line.split(" listening on ")[1].split()[0]
        finally:
            proc.terminate()
            proc.wait(10)


async def main(args: argparse.Namespace) -> None:
    logging.disable(logging.WARNING)
    report = Report("command path: !points through dispatcher, plugin, DeepBot simulator", args)
    n = args.sequential
    p50 = report.figure("sequential p50", us, 1.25, floor_label="bare round trip")
    p99 = report.figure("sequential p99", us, 1.5, floor_label="bare round trip")
    tp100 = report.figure(
        "100 in flight: commands/s",
        per_second,
        0.5,
        higher_is_better=True,
        floor_label="bare client pipelining 100",
    )
    tp1000 = report.figure("1,000 users in flight: commands/s", per_second)
    lat1000 = report.figure("1,000 users in flight: latency p99", ms)
    cost = report.figure("dispatch cost p50 (network stubbed)", us, 25e-6)
    cost99 = report.figure("dispatch cost p99 (network stubbed)", us)
    with simulator_process() as url:
        with tempfile.TemporaryDirectory() as d:
            plugins = {"deepbot": {"url": url, "secret": SECRET, "timeout": 30}}
            async with BotHarness(plugins, directory=Path(d)) as h:
                await h.bot.plugins.runtimes["deepbot"].client.wait_connected(5)
                await paired_sequential(url, h, 200)  # warm-up
                for _ in range(args.rounds):
                    floor_seq, seq = await paired_sequential(url, h, n)
                    p50.add(pct(seq, 50), pct(floor_seq, 50))
                    p99.add(pct(seq, 99), pct(floor_seq, 99))
                    floor_tp = await bare_pipelined(url, n * 2, 100)
                    tp, _, errors = await full_concurrent(h, 100, n * 2 // 100)
                    tp100.add(tp, floor_tp)
                    report.check("100 in flight: errors or crossed replies", errors, errors == 0)
                    tp, lat, errors = await full_concurrent(h, 1000, 2)
                    tp1000.add(tp)
                    lat1000.add(pct(lat, 99))
                    report.check("1,000 in flight: errors or crossed replies", errors, errors == 0)
    for _ in range(args.rounds):
        stub = await dispatch_cost(n * 5)
        cost.add(pct(stub, 50))
        cost99.add(pct(stub, 99))
    report.note(f"{n:,} sequential round trips and {n * 2:,} pipelined requests per round")
    report.finish()


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("--sequential", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
