"""The ChatWars chat commands end to end: bot harness -> plugin -> client -> RabbitMQ ->
simulator and back. Linking, profile and stock (with the Forbidden -> approve -> retry path),
every result code's message, and fifty users at once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from bot import UserRef
from bot_plugins.chatwars.errors import RESULT_ERRORS, InsufficientFunds
from bot_plugins.chatwars.simulator import ChatWarsSimulator

# --------------------------------------------------------------------------- linking


async def test_link_flow_stores_token_and_game_id_encrypted(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator
) -> None:
    world = chatwars_sim.world
    world.add_user(5101, name="Wolpertinger")
    async with chatwars_bot() as bot:
        chat = bot.chat(kind="private")
        [reply] = await chat.say("!cw link 5101", user="u1")
        assert "sent Telegram user 5101 a code" in reply and "!cw code <code>" in reply
        code = world.last_code(5101, "auth")
        assert code not in reply  # a real server's code is never echoed in chat

        [wrong] = await chat.say("!cw code 99999", user="u1")
        assert wrong == "That code is not right; check the code the ChatWars bot sent you."
        assert bot.bot.store.get_link("console", "u1", "chatwars") is None

        [linked] = await chat.say(f"!cw code {code}", user="u1")
        assert linked == "Your ChatWars account is linked (Telegram user 5101). Try !cw profile."
        link = bot.bot.store.get_link("console", "u1", "chatwars")
        assert link is not None and link.account == "5101"
        assert link.data == {"telegram_id": 5101, "game_id": world.users[5101].game_id}
        token = link.token
        assert token and token in world._tokens
        # At rest both are ciphertext.
        row = bot.bot.store.conn.execute(
            "select token, data from links where user_id = 'u1' and service = 'chatwars'"
        ).fetchone()
        assert token not in row[0] and world.users[5101].game_id not in row[1]
        assert await chat.say("!links", user="u1") == [
            "chatwars: 5101 (proven by chatwars, with a token)"
        ]

        # The code was used up: linking again needs a new one.
        assert (await chat.say(f"!cw code {code}", user="u1"))[0].startswith("Nothing is waiting")

        assert await chat.say("!cw unlink", user="u1") == [
            "Your ChatWars link is removed. The game still lists this bot's access; you can "
            "revoke it there."
        ]
        assert bot.bot.store.get_link("console", "u1", "chatwars") is None
        assert await chat.say("!cw unlink", user="u1") == ["You had no ChatWars link."]


async def test_link_on_telegram_uses_the_callers_own_id(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator
) -> None:
    async with chatwars_bot() as bot:
        tg = bot.chat("dm", platform="telegram", kind="private")
        [reply] = await tg.say("!cw link", user="5102")
        assert "sent Telegram user 5102 a code" in reply
        code = chatwars_sim.world.last_code(5102, "auth")
        await tg.say(f"!cw code {code}", user="5102")
        assert bot.bot.store.get_link("telegram", "5102", "chatwars") is not None

        console = bot.chat(kind="private")
        [reply] = await console.say("!cw link", user="u1")
        assert reply.startswith("Tell me your Telegram user id: !cw link <id>")
        assert chatwars_sim.world.codes_sent(5102, "auth")[-1].code == code  # nothing sent


async def test_bad_link_input_is_refused_before_anything_is_sent(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator
) -> None:
    async with chatwars_bot() as bot:
        chat = bot.chat(kind="private")
        sent = len(chatwars_sim.world.requests)
        assert await chat.say("!cw link -5", user="u1") == [
            "A Telegram user id is a positive whole number."
        ]
        [usage] = await chat.say("!cw link bob", user="u1")
        assert "<telegram_id> must be a whole number" in usage
        await chat.say("!cw link 5103", user="u1")
        assert await chat.say("!cw code <b>", user="u1") == [
            "The code must be the letters and digits the ChatWars bot sent."
        ]
        assert len(chatwars_sim.world.requests) == sent + 1  # only the createAuthCode
        chatwars_sim.world.remove_user(5104)
        assert await chat.say("!cw link 5104", user="u2") == [
            "ChatWars has no active player with that Telegram id."
        ]


# --------------------------------------------------------------------------- profile, stock


async def test_profile_asks_for_permission_then_retries(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    world.add_user(5201, name="Wolpertinger", castle="🦌", level=35, guild="No Correlation")
    async with chatwars_bot() as bot:
        chatwars_link(bot, "u1", 5201)
        chat = bot.chat(kind="private")
        [question] = await chat.say("!cw profile", user="u1")
        assert question == (
            "The bot needs your permission to read your profile: ChatWars has sent you a "
            "request. Send me the code from that message (or 'cancel')."
        )
        [sent] = world.codes_sent(5201, "operation")
        [profile] = await chat.say(sent.code, user="u1")
        # Named as the game writes it: castle, [guild tag], name.
        assert profile.splitlines()[0].startswith("🦌[NC]Wolpertinger")
        assert "❤️1200/1200" in profile
        assert "level 35, guild No Correlation" in profile
        assert "10 gold pouches" in profile
        # Now allowed: no question, no new request to the player.
        [again] = await chat.say("!cw profile", user="u1")
        assert again == profile
        assert len(world.codes_sent(5201, "operation")) == 1


async def test_stock_wrong_code_then_no_second_request_within_the_cooldown(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    world.add_user(5202, stock={"Bone": 239, "Charcoal": 158, "Pouch of gold": 3})
    async with chatwars_bot() as bot:
        chatwars_link(bot, "u1", 5202)
        chat = bot.chat(kind="private")
        await chat.say("!cw stock", user="u1")
        assert await chat.say("000000", user="u1") == [
            "That code is not right; check the code the ChatWars bot sent you."
        ]
        # Asked again in chat, but the game is not asked again (no spam).
        [question] = await chat.say("!cw stock", user="u1")
        assert "ChatWars sent you a request earlier" in question
        assert len(world.codes_sent(5202, "operation")) == 1
        [stock] = await chat.say(world.last_code(5202, "operation"), user="u1")
        assert stock == "Your stock (3 kinds):\nBone: 239\nCharcoal: 158\nPouch of gold: 3"


async def test_permission_can_be_cancelled_and_granted_later_with_cw_code(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot() as bot:
        chatwars_link(bot, "u1", 5203)
        chat = bot.chat(kind="private")
        await chat.say("!cw stock", user="u1")
        [cancelled] = await chat.say("cancel", user="u1")
        assert cancelled == (
            "Cancelled; nothing was changed. You can still send the code later with "
            "!cw code <code>."
        )
        code = world.last_code(5203, "operation")
        assert await chat.say(f"!cw code {code}", user="u1") == [
            "Thank you: the bot may now read your stock. Run your command again."
        ]
        [stock] = await chat.say("!cw stock", user="u1")
        assert stock.startswith("Your stock (")


async def test_commands_need_a_link(chatwars_bot: Callable[..., Any]) -> None:
    async with chatwars_bot() as bot:
        chat = bot.chat(kind="private")
        for text in ("!cw profile", "!cw stock", "!cw pay 1", "!cw confirm 1234"):
            assert await chat.say(text, user="u9") == [
                "Link your ChatWars account first: !cw link <your Telegram user id>."
            ]


async def test_revoked_token_says_how_to_link_again(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    async with chatwars_bot() as bot:
        chatwars_link(bot, "u1", 5204, "GetUserProfile")
        chatwars_sim.world.revoke_tokens(5204)
        assert await bot.chat(kind="private").say("!cw profile", user="u1") == [
            "Your ChatWars link is no longer valid (access was revoked); please link your "
            "account again with !cw link."
        ]


# --------------------------------------------------------------------------- result codes


async def test_every_result_code_reads_well_in_chat(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot() as bot:
        token = chatwars_link(bot, "u1", 5301, "GetUserProfile")
        chat = bot.chat(kind="private")
        seen: list[str] = []
        for code, cls in RESULT_ERRORS.items():
            bot.clock.advance(60)  # past the command's cool-down
            world.inject(code, action="requestProfile", user_id=5301)
            [reply] = await chat.say("!cw profile", user="u1")
            expected = cls.default_message
            if code == "InvalidToken":
                expected = expected.rstrip(".") + " with !cw link."
            assert reply == expected, code
            assert token.token not in reply
            seen.append(reply)
        bot.clock.advance(60)
        world.inject("SomethingNew", action="requestProfile", user_id=5301)
        assert await chat.say("!cw profile", user="u1") == [
            "ChatWars refused the request (SomethingNew)."
        ]
        # Every sentence is a sentence: capitalised, ends with a full stop, no code names.
        for text in seen:
            assert text[0].isupper() and text.endswith("."), text
        # Action-specific wording.
        world.inject("InsufficientFunds", action="authorizePayment", user_id=5301)
        assert await chat.say("!cw pay 1", user="u1") == [
            InsufficientFunds.by_action["authorizePayment"]
        ]


# --------------------------------------------------------------------------- fifty users


async def test_fifty_users_at_once_get_their_own_replies(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    users = [5400 + i for i in range(50)]
    async with chatwars_bot() as bot:
        for uid in users:
            world.add_user(uid, name=f"Player{uid}", pouches=uid % 7)
            chatwars_link(bot, f"c{uid}", uid, "GetUserProfile")
        replies = await asyncio.gather(
            *(bot.chat(f"room{uid}").say("!cw profile", user=f"c{uid}") for uid in users)
        )
        for uid, [reply] in zip(users, replies, strict=True):
            names = re.findall(r"Player\d+", reply)
            assert names == [f"Player{uid}"], reply
            assert f", {uid % 7} gold pouch" in reply
        assert bot.client("chatwars").status.in_flight == 0


async def test_payout_to_a_mention(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    async with chatwars_bot() as bot:
        chatwars_link(bot, "u77", 5501)
        mention = {"<@77>": UserRef("console", "u77", "bob")}
        [question, reply] = await bot.chat(kind="private").say(
            "!cw payout <@77> 2", user="boss", admin=True, confirm=True, mentions=mention
        )
        assert question == (
            "Send 2 gold pouches (200 gold) from the bot's ChatWars balance to Telegram user "
            "5501, with no message?"
        )
        assert reply.startswith("Paid 2 gold pouches to Telegram user 5501.")
        assert [t.user_id for t in chatwars_sim.world.payouts] == [5501]


async def test_an_unanswered_permission_question_says_how_to_finish_later(
    bot_harness: Callable[..., Any],
    chatwars_settings: dict[str, Any],
    chatwars_sim: ChatWarsSimulator,
    chatwars_link: Any,
) -> None:
    async with bot_harness(
        plugins={"chatwars": chatwars_settings}, config={"bot": {"ask_timeout": 0.2}}
    ) as bot:
        chatwars_link(bot, "u1", 5205)
        chat = bot.chat(kind="private")
        await chat.say("!cw profile", user="u1")
        await chatwars_sim.wait_until(lambda: len(chat.replies) == 2)
        assert chat.replies[-1].text == (
            "No answer came in time, so nothing was done. You can still send the code later "
            "with !cw code <code>."
        )
        code = chatwars_sim.world.last_code(5205, "operation")
        assert (await chat.say(f"!cw code {code}", user="u1"))[0].startswith("Thank you")
