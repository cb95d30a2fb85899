"""Discovery and failure isolation: one broken plugin never stops the others."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
        assert "unknown hook(s): bot_comands" in failures["typo"]
        assert "already declared by plugin 'good'" in failures["zclash"]
        assert "no plugin named 'missing'" in failures["missing"]
        chat = bot.chat()
        assert await chat.say("!hello") == ["hello from good"]
        assert (await chat.say("!never"))[0].startswith("Unknown command !never")
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
