"""What a user sees when looking for a command: ``help``, and a command that cannot run now.

A group that is also a command lists its subcommands; a command turned off in a chat is not
offered there; a command of a plugin that is down says so and why, instead of "Unknown
command".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.testing import BotHarness

POINTS = '''
from bot import Permission, PluginConfig, command, hookimpl


class Config(PluginConfig):
    fail: bool = False


@command()
async def points(ctx, user: str) -> str:
    """Show a viewer's points."""
    return f"{user} has 10 points"


@command("points top")
async def top(ctx) -> str:
    """The viewers with the most points."""
    return "alice"


@command("points add", permission=Permission.ADMIN)
async def add(ctx, user: str, amount: int) -> str:
    """Give a viewer points."""
    return "done"


@command()
async def quote(ctx) -> str:
    """A random quote."""
    return "to be or not to be"


@hookimpl
def bot_config_model():
    return Config


@hookimpl
def bot_commands():
    return [points, top, add, quote]


@hookimpl
async def bot_startup(plugin, config):
    if config.fail:
        raise ConnectionRefusedError("the points API at https://api.example/ refused us")
'''


def make(
    bot_harness: Callable[..., BotHarness], plugin_dir: Callable[..., Path], **section: object
) -> BotHarness:
    directory = plugin_dir(points=POINTS)
    return bot_harness({"points": section}, config={"bot": {"plugin_dirs": [str(directory)]}})


async def test_help_for_a_group_that_is_also_a_command_lists_its_subcommands(
    bot_harness: Callable[..., BotHarness], plugin_dir: Callable[..., Path]
) -> None:
    async with make(bot_harness, plugin_dir) as bot:
        (text,) = await bot.chat().say("!help points", user="u1")
        assert text.splitlines() == [
            "!points <user>",
            "Show a viewer's points.",
            "Subcommands:",
            "  !points top - The viewers with the most points.",
        ]
        (text,) = await bot.chat().say("!help points", user="boss", admin=True)
        assert "  !points add <user> <amount> - Give a viewer points." in text.splitlines()


async def test_help_hides_what_is_turned_off_in_this_chat_only(
    bot_harness: Callable[..., BotHarness], plugin_dir: Callable[..., Path]
) -> None:
    async with make(bot_harness, plugin_dir) as bot:
        here, there = bot.chat("here"), bot.chat("there")
        assert await here.say("!plugins disable quote here", user="boss", admin=True) == [
            "quote disabled in this chat."
        ]
        (listing,) = await here.say("!help", user="u1")
        assert "!quote" not in listing
        assert "!points <user>" in listing
        assert await here.say("!help quote", user="u1") == ["No command !quote. Try !help."]
        assert "!quote - A random quote." in (await there.say("!help", user="u1"))[0]

        assert await here.say("!plugins disable points here", user="boss", admin=True) == [
            "points disabled in this chat."
        ]
        (listing,) = await here.say("!help", user="u1")
        assert "!points" not in listing
        assert await here.say("!help points", user="u1") == ["No command !points. Try !help."]


async def test_a_command_of_a_plugin_that_is_down_says_so_and_why(
    bot_harness: Callable[..., BotHarness], plugin_dir: Callable[..., Path]
) -> None:
    async with make(bot_harness, plugin_dir, fail=True) as bot:
        chat = bot.chat()
        down = "the points plugin is down: ConnectionRefusedError: the points API at"
        for command in ("!quote", "!points alice", "!points add alice 3", "!Points top"):
            (reply,) = await chat.say(command, user="u1")
            assert reply.startswith(down), (command, reply)
        assert (await chat.say("!quotes", user="u1"))[0].startswith("Unknown command !quotes.")


async def test_a_command_of_a_plugin_an_admin_disabled_is_gone_until_enabled(
    bot_harness: Callable[..., BotHarness], plugin_dir: Callable[..., Path]
) -> None:
    async with make(bot_harness, plugin_dir) as bot:
        chat = bot.chat()
        assert await chat.say("!plugins disable points", user="boss", admin=True) == [
            "points disabled."
        ]
        assert (await chat.say("!quote", user="u1"))[0].startswith("Unknown command !quote.")
        assert await chat.say("!plugins enable points", user="boss", admin=True) == [
            "points enabled."
        ]
        assert await chat.say("!quote", user="u1") == ["to be or not to be"]


async def test_a_plugin_whose_config_is_invalid_still_names_its_commands(
    bot_harness: Callable[..., BotHarness], plugin_dir: Callable[..., Path]
) -> None:
    async with make(bot_harness, plugin_dir, fail="often") as bot:
        (reply,) = await bot.chat().say("!quote", user="u1")
        assert reply.startswith("the points plugin is down: plugins.points.fail:")
