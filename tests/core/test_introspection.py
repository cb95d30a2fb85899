"""What ``plugins`` (admin command), ``bot plugins`` (command line) and BOT_TRACE_HOOKS show.

Each plugin: its version, where it came from (bundled, directory, package), the hooks it
implements, its commands and alert topics, its state and health; with tracing on, every hook
call is logged with its duration.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main
from bot.testing import BotHarness

WEATHER = '''
from bot import Health, PluginConfig, Topic, command, hookimpl

__version__ = "2.1.0"


class Config(PluginConfig):
    city: str


@command()
async def weather(ctx) -> str:
    """Today's weather."""
    return f"sunny in {ctx.config.city}"


@command("weather alerts")
async def weather_alerts(ctx) -> str:
    """Storm warnings."""
    return "none"


@hookimpl
def bot_config_model():
    return Config


@hookimpl
def bot_commands():
    return [weather, weather_alerts]


@hookimpl
def bot_alert_topics():
    return [Topic("weather.storms", "Storm warnings")]


@hookimpl
async def bot_startup(plugin):
    async def poll():
        pass

    plugin.every(3600, poll, name="poll")


@hookimpl
def bot_health(plugin):
    return Health.down("the weather station does not answer")


@hookimpl
def bot_shutdown(plugin):
    pass
