"""The harness itself: the same bot as production, driven from a test."""

from __future__ import annotations

from bot.testing import BotHarness


async def test_say_returns_replies(bot_harness) -> None:
    async with bot_harness() as bot:
        assert isinstance(bot, BotHarness)
        chat = bot.chat()
        assert await chat.say("!ping") == ["pong"]
        assert await chat.say("hello, no prefix") == []
        (reply,) = await chat.say("!pnig")
        assert "Did you mean !ping?" in reply
