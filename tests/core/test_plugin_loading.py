"""Discovery and failure isolation: one broken plugin never stops the others."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import bot_plugins
from bot.plugin_loading import discover_plugins
from bot.plugins import import_plugin_directory

GOOD = '''
from bot import command, hookimpl

@command()
async def hello(ctx) -> str:
    """Say hello."""
    return "hello from good"

@hookimpl
def bot_commands():
    return [hello]
'''

BROKEN_IMPORT = "import this_module_does_not_exist\n"

BAD_CONFIG = """
from bot import PluginConfig, hookimpl

class Cfg(PluginConfig):
    size: int

@hookimpl
def bot_config_model():
    return Cfg
"""

BAD_START = '''
from bot import command, hookimpl

@command()
async def never(ctx) -> str:
    """Never registered."""
    return "no"

@hookimpl
def bot_commands():
    return [never]

@hookimpl
async def bot_startup(plugin):
    raise ConnectionRefusedError("the service refused us")
'''

TYPO_HOOK = """
from bot import hookimpl

@hookimpl
def bot_comands():
    return []
"""

CLASH = '''
from bot import command, hookimpl

@command()
async def hello(ctx) -> str:
    """Clashes with good's hello."""
    return "clash"

@hookimpl
def bot_commands():
    return [hello]
'''


async def test_failing_plugins_are_reported_and_the_rest_runs(
    bot_harness, plugin_dir: Callable[..., Path]
) -> None:
    directory = plugin_dir(
        good=GOOD,
        broken=BROKEN_IMPORT,
        badconfig=BAD_CONFIG,
        badstart=BAD_START,
        typo=TYPO_HOOK,
        zclash=CLASH,
    )
    plugins = {n: {} for n in ("good", "broken", "badconfig", "badstart", "typo", "zclash")}
    plugins["badconfig"] = {"size": "huge"}
    plugins["missing"] = {}
    async with bot_harness(plugins, config={"bot": {"plugin_dirs": [str(directory)]}}) as bot:
        failures = bot.failures
        assert set(failures) == {"broken", "badconfig", "badstart", "typo", "zclash", "missing"}
        assert "No module named 'this_module_does_not_exist'" in failures["broken"]
        assert failures["badconfig"].startswith("plugins.badconfig.size:")
        assert "the service refused us" in failures["badstart"]
        assert "unknown hook(s): bot_comands (did you mean bot_commands?)" in failures["typo"]
        assert "already declared by plugin 'good'" in failures["zclash"]
        assert "no plugin named 'missing'" in failures["missing"]
        chat = bot.chat()
        assert await chat.say("!hello") == ["hello from good"]
        assert await chat.say("!never") == [
            "the badstart plugin is down: ConnectionRefusedError: the service refused us"
        ]
        (status,) = await chat.say("!status")
        assert "plugin badstart: down - ConnectionRefusedError: the service refused us" in status
        assert "transport console: up" in status


async def test_plugins_can_be_disabled_and_enabled_at_runtime(
    bot_harness, plugin_dir: Callable[..., Path]
) -> None:
    directory = plugin_dir(good=GOOD)
    async with bot_harness({"good": {}}, config={"bot": {"plugin_dirs": [str(directory)]}}) as bot:
        chat = bot.chat()
        assert await chat.say("!plugins disable good", user="a", admin=True) == ["good disabled."]
        assert (await chat.say("!hello"))[0].startswith("Unknown command")
        assert await chat.say("!plugins enable good", user="a", admin=True) == ["good enabled."]
        assert await chat.say("!hello") == ["hello from good"]
        (listing,) = await chat.say("!plugins", user="a", admin=True)
        assert "good - [directory]: up" in listing
        assert await chat.say("!plugins disable good", user="u") == [
            "This command is for admins only."
        ]


async def test_bundled_plugins_are_discovered(bot_harness) -> None:
    async with bot_harness() as bot:
        available = bot.bot.plugins.available
        assert available["core"].source == "core"
        for name in ("deepbot", "chatwars", "concertpos", "games", "rooms"):
            assert available[name].source == "bundled"


LEAKY = """
from pydantic import SecretStr
from bot import PluginConfig, hookimpl

class Cfg(PluginConfig):
    password: SecretStr

@hookimpl
def bot_config_model():
    return Cfg

@hookimpl
async def bot_startup(plugin, config):
    raise ConnectionError("login failed for amqp://bot:" + config.password.get_secret_value() + "@host")
"""


async def test_status_never_shows_a_configured_secret(
    bot_harness, plugin_dir: Callable[..., Path]
) -> None:
    directory = plugin_dir(leaky=LEAKY)
    plugins = {"leaky": {"password": "hunter2-pw"}}
    async with bot_harness(plugins, config={"bot": {"plugin_dirs": [str(directory)]}}) as bot:
        (status,) = await bot.chat().say("!status")
        assert "plugin leaky: down" in status
        assert "hunter2-pw" not in status and "amqp://bot:***@host" in status


# ------------------------------------------------------------------ shadowing and collisions

SHADOW = '''
from bot import command, hookimpl

@command("games here")
async def here(ctx) -> str:
    """Which games plugin runs."""
    return "the directory one"

