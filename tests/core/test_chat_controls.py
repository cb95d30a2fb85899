"""Per-chat control: an admin turns a plugin or one command off in one chat only.

The switch is stored in the database, so it survives a restart; it hides the commands from
``help`` there, refuses them with a plain sentence, and stops the plugin's alerts to that chat,
while every other chat (and the same chat id on another platform) is unaffected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.testing import BotHarness

GREETER = '''
from bot import Topic, command, hookimpl


@command()
async def greet(ctx) -> str:
    """Say hello."""
    return "hello"


@command("greet loud")
async def greet_loud(ctx) -> str:
    """Say hello, loudly."""
    return "HELLO"


@hookimpl
def bot_commands():
    return [greet, greet_loud]


@hookimpl
def bot_alert_topics():
    return [Topic("greeter.news", "Greeter news")]
'''


@pytest.fixture
def greeter_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "greeter.py").write_text(GREETER)
    return directory


def make_bot(
    bot_harness: Callable[..., BotHarness], greeter_dir: Path, **kwargs: object
) -> BotHarness:
    return bot_harness(
        {"greeter": {}}, config={"bot": {"plugin_dirs": [str(greeter_dir)]}}, **kwargs
    )


async def admin(bot: BotHarness, chat_id: str, text: str) -> list[str]:
    return await bot.chat(chat_id).say(text, user="boss", admin=True)


async def test_a_plugin_disabled_in_one_chat_still_works_in_another(
    bot_harness: Callable[..., BotHarness], greeter_dir: Path
) -> None:
    async with make_bot(bot_harness, greeter_dir) as bot:
        here, there = bot.chat("here"), bot.chat("there")
        elsewhere = bot.chat("here", platform="telegram")
        assert await admin(bot, "here", "!plugins disable greeter here") == [
            "greeter disabled in this chat."
        ]
        assert await here.say("!greet") == ["greet is turned off in this chat."]
        assert await here.say("!greet loud") == ["greet loud is turned off in this chat."]
        assert await there.say("!greet") == ["hello"]
        assert await elsewhere.say("!greet") == ["hello"]
        (help_here,) = await here.say("!help")
        (help_there,) = await there.say("!help")
        assert "!greet" not in help_here
        assert "!greet - Say hello." in help_there
        (listing,) = await admin(bot, "here", "!plugins greeter")
        assert listing.endswith("\n  off in this chat")
        (listing,) = await admin(bot, "there", "!plugins greeter")
        assert "off in this chat" not in listing

        assert await admin(bot, "here", "!plugins enable greeter here") == [
            "greeter enabled in this chat."
        ]
        assert await here.say("!greet") == ["hello"]


async def test_one_command_can_be_switched_off_in_one_chat(
    bot_harness: Callable[..., BotHarness], greeter_dir: Path
) -> None:
    async with make_bot(bot_harness, greeter_dir) as bot:
        here, there = bot.chat("here"), bot.chat("there")
        assert await admin(bot, "here", "!plugins disable greet loud here") == [
            "greet loud disabled in this chat."
        ]
        assert await here.say("!greet loud") == ["greet loud is turned off in this chat."]
        assert await here.say("!greet") == ["hello"]
        assert await there.say("!greet loud") == ["HELLO"]
        (listing,) = await admin(bot, "here", "!plugins greeter")
        assert listing.endswith("\n  off in this chat: greet loud")

        # Turning a command on while its whole plugin is off here says so.
        await admin(bot, "here", "!plugins disable greeter here")
        assert await admin(bot, "here", "!plugins enable greet loud here") == [
            "greet loud enabled in this chat. The greeter plugin itself is still off here: "
            "!plugins enable greeter here"
        ]
        assert await here.say("!greet loud") == ["greet loud is turned off in this chat."]
        await admin(bot, "here", "!plugins enable greeter here")
        assert await here.say("!greet loud") == ["HELLO"]


async def test_the_switch_is_stored_and_survives_a_restart(
    bot_harness: Callable[..., BotHarness], greeter_dir: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "botdir"
    directory.mkdir()
    async with make_bot(bot_harness, greeter_dir, directory=directory) as bot:
        await admin(bot, "here", "!plugins disable greeter here")
        await admin(bot, "there", "!plugins disable greet loud here")
        rows = {
            (r["chat_id"], r["plugin"], r["command"], r["enabled"])
            for r in bot.bot.store.db["chat_controls"].rows
        }
        assert rows == {("here", "greeter", "", 0), ("there", "greeter", "greet loud", 0)}
    async with make_bot(bot_harness, greeter_dir, directory=directory) as bot:
        assert await bot.chat("here").say("!greet") == ["greet is turned off in this chat."]
        assert await bot.chat("there").say("!greet") == ["hello"]
        assert await bot.chat("there").say("!greet loud") == [
            "greet loud is turned off in this chat."
        ]


async def test_alerts_are_not_sent_to_a_chat_where_the_plugin_is_off(
    bot_harness: Callable[..., BotHarness], greeter_dir: Path
) -> None:
    async with make_bot(bot_harness, greeter_dir) as bot:
        here, there = bot.chat("here"), bot.chat("there")
        for chat in (here, there):
            bot.bot.alerts.subscribe(chat.platform, chat.chat_id, "greeter.news")
        await admin(bot, "here", "!plugins disable greeter here")
        assert bot.plugin("greeter").publish("greeter.news", "the shop opens") == 1
        await bot.flush_alerts()
        assert [(a.chat_id, a.text) for a in bot.alerts_sent] == [("there", "the shop opens")]


async def test_refusals_are_plain_sentences_and_change_nothing(
    bot_harness: Callable[..., BotHarness], greeter_dir: Path
) -> None:
    async with make_bot(bot_harness, greeter_dir) as bot:
        chat = bot.chat("here")
        assert await chat.say("!plugins disable greeter here", user="pleb") == [
            "This command is for admins only."
        ]
        for text, answer in (
            ("!plugins disable nosuch here", "No plugin or command named 'nosuch'."),
            (
                "!plugins disable help here",
                "The core plugin and its commands cannot be turned off.",
            ),
            ("!plugins disable core", "The core plugin and its commands cannot be turned off."),
            (
                "!plugins disable greet loud",
                "A single command can only be switched in one chat: "
                "!plugins disable greet loud here",
            ),
        ):
            assert await admin(bot, "here", text) == [answer]
        (usage,) = await admin(bot, "here", "!plugins disable here")
        assert usage.startswith("name a plugin, or a command followed by 'here'")
        assert list(bot.bot.store.db["chat_controls"].rows) == []
        assert await chat.say("!greet") == ["hello"]
        # Refusals of admin commands are audited like successes.
        outcomes = [row["outcome"] for row in bot.bot.store.audit_rows()]
        assert "refused: No plugin or command named 'nosuch'." in outcomes
