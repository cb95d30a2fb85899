"""Anti-spam (issue 13): the requests that make the game message a player are limited, and
the limits are stored, so a restart of the bot does not reset them. Codes are never asked
for in a group chat: the exchange continues in private chat."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot_plugins.chatwars.simulator import ChatWarsSimulator


def _options(settings: dict[str, Any], directory: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "plugins": {"chatwars": {**settings, **overrides}},
        "directory": directory,
        "admins": {"console": ["boss"]},
    }


async def test_the_permission_cooldown_survives_a_restart(
    bot_harness: Callable[..., Any],
    chatwars_settings: dict[str, Any],
    chatwars_sim: ChatWarsSimulator,
    chatwars_link: Any,
    tmp_path: Path,
) -> None:
    world = chatwars_sim.world
    directory = tmp_path / "kept"
    directory.mkdir()
    options = _options(chatwars_settings, directory)
    async with bot_harness(**options) as bot:
        assert await bot.client("chatwars").wait_connected(5)
        chatwars_link(bot, "u1", 5801)
        chat = bot.chat(kind="private")
        [question] = await chat.say("!cw profile", user="u1")
        assert "ChatWars has sent you a request" in question
        await chat.say("cancel", user="u1")
    assert len(world.codes_sent(5801, "operation")) == 1

    async with bot_harness(**options) as bot:
        assert await bot.client("chatwars").wait_connected(5)
        chat = bot.chat(kind="private")
        [question] = await chat.say("!cw profile", user="u1")
        # The game is not asked again after the restart; the earlier request still counts.
        assert "ChatWars sent you a request earlier" in question
        assert len(world.codes_sent(5801, "operation")) == 1
        [profile] = await chat.say(world.last_code(5801, "operation"), user="u1")
        assert "level" in profile
        assert [r["action"] for r in world.requests].count("authAdditionalOperation") == 1


async def test_link_codes_are_limited_per_target_player_across_users_and_restarts(
    bot_harness: Callable[..., Any],
    chatwars_settings: dict[str, Any],
    chatwars_sim: ChatWarsSimulator,
    tmp_path: Path,
) -> None:
    world = chatwars_sim.world
    directory = tmp_path / "kept"
    directory.mkdir()
    options = _options(chatwars_settings, directory, link_codes_per_player=2)
    async with bot_harness(**options) as bot:
        assert await bot.client("chatwars").wait_connected(5)
        chat = bot.chat(kind="private")
        assert "a code" in (await chat.say("!cw link 5802", user="u1"))[0]
        assert "a code" in (await chat.say("!cw link 5802", user="u2"))[0]
        [refused] = await chat.say("!cw link 5802", user="u3")
        assert refused.startswith(
            "The ChatWars bot has already sent Telegram user 5802 link codes recently"
        )
        # Another player is not affected.
        assert "a code" in (await chat.say("!cw link 5803", user="u3"))[0]
    assert len(world.codes_sent(5802, "auth")) == 2

    async with bot_harness(**options) as bot:
        assert await bot.client("chatwars").wait_connected(5)
        chat = bot.chat(kind="private")
        [refused] = await chat.say("!cw link 5802", user="u4")
        assert "already sent Telegram user 5802 link codes" in refused
        assert len(world.codes_sent(5802, "auth")) == 2
        # The code already sent still finishes linking.
        code = world.last_code(5802, "auth")
        [linked] = await chat.say(f"!cw code {code}", user="u2")
        assert linked.startswith("Your ChatWars account is linked (Telegram user 5802)")


async def test_code_exchanges_started_in_a_group_continue_in_private_chat(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot() as bot:
        group = bot.chat("group1", kind="group")
        private = bot.chat("dm-u1", kind="private")
        [started] = await group.say("!cw link 5804", user="u1")
        assert "Send it to me in a private chat with !cw code <code>" in started
        code = world.last_code(5804, "auth")
        [refused] = await group.say(f"!cw code {code}", user="u1")
        assert refused.startswith("Codes from the ChatWars bot are for private chats")
        assert bot.bot.store.get_link("console", "u1", "chatwars") is None
        [linked] = await private.say(f"!cw code {code}", user="u1")
        assert linked.startswith("Your ChatWars account is linked")

        # A permission asked for in the group is not answered there either.
        [asked] = await group.say("!cw stock", user="u1")
        assert asked.startswith("The bot needs your permission to read your stock")
        assert "Send me the code in a private chat with !cw code <code>" in asked
        [granted] = await private.say(f"!cw code {world.last_code(5804, 'operation')}", user="u1")
        assert granted.startswith("Thank you: the bot may now read your stock")
        [stock] = await group.say("!cw stock", user="u1")
        assert stock.startswith("Your stock")