@hookimpl
def bot_commands():
    return [here]
'''


async def test_a_directory_plugin_shadowing_a_bundled_one_is_a_warning_naming_both(
    bot_harness, plugin_dir: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    directory = plugin_dir(games=SHADOW)
    config = {"bot": {"plugin_dirs": [str(directory)]}}
    with caplog.at_level(logging.WARNING, logger="bot.plugins"):
        async with bot_harness({"games": {}}, config=config) as bot:
            chat = bot.chat()
            assert await chat.say("!games here") == ["the directory one"]
            (listing,) = await chat.say("!plugins games", user="a", admin=True)
    bundled = Path(bot_plugins.__path__[0]) / "games"
    assert (
        f"plugin games: the directory plugin at {directory / 'games.py'} shadows the bundled "
        f"plugin at {bundled}; the directory one runs"
    ) in caplog.text
    assert "games - [directory]: up" in listing
    assert f"shadows: bundled plugin at {bundled}" in listing


def _twin(root: Path, word: str) -> Path:
    package = root / "twin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .words import WORD\n")
    (package / "words.py").write_text(f"WORD = {word!r}\n")
    return package


def test_a_directory_plugin_imported_from_a_new_path_keeps_nothing_of_the_old_one(
    tmp_path: Path,
) -> None:
    saved = {n: m for n, m in sys.modules.items() if n.startswith("bot_ext_twin")}
    try:
        first = import_plugin_directory(_twin(tmp_path / "a", "first"))
        assert first.WORD == "first"
        second = import_plugin_directory(_twin(tmp_path / "b", "second"))
        assert second.WORD == "second"
        assert sys.modules["bot_ext_twin.words"].__file__ == str(tmp_path / "b/twin/words.py")
    finally:
        for name in [n for n in sys.modules if n.startswith("bot_ext_twin")]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_an_installed_package_shadowing_a_directory_plugin_is_shown_with_both_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site"
    (site / "twin_pkg").mkdir(parents=True)
    (site / "twin_pkg" / "__init__.py").write_text("")
    dist = site / "bot_twin-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bot-twin\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text("[bot.plugins]\ntwin = twin_pkg\n")
    monkeypatch.syspath_prepend(str(site))
    directory = tmp_path / "plugins"
    _twin(directory, "from a directory")
    with caplog.at_level(logging.WARNING, logger="bot.plugins"):
        found = discover_plugins([directory])
    assert found["twin"].source == "package"
    assert found["twin"].shadows == (f"directory plugin at {directory / 'twin'}",)
    assert (
        f"plugin twin: the package plugin at bot-twin: twin_pkg shadows the directory plugin "
        f"at {directory / 'twin'}; the package one runs"
    ) in caplog.text


TOOLS = '''
from bot import command, hookimpl

SEEN = {}

@command()
async def tools(ctx) -> str:
    """What the plugin was handed."""
    return f"{SEEN['prefix']}help, {SEEN['topics']} topic(s), {SEEN['links']} link(s)"

@hookimpl
def bot_commands():
    return [tools]

@hookimpl
def bot_startup(plugin):
    SEEN["prefix"] = plugin.prefix
    SEEN["topics"] = len(plugin.alerts.topics)
    SEEN["links"] = len(plugin.store.links_for("console", "u1"))
'''


async def test_plugin_offers_the_store_the_alert_router_and_the_prefix(
    bot_harness, plugin_dir: Callable[..., Path]
) -> None:
    directory = plugin_dir(tools=TOOLS)
    config = {"bot": {"plugin_dirs": [str(directory)], "prefix": "?"}}
    async with bot_harness({"tools": {}}, config=config) as bot:
        runtime = bot.plugin("tools")
        assert runtime.store is bot.bot.store
        assert runtime.alerts is bot.bot.alerts
        topics = len(bot.bot.alerts.topics)
        assert await bot.chat().say("?tools") == [f"?help, {topics} topic(s), 0 link(s)"]


def test_bot_plugins_on_the_command_line_shows_which_of_two_namesakes_runs(
    tmp_path: Path, plugin_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    directory = plugin_dir(games=SHADOW)
    config = tmp_path / "bot.yaml"
    config.write_text(f"bot:\n  database: {tmp_path / 'bot.db'}\n  plugin_dirs: [{directory}]\n")
    bundled = Path(bot_plugins.__path__[0]) / "games"
    saved = {n: m for n, m in sys.modules.items() if n.startswith("bot_ext_games")}
    try:
        assert main(["plugins", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert (
            f"games - [directory]: not in this config\n  from: {directory / 'games.py'}\n"
            f"  shadows: bundled plugin at {bundled}\n"
        ) in out
        assert main(["plugins", "--config", str(config), "--json"]) == 0
        (games,) = [d for d in json.loads(capsys.readouterr().out) if d["name"] == "games"]
    finally:
        for name in [n for n in sys.modules if n.startswith("bot_ext_games")]:
            del sys.modules[name]
        sys.modules.update(saved)
    assert games["source"] == "directory"
    assert games["location"] == str(directory / "games.py")
    assert games["shadows"] == [f"bundled plugin at {bundled}"]
