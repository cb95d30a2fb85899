"""Start-up imports what the run needs and nothing else, and ``!ping`` waits for no plugin
(issue 19, section 4).

The import tests run ``bot run`` as a real process under ``python -X importtime`` (which lists
every module the process imported on standard error) and answer ``!ping``: a disabled
transport is never imported, and a plugin's simulator only with ``simulate: true``. The
console starts before the plugins: a bare ``!ping`` is answered while a plugin is still
starting, and the lines after it wait for that plugin, in order. The entry-point scans at
start-up (sqlite-utils' plugins, the bot's own) read package metadata without importlib and
agree with it.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest

from bot.entry_points import declared_groups, entry_points

REPO = Path(__file__).resolve().parents[2]

NOT_SIMULATED = """
    bot:
      database: {db}
    transports:
      console:
        enabled: true
      discord:
        enabled: false
      telegram:
        enabled: false
    plugins:
      deepbot:
        url: ws://127.0.0.1:9
        secret: not-a-real-secret
        timeout: 1
      games:
        url: ws://127.0.0.1:9
        source_id: demo
        session_key: not-a-real-key
      rooms:
        url: http://127.0.0.1:9
        key: not-a-real-key
        ip_address: 203.0.113.5
"""


def imported_by_ping(config: Path, tmp_path: Path) -> set[str]:
    """The modules ``bot run --config config`` imported until it answered ``!ping``."""
    env = {k: v for k, v in os.environ.items() if k != "BOT_SECRET_KEY"}
    env["BOT_DATABASE"] = str(tmp_path / "bot.db")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot.cli", "run", "--config", str(config)],
        input="!ping\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0] == "pong"
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_without_simulate_no_simulator_and_no_disabled_transport_is_imported(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(textwrap.dedent(NOT_SIMULATED).format(db=tmp_path / "bot.db"))
    modules = imported_by_ping(config, tmp_path)
    # (a plugin package itself is loaded from its file, so only its submodules are listed)
    assert {"bot_plugins.deepbot.client", "bot_plugins.games.client"} <= modules
    assert "bot_plugins.rooms.client" in modules
    assert not {m for m in modules if m.endswith((".simulator", ".simworld"))}
    assert not {m for m in modules if m.split(".")[0] in ("discord", "telegram")}
    assert "bot.transports.discord" not in modules and "bot.transports.telegram" not in modules
    # ChatWars is not enabled and no cluster is configured: no broker client at all
    assert not {m for m in modules if m.split(".")[0] in ("aio_pika", "aiormq", "pamqp")}
    assert not {m for m in modules if m.startswith("bot.cluster")}


def test_the_example_config_imports_neither_discord_nor_telegram(tmp_path: Path) -> None:
    modules = imported_by_ping(REPO / "bot.example.yaml", tmp_path)
    assert "bot_plugins.deepbot.simulator" in modules  # simulate: true does load it
    assert not {m for m in modules if m.split(".")[0] in ("discord", "telegram")}
    # The rooms client builds its connection pool (httpcore, h11, anyio) on its first
    # request, and nothing asks the rooms API while the bot starts on a new database.
    assert "bot_plugins.rooms.client" in modules
    assert not {m for m in modules if m.split(".")[0] in ("httpcore", "h11", "anyio")}


SLOW_PLUGIN = """
import asyncio
from pathlib import Path

from bot import command, hookimpl

GATE = Path({gate!r})


@command()
async def slow(ctx) -> str:
    \"\"\"Answer once the plugin has started.\"\"\"
    return "slow is up"


@hookimpl
def bot_commands():
    return [slow]


@hookimpl
async def bot_startup(plugin, config, bot):
    while not GATE.exists():  # the test opens the gate after it has read "pong"
        await asyncio.sleep(0.01)
"""


def test_ping_is_answered_while_a_plugin_starts_and_later_lines_wait_for_it(
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "slowstart.py").write_text(SLOW_PLUGIN.format(gate=str(gate)))
    config = tmp_path / "bot.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            bot:
              database: {tmp_path / "bot.db"}
              plugin_dirs: [plugins]
            transports:
              console:
                enabled: true
            plugins:
              slowstart: {{}}
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "BOT_SECRET_KEY"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    # A console that waited for the plugin would never print "pong": stop it, do not hang.
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write("!ping\n!slow\n!status\n!ping\n")
        proc.stdin.close()
        assert proc.stdout.readline() == "pong\n"  # the plugin is still starting
        time.sleep(0.3)
        assert not gate.exists()
        gate.touch()
        out = proc.stdout.read()
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    lines = out.splitlines()
    # In line order, each after the start finished: the plugin's command is known and up.
    assert lines[0] == "slow is up"
    assert "plugin slowstart: up" in lines
    assert lines[-1] == "pong"


def test_the_entry_point_scan_agrees_with_importlib_metadata() -> None:
    declared = declared_groups()
    assert declared is not None  # a plain venv: every distribution is a directory
    known = {ep.group for d in importlib.metadata.distributions() for ep in d.entry_points}
    assert known <= declared
    for group in sorted(known | {"bot.plugins", "sqlite_utils", "pydantic", "no.such.group"}):
        assert entry_points(group) == list(importlib.metadata.entry_points(group=group)), group


def test_a_package_installed_while_running_is_found_by_the_next_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    assert entry_points("bot.plugins") == []
    dist = tmp_path / "bot_late-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bot-late\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("# a comment\n  [bot.plugins]  \nlate = late_pkg\n")
    assert "bot.plugins" in (declared_groups() or ())
    assert [(ep.name, ep.value) for ep in entry_points("bot.plugins")] == [("late", "late_pkg")]


def test_a_zip_on_sys_path_is_left_to_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("bot_zipped-0.1.dist-info/METADATA", "Name: bot-zipped\nVersion: 0.1\n")
        z.writestr("bot_zipped-0.1.dist-info/entry_points.txt", "[bot.plugins]\nzipped = zp\n")
    monkeypatch.syspath_prepend(str(archive))
    assert declared_groups() is None
    assert [ep.name for ep in entry_points("bot.plugins")] == ["zipped"]