'''

SICK = """
from bot import hookimpl


@hookimpl
def bot_health(plugin):
    raise ValueError("thermometer broke")
"""

BROKEN = """
from bot import hookimpl


@hookimpl
async def bot_startup(plugin):
    raise ConnectionRefusedError("no route to the API")
"""


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    (directory / "weather").mkdir(parents=True)
    (directory / "weather" / "__init__.py").write_text(WEATHER)
    (directory / "sick.py").write_text(SICK)
    (directory / "broken.py").write_text(BROKEN)
    return directory


async def test_the_plugins_command_shows_version_source_health_hooks_and_commands(
    bot_harness: Callable[..., BotHarness], plugin_dir: Path
) -> None:
    plugins = {"weather": {"city": "Oslo"}, "sick": {}, "broken": {}}
    async with bot_harness(plugins, config={"bot": {"plugin_dirs": [str(plugin_dir)]}}) as bot:
        chat = bot.chat()
        assert await chat.say("!weather") == ["sunny in Oslo"]
        (weather,) = await chat.say("!plugins weather", user="boss", admin=True)
        assert weather.splitlines() == [
            "weather 2.1.0 [directory]: down (the weather station does not answer)",
            "  commands: weather, weather alerts",
            "  hooks: bot_alert_topics, bot_commands, bot_config_model, bot_health, bot_shutdown, "
            "bot_startup",
            "  alert topics: weather.storms",
            "  tasks: 1",
        ]
        (listing,) = await chat.say("!plugins", user="boss", admin=True)
        assert "sick - [directory]: degraded (health check failed: thermometer broke)" in listing
        assert (
            "broken - [directory]: failed - ConnectionRefusedError: no route to the API" in listing
        )
        assert "core 0.1.0 [core]: up" in listing
        # Bundled plugins that are not configured are listed from their declarations.
        bundled = [line for line in listing.splitlines() if "[bundled]" in line]
        assert bundled
        assert all(line.endswith("[bundled]: not running") for line in bundled), bundled
        assert await chat.say("!plugins nosuch", user="boss", admin=True) == [
            "No plugin named 'nosuch'. Try !plugins."
        ]
        assert await chat.say("!plugins", user="pleb") == ["This command is for admins only."]


def write_config(tmp_path: Path, plugin_dir: Path, plugins: str) -> Path:
    config = tmp_path / "bot.yaml"
    config.write_text(
        f"bot:\n  database: {tmp_path / 'bot.db'}\n  plugin_dirs: [{plugin_dir}]\n"
        f"plugins:\n{plugins}"
    )
    return config


def test_bot_plugins_reads_declarations_and_config_without_starting_anything(
    tmp_path: Path, plugin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        plugin_dir,
        "  weather: {city: Oslo}\n  sick: {enabled: false}\n  broken: {colour: red}\n",
    )
    assert main(["plugins", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert (
        "weather 2.1.0 [directory]: enabled in this config\n"
        f"  from: {plugin_dir / 'weather'}\n"
        "  commands: weather, weather alerts\n"
        "  hooks: bot_alert_topics, bot_commands, bot_config_model, bot_health, bot_shutdown, "
        "bot_startup\n"
        "  alert topics: weather.storms\n"
    ) in out
    assert "sick - [directory]: disabled in this config" in out
    assert (
        "broken - [directory]: invalid config - bot.yaml:7: plugins.broken.colour: unknown key"
        in (out)
    )
    assert "core 0.1.0 [core]: always enabled" in out
    # Nothing ran: no database was created, no task started.
    assert not (tmp_path / "bot.db").exists()

    assert main(["plugins", "--config", str(config), "--json"]) == 0
    described = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert described["weather"]["source"] == "directory"
    assert described["weather"]["version"] == "2.1.0"
    assert described["weather"]["health"] is None
    assert described["core"]["source"] == "core"
    for name in ("deepbot", "rooms"):
        if name in described:
            assert described[name]["source"] == "bundled"


def test_bot_plugins_health_starts_the_configured_plugins_and_asks_them(
    tmp_path: Path, plugin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, plugin_dir, "  weather: {city: Oslo}\n  broken: {}\n")
    # broken fails to start: the probe says so in its exit status, for scripts and monitors.
    assert main(["plugins", "--config", str(config), "--health", "--wait", "0", "--json"]) == 1
    described = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert described["weather"]["state"] == "running"
    assert described["weather"]["health"] == {
        "state": "down",
        "reason": "the weather station does not answer",
    }
    assert described["weather"]["tasks"] == 1
    assert described["broken"]["state"] == "failed"
    assert described["broken"]["reason"] == "ConnectionRefusedError: no route to the API"


async def test_trace_hooks_logs_every_hook_call_with_its_duration(
    bot_harness: Callable[..., BotHarness],
    plugin_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("BOT_TRACE_HOOKS", "1")
    caplog.set_level(logging.INFO, logger="bot.trace")
    plugins = {"weather": {"city": "Oslo"}, "broken": {}}
    async with bot_harness(plugins, config={"bot": {"plugin_dirs": [str(plugin_dir)]}}) as bot:
        await bot.chat().say("!status")
    traced = [r.getMessage() for r in caplog.records if r.name == "bot.trace"]
    for hook in (
        "bot_config_model",
        "bot_commands",
        "bot_alert_topics",
        "bot_startup",
        "bot_health",
        "bot_shutdown",
    ):
        assert any(
            m.startswith(f"hook {hook} of weather took ") and m.endswith(" ms") for m in traced
        ), hook
    assert any(
        m.startswith("hook bot_startup of broken failed after ")
        and m.endswith(" ms: ConnectionRefusedError: no route to the API")
        for m in traced
    )


async def test_without_the_variable_nothing_is_traced(
    bot_harness: Callable[..., BotHarness],
    plugin_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("BOT_TRACE_HOOKS", raising=False)
    caplog.set_level(logging.INFO, logger="bot.trace")
    async with bot_harness(
        {"weather": {"city": "Oslo"}}, config={"bot": {"plugin_dirs": [str(plugin_dir)]}}
    ) as bot:
        assert await bot.chat().say("!weather") == ["sunny in Oslo"]
    assert not [r for r in caplog.records if r.name == "bot.trace"]


def test_bot_plugins_health_exits_0_when_every_configured_plugin_started(
    tmp_path: Path, plugin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, plugin_dir, "  weather: {city: Oslo}\n")
    assert main(["plugins", "--config", str(config), "--health", "--wait", "0", "--json"]) == 0
    described = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert described["weather"]["state"] == "running"


def test_bot_plugins_help_says_health_uses_a_throwaway_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["plugins", "--help"])
    assert "throwaway in-memory database" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("argv", [["--help"], ["plugins", "--help"], ["new-plugin", "--help"]])
def test_command_line_help_is_plain_text(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    out = capsys.readouterr().out
    assert out.startswith("usage: bot")
    assert "``" not in out and ":class:" not in out and ":func:" not in out
