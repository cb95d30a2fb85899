"""Benchmark: start-up. `python bench/startup.py [--config bot.example.yaml] [--rounds 5]`

Time from process start to the first reply of ``!ping`` on the console, and the process's RSS
at that moment, with the example config (console + bundled simulators). Floor, same run:
``python -c "import discord"`` (a Discord bot pays at least that before it can answer).
Targets: time <= 1.0x the floor (a transport that is disabled is not imported), RSS <= 60 MiB.

The console starts before the plugins and answers a bare ``!ping`` at once, so the same run
also sends ``!status``, which waits until every plugin has started: its reply gives the time
to ready and the RSS with every plugin loaded (no time target; RSS <= 60 MiB there too).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, Report, arguments, mib, ms


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_env() -> dict[str, str]:
    """A deployed bot has bytecode caches (pip writes them for installed packages); with
    PYTHONDONTWRITEBYTECODE set, an editable checkout would recompile every module on every
    start, which measures the compiler, not the bot. The warm-up run writes the caches."""
    skip = {"BOT_SECRET_KEY", "PYTHONDONTWRITEBYTECODE"}
    return {k: v for k, v in os.environ.items() if k not in skip}


def time_to_pong(config: Path, workdir: Path) -> tuple[float, float, float, float]:
    """Seconds to the ``pong`` line and RSS then; seconds to the ``!status`` reply, RSS then."""
    env = bench_env()
    env["BOT_DATABASE"] = str(workdir / "bot.db")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=workdir,
        env=env,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write("!ping\n!status\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    rss = rss_mib(proc.pid)
    status = proc.stdout.readline()  # the reply is written at once, its first line is enough
    ready = time.perf_counter() - t0
    rss_ready = rss_mib(proc.pid)
    proc.stdin.close()
    proc.stdout.read()
    proc.wait(timeout=30)
    if line.strip() != "pong":
        raise SystemExit(f"expected pong, got {line!r}")
    if ": up " not in status:
        raise SystemExit(f"expected the status reply, got {status!r}")
    return elapsed, rss, ready, rss_ready


def time_import_discord() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import discord"], check=True, env=bench_env())
    return time.perf_counter() - t0


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--config", default=str(REPO / "bot.example.yaml"))
    args = parser.parse_args()
    config = Path(args.config).resolve()
    report = Report(f"start-up with {config.name}", args)
    pong = report.figure(
        "process start -> first !ping reply", ms, 1.0, floor_label="import discord"
    )
    rss = report.figure("RSS at first reply", mib, 60.0)
    ready = report.figure(
        "process start -> ready (!status reply)", ms, None, floor_label="import discord"
    )
    rss_ready = report.figure("RSS when ready", mib, 60.0)
    with tempfile.TemporaryDirectory() as d:
        time_to_pong(config, Path(d))  # warm the page cache and create the database
        for _ in range(args.rounds):
            floor = time_import_discord()
            t, r, t_ready, r_ready = time_to_pong(config, Path(d))
            pong.add(t, floor)
            rss.add(r)
            ready.add(t_ready, floor)
            rss_ready.add(r_ready)
    report.finish()


if __name__ == "__main__":
    main()
