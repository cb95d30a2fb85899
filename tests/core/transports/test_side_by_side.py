"""Console, Discord and Telegram side by side in one process and one event loop.

The real discord.py and python-telegram-bot talk to the fakes on 127.0.0.1; the console reads
from a pipe. One plugin serves all three; an alert reaches a subscribed Discord channel and a
subscribed Telegram chat; when the Discord gateway goes away, Telegram and the console keep
working and ``status`` says what is wrong.
"""

from __future__ import annotations

import asyncio
import io
import os
import textwrap
import warnings
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401

from fake_discord import FakeDiscord, FakeGuild
from fake_telegram import FakeTelegram, TgUser

from bot.app import Bot
from bot.config import config_from_dict
from bot.transports.console import ConsoleTransport
from bot.transports.discord import DiscordTransport
from bot.transports.telegram import TelegramTransport

PLUGIN = '''
from bot import Permission, Rest, Topic, command, hookimpl, subscription_command

@command()
async def where(ctx) -> str:
    """Say which platform this is."""
    return f"{ctx.user_name} on {ctx.platform}"

@command(permission=Permission.ADMIN)
async def announce(ctx, text: Rest) -> str:
    """Publish news."""
    return f"sent to {ctx.publish('multi.news', text)} chats"

@hookimpl
def bot_alert_topics():
    return [Topic("multi.news", "News")]

@hookimpl
def bot_commands():
    return [where, announce, subscription_command("news", "multi.news")]
'''

ANN = TgUser(7001, "Ann", "ann_tg")


async def wait_until(predicate, timeout: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class PipeConsole(ConsoleTransport):
    """The console transport reading a pipe the test writes to (stdin stays open)."""

    def __init__(self) -> None:
        read_fd, self.write_fd = os.pipe()
        self.output = io.StringIO()
        super().__init__(stdin=os.fdopen(read_fd, "r"), stdout=self.output)

    def type(self, line: str) -> None:
        os.write(self.write_fd, (line + "\n").encode())

    def lines(self) -> list[str]:
        return self.output.getvalue().splitlines()

    async def stop(self) -> None:
        os.close(self.write_fd)
        await super().stop()


async def test_three_transports_in_one_loop(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "multi.py").write_text(textwrap.dedent(PLUGIN))
    guild = FakeGuild.sample()
    alice = guild.member("alice")
    general, alerts = guild.channel("general"), guild.channel("alerts")
    async with FakeDiscord(guilds=[guild]) as dfake, FakeTelegram() as tfake:
        tfake.add_chat({"id": ANN.id, "type": "private", "first_name": ANN.first_name})
        config = {
            "bot": {
                "database": "bot.db",
                "plugin_dirs": ["plugins"],
                "alert_window": 0.05,
                "admins": {"discord": [alice.id], "telegram": [ANN.id]},
            },
            "transports": {
                "discord": {
                    "enabled": True,
                    "token": dfake.token,
                    "api_base": dfake.api_base,
                    "gateway_url": dfake.gateway_url,
                    "guild_ids": [guild.id],
                    "guild_ready_timeout": 0.05,
                    "reconnect_delay": 0.05,
                    "reconnect_max_delay": 0.2,
                },
                "telegram": {
                    "enabled": True,
                    "token": tfake.token,
                    "base_url": tfake.base_url,
                    "base_file_url": tfake.base_file_url,
                    "poll_timeout": 1,
                    "reconnect_min": 0.05,
                    "reconnect_max": 0.2,
                },
            },
            "plugins": {"multi": {}},
        }
        console = PipeConsole()
        transports = [console, DiscordTransport(), TelegramTransport()]
        bot = Bot(config_from_dict(config, base_dir=tmp_path), transports=transports)
        await bot.start()
        try:
            discord_t, telegram_t = bot.transports["discord"], bot.transports["telegram"]
            await wait_until(
                lambda: discord_t.state == "up" and telegram_t.state == "up", what="both up"
            )

            # One command, three platforms, one identity each: (platform, user id).
            await dfake.inject_message(general.id, "!where", author=alice)
            sent = await dfake.wait_for_message(general.id)
            assert sent.content == "alice on discord"
            await tfake.inject_message("/where", user=ANN)
            call = await tfake.wait_for_sent(ANN.id)
            assert call.result["text"] == "Ann on telegram"
            console.type("!where")
            await wait_until(lambda: "console on console" in console.lines(), what="console")

            # An alert reaches the subscribed Discord channel and Telegram chat.
            await dfake.inject_message(alerts.id, "!news on", author=alice)
            await dfake.wait_for_message(alerts.id)
            await tfake.inject_message("/news on", user=ANN)
            await tfake.wait_for_sent(ANN.id)
            console.type("!announce the doors open at 8")
            await wait_until(lambda: "sent to 2 chats" in console.lines(), what="announce")
            news = await dfake.wait_for_message(alerts.id)
            assert news.content == "the doors open at 8"
            call = await tfake.wait_for_sent(ANN.id)
            assert call.result["text"] == "the doors open at 8"

            # Discord's gateway goes away: the others keep working, status says so.
            await dfake.set_gateway_fault("refuse")
            await wait_until(lambda: discord_t.state != "up", what="discord down")
            await tfake.inject_message("/status", user=ANN)
            status = (await tfake.wait_for_sent(ANN.id)).result["text"]
            assert "transport telegram: up" in status
            assert "transport discord: reconnecting" in status
            assert "transport console: up" in status
            console.type("!where")
            await wait_until(
                lambda: console.lines().count("console on console") == 2,
                what="console still answers",
            )

            # And Discord comes back on its own.
            await dfake.set_gateway_fault(None)
            await wait_until(lambda: discord_t.state == "up", what="discord back")
            await dfake.inject_message(general.id, "!where", author=alice)
            assert (await dfake.wait_for_message(general.id)).content == "alice on discord"
        finally:
            await bot.stop()
