"""The DeepBot chat commands end to end: the real bot (harness) -> client -> simulator.

Every test runs the bot with the plugin configured against the ``deepbot_sim`` simulator on a
real websocket on 127.0.0.1 (or, in the embedded-default test, with ``simulate: true``), and
checks both the reply a chat user reads and what DeepBot ended up holding.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot import UserRef
from bot.testing import BotHarness
from bot_plugins import deepbot as plugin_module
from bot_plugins.deepbot.client import ConnectionState, DeepBotClient
from bot_plugins.deepbot.errors import AuthenticationFailed
from bot_plugins.deepbot.gives import GiveStatus, get_give, gives_with_status, new_give, set_status
from bot_plugins.deepbot.simulator import DeepBotSimulator, SimUser

ADMINS = {"console": ["boss"]}
StartBot = Callable[..., AbstractAsyncContextManager[BotHarness]]


def deepbot_section(sim: DeepBotSimulator, secret: str) -> dict[str, Any]:
    return {
        "url": sim.url,
        "secret": secret,
        "timeout": 1.0,
        "reconnect_min_delay": 0.02,
        "reconnect_max_delay": 0.1,
    }


@pytest.fixture
def start_bot(bot_harness: Any, deepbot_sim: DeepBotSimulator, deepbot_secret: str) -> StartBot:
    """Run the bot against ``deepbot_sim``; waits for the registration unless told not to."""

    @asynccontextmanager
    async def start(*, connect: bool = True, **overrides: Any) -> AsyncIterator[BotHarness]:
        section = {**deepbot_section(deepbot_sim, deepbot_secret), **overrides}
        async with bot_harness(plugins={"deepbot": section}, admins=ADMINS) as bot:
            assert bot.failures == {}
            if connect:
                await bot.client("deepbot").wait_connected(2.0)
            yield bot

    return start


async def eventually(condition: Callable[[], bool], within: float = 2.0) -> None:
    for _ in range(int(within / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in time")


async def link(bot: BotHarness, user: str, account: str) -> None:
    """Link and, like an admin would, approve the claim (admins' own are approved at once)."""
    reply = await bot.chat(f"link-{user}").say(f"!link deepbot {account}", user=user)
    assert reply[0].startswith(("You claimed DeepBot user", "You are now linked")), reply
    if reply[0].startswith("You claimed"):
        bot.approve_link(user, "deepbot")


def audit(bot: BotHarness) -> list[tuple[str, str, str]]:
    """(user, command, outcome) of every audit row, oldest first."""
    rows = reversed(bot.bot.store.audit_rows(limit=500))
    return [(r["user_id"], r["command"], r["outcome"]) for r in rows]


# --- reading ---------------------------------------------------------------------------------


async def test_everyone_reads_a_named_viewer(start_bot: StartBot) -> None:
    async with start_bot() as bot:
        chat = bot.chat()
        assert await chat.say("!points expertsonline") == ["expertsonline has 720.00 points"]
        assert await chat.say("!points Alice") == ["Alice has 500.00 points"]
        assert await chat.say("!hours expertsonline") == ["expertsonline has watched 218.75 hours"]
        assert await chat.say("!rank expertsonline") == [
            "expertsonline's rank is Sergeant - Star 2"
        ]
        assert await chat.say("!rank bob") == ["bob's rank is Recruit - Star 1"]
        assert await chat.say("!vip bob") == ["Bob is not a VIP."]
        # The doc's example: normal level, an expiry long gone.
        assert await chat.say("!vip expertsonline") == ["expertsonline is not a VIP."]
        assert await chat.say("!profile expertsonline") == [
            "expertsonline (streamer): 720.00 points, 218.75 hours watched\n"
            "Rank: Sergeant - Star 2. VIP: not a VIP.\n"
            "Joined 2014-07-05, last seen 2015-03-01."
        ]
        # Stream chats write @name; DeepBot knows the name without it.
        assert await chat.say("!points @bob") == ["bob has 100.00 points"]


async def test_vip_shows_the_level_name_and_expiry(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    now = datetime.now(UTC)
    gold = deepbot_sim.user("alice")
    gold.vip, gold.vip_expiry = 3, now + timedelta(days=10, hours=1)
    lapsed = deepbot_sim.user("bob")
    lapsed.vip, lapsed.vip_expiry = 1, datetime(2020, 5, 1, tzinfo=UTC)
    deepbot_sim.user("carol").vip = 2
    async with start_bot() as bot:
        chat = bot.chat()
        expiry = gold.vip_expiry.date().isoformat()
        assert await chat.say("!vip alice") == [
            f"Alice is a Gold VIP until {expiry} (10 days left)."
        ]
        assert await chat.say("!vip bob") == [
            "Bob is a Bronze VIP whose VIP time ended on 2020-05-01."
        ]
        (profile,) = await chat.say("!profile carol")
        assert profile.startswith("Carol (viewer): 0.00 points, 0.00 hours watched\n")
        assert "VIP: a Silver VIP with no expiry date." in profile


async def test_unknown_viewers_are_named_in_the_reply(start_bot: StartBot) -> None:
    async with start_bot() as bot:
        chat = bot.chat()
        for command in ("points", "hours", "rank", "vip", "profile"):
            assert await chat.say(f"!{command} nobody") == ["DeepBot has no user named nobody."]


async def test_without_a_user_the_linked_name_is_used_or_linking_is_explained(
    start_bot: StartBot,
) -> None:
    async with start_bot() as bot:
        chat = bot.chat()
        how = (
            "You have not linked a deepbot account yet. Link it with !link deepbot <name>, "
            "or name one in the command."
        )
        for command in ("points", "hours", "rank", "vip", "profile"):
            assert await chat.say(f"!{command}", user="u1") == [how]
        (claimed,) = await chat.say("!link deepbot ALICE", user="u1")
        assert claimed.startswith("You claimed DeepBot user Alice. An admin has to approve")
        assert await chat.say("!points", user="u1") == ["Alice has 500.00 points"]
        assert await chat.say("!hours", user="u1") == ["Alice has watched 100.00 hours"]
        assert await chat.say("!rank", user="u1") == ["Alice's rank is Sergeant - Star 1"]
        assert await chat.say("!vip", user="u1") == ["Alice is not a VIP."]
        (profile,) = await chat.say("!profile", user="u1")
        assert profile.startswith("Alice (viewer): 500.00 points, 100.00 hours watched")
        assert await chat.say("!links", user="u1") == [
            "deepbot: Alice (claimed, waiting for an admin: claim #1)"
        ]


async def test_link_checks_the_user_exists_and_is_not_someone_elses(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot() as bot:
        chat = bot.chat()
        assert await chat.say("!link deepbot nobody", user="u1") == [
            "DeepBot has no user named nobody."
        ]
        assert bot.bot.store.get_link("console", "u1", "deepbot") is None
        await link(bot, "u1", "bob")
        taken = (
            "Bob is already linked to another chat user for deepbot. If it is yours, ask an admin."
        )
        assert await chat.say("!link deepbot BOB", user="u2") == [taken]
        assert bot.bot.store.get_link("console", "u2", "deepbot") is None
        # One chat user per account across platforms; relinking oneself is fine.
        other = bot.chat(platform="telegram")
        assert await other.say("!link deepbot bob", user="t1") == [taken]
        await link(bot, "u1", "carol")
        assert bot.bot.store.get_link("console", "u1", "deepbot").account == "Carol"


async def test_chat_mentions_resolve_to_their_linked_viewer(start_bot: StartBot) -> None:
    async with start_bot() as bot:
        await link(bot, "u2", "bob")
        chat = bot.chat()
        bobby = {"@bobby": UserRef("console", "u2", "bobby")}
        carl = {"@carl": UserRef("console", "u3", "carl")}
        assert await chat.say("!points @bobby", user="u1", mentions=bobby) == [
            "Bob has 100.00 points"
        ]
        assert await chat.say("!points @carl", user="u1", mentions=carl) == [
            "carl has not linked a DeepBot account."
        ]


# --- give (more in test_deepbot_transfer.py) ----------------------------------------------------


async def test_give_moves_the_callers_points(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot() as bot:
        await link(bot, "u1", "alice")
        chat = bot.chat()
        assert await chat.say("!give bob 25", user="u1") == ["Alice gave 25 points to Bob."]
        assert await chat.say("!give @carol 2", user="u1") == ["Alice gave 2 points to Carol."]
        assert await chat.say("!give carol 1", user="u1") == ["Alice gave 1 point to Carol."]
        alice, bob, carol = (deepbot_sim.user(n) for n in ("alice", "bob", "carol"))
        assert (alice.points, alice.escrow) == (Decimal(472), 0)
        assert (bob.points, carol.points) == (Decimal(125), Decimal(3))
        assert list(deepbot_sim.received)[-5:] == [
            "api|get_points|Alice",  # checked first: never rely on a refusal
            "api|del_points|Alice|1|True",
            "api|get_points|Alice",  # not emptied by an install that ignores True
            "api|get_points|Carol",
            "api|add_points|Carol|1",
        ]
        assert not [f for f in deepbot_sim.received if "escrow" in f]
        (done,) = [r for r in gives_with_status(bot.bot.store, GiveStatus.DONE) if r.amount == "25"]
        assert (done.giver, done.receiver, done.user_id) == ("Alice", "Bob", "u1")


async def test_give_never_touches_escrow_deepbot_placed_itself(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    # Issue 13: the former give committed the giver's whole escrow, DeepBot's own included.
    deepbot_sim.user("alice").escrow = Decimal(50)  # e.g. a bet DeepBot holds for Alice
    async with start_bot() as bot:
        await link(bot, "u1", "alice")
        assert await bot.chat().say("!give bob 25", user="u1") == ["Alice gave 25 points to Bob."]
        alice = deepbot_sim.user("alice")
        assert (alice.points, alice.escrow, deepbot_sim.user("bob").points) == (475, 50, 125)


async def test_give_refusals_move_nothing(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot() as bot:
        chat = bot.chat()
        assert await chat.say("!give bob 5", user="u1") == [
            "You need to link your deepbot account first: !link deepbot <name>"
        ]
        await link(bot, "u1", "bob")
        sent = len(deepbot_sim.received)
        refusals = {
            "!give alice 0": "The number of points must be more than zero.",
            "!give alice -5": "The number of points must be more than zero.",
            "!give alice 1.5": "Points are whole numbers here.",
            "!give alice 3000000000": "DeepBot cannot take more than 2,147,483,647 points at once.",
            "!give BOB 5": "You cannot give points to yourself.",
            "!give @bob 5": "You cannot give points to yourself.",
        }
        for text, expected in refusals.items():
            assert await chat.say(text, user="u1") == [expected], text
        (usage,) = await chat.say("!give alice lots", user="u1")
        assert usage.startswith("<points> must be a number, not 'lots'")
        (usage,) = await chat.say("!give alice 1e1000000", user="u1")
        assert "too large" in usage
        assert len(deepbot_sim.received) == sent  # refused before DeepBot was asked
        assert await chat.say("!give alice 101", user="u1") == [
            "You do not have 101 points to give, so nothing was moved."
        ]
        assert not [f for f in deepbot_sim.received if "del_points" in f]
        assert await chat.say("!give nobody 5", user="u1") == ["DeepBot has no user named nobody."]
        bob, alice = deepbot_sim.user("bob"), deepbot_sim.user("alice")
        assert (bob.points, bob.escrow, alice.points) == (100, 0, 500)


async def test_give_refunds_the_giver_when_crediting_the_receiver_fails(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot() as bot:
        await link(bot, "u1", "alice")
        deepbot_sim.fail("add_points", "bob")  # DeepBot answers "failed" to the second step
        (reply,) = await bot.chat().say("!give bob 40", user="u1")
        assert reply.startswith("Nothing was given to Bob. DeepBot refused to change the points")
        assert reply.endswith("The 40 points went back to Alice.")
        alice = deepbot_sim.user("alice")
        assert (alice.points, alice.escrow, deepbot_sim.user("bob").points) == (500, 0, 100)
        assert deepbot_sim.received[-1] == "api|add_points|Alice|40"
        (refunded,) = gives_with_status(bot.bot.store, GiveStatus.REFUNDED)
        assert refunded.amount == "40"


async def test_give_whose_debit_is_unanswered_checks_the_balance(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot(timeout=0.3) as bot:
        await link(bot, "u1", "alice")
        deepbot_sim.fail("del_points", "alice", msg=None)  # not applied, never answered
        (reply,) = await bot.chat().say("!give bob 40", user="u1")
        assert reply == (
            "DeepBot did not answer in time (0.3 s). Alice's balance shows nothing was taken. "
            "Nothing was given."
        )
        alice = deepbot_sim.user("alice")
        assert (alice.points, alice.escrow, deepbot_sim.user("bob").points) == (500, 0, 100)
        (failed,) = gives_with_status(bot.bot.store, GiveStatus.FAILED)
        assert failed.giver == "Alice"
        assert not [f for f in deepbot_sim.received if "escrow" in f]


async def test_give_held_for_an_admin_is_audited_alerted_and_settled(
    bot_harness: Any, deepbot_sim: DeepBotSimulator, deepbot_secret: str
) -> None:
    # A give that stopped after the debit, found at start-up while Alice's balance has moved
    # by another amount: the bot cannot tell whether it took the points, so it moves nothing.
    section = deepbot_section(deepbot_sim, deepbot_secret)
    async with bot_harness(plugins={"deepbot": section}, admins=ADMINS) as bot:
        admins = bot.chat("admins")
        assert await admins.say("!deepbot alerts on", user="boss") == [
            "This chat now receives deepbot.escrow alerts."
        ]
        await link(bot, "u1", "alice")
        store = bot.bot.store
        give_id = new_give(
            store, platform="console", user_id="u1", giver="Alice", receiver="Bob", amount="30"
        )
        set_status(store, give_id, GiveStatus.DEBITING, balance_before="500")
        deepbot_sim.user("alice").points = Decimal(473)  # neither 500 nor 470
        assert await admins.say(f"!gives settle {give_id}", user="boss") == [
            f"give {give_id} is now held. DeepBot did not confirm taking 30 points from Alice, "
            "and Alice's balance changed by another amount since (it was 500). "
            "Stopped at: debiting."
        ]
        (listing,) = await admins.say("!gives held", user="boss")
        assert listing.startswith(f"give {give_id}: Alice -> Bob, 30 points. DeepBot did not")
        (reply,) = await bot.chat().say("!give bob 5", user="u1")
        assert reply == (
            f"Your give {give_id} (30 points to Bob) is not settled yet, so you cannot start "
            "another. An admin has to check it."
        )
        assert await admins.say(f"!gives settle {give_id}", user="boss") == [
            f"give {give_id} is marked settled; the bot moved no points for it."
        ]
        assert get_give(store, give_id).status == GiveStatus.SETTLED
        assert (deepbot_sim.user("alice").points, deepbot_sim.user("bob").points) == (473, 100)
        assert await admins.say("!gives held", user="boss") == ["No give is waiting for an admin."]
        assert await bot.chat().say("!give bob 5", user="u1") == ["Alice gave 5 points to Bob."]
        assert [r[1] for r in audit(bot) if r[1] == "gives settle"] == ["gives settle"] * 2


# --- admins ----------------------------------------------------------------------------------


async def test_admin_point_commands_change_deepbot_and_are_audited(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot() as bot:
        chat = bot.chat()
        bob = deepbot_sim.user("bob")
        assert await chat.say("!points set bob 50", user="boss") == ["bob now has 50.00 points."]
        assert await chat.say("!points add bob 2", user="boss") == [
            "Added 2 points to bob. bob now has 52.00 points."
        ]
        assert await chat.say("!points remove bob 1", user="boss") == [
            "Removed 1 point from bob. bob now has 51.00 points."
        ]
        assert deepbot_sim.received[-2] == "api|del_points|bob|1|True"
        assert await chat.say("!points set bob 0", user="boss") == ["bob now has 0.00 points."]
        assert await chat.say("!points add bob 10", user="boss") == [
            "Added 10 points to bob. bob now has 10.00 points."
        ]
        assert await chat.say("!points remove bob 1000", user="boss") == [
            "bob has only 10.00 points, so nothing was removed."
        ]
        assert await chat.say("!points add bob 2.5", user="boss") == [
            "Points are whole numbers here."
        ]
        assert await chat.say("!points add nobody 5", user="boss") == [
            "DeepBot refused to change the points of nobody (unknown user or an amount it does "
            "not accept)."
        ]
        assert await chat.say("!points add bob 0", user="boss") == [
            "The number of points must be more than zero."
        ]
        assert await chat.say("!points set bob -1", user="boss") == [
            "The number of points cannot be negative."
        ]
        assert bob.points == 10
        assert audit(bot) == [
            ("boss", "points set", "ok"),
            ("boss", "points add", "ok"),
            ("boss", "points remove", "ok"),
            ("boss", "points set", "ok"),
            ("boss", "points add", "ok"),
            (
                "boss",
                "points remove",
                "refused: bob has only 10.00 points, so nothing was removed.",
            ),
            ("boss", "points add", "refused: Points are whole numbers here."),
            (
                "boss",
                "points add",
                "refused: DeepBot refused to change the points of nobody (unknown user or an "
                "amount it does not accept).",
            ),
            ("boss", "points add", "refused: The number of points must be more than zero."),
            ("boss", "points set", "refused: The number of points cannot be negative."),
        ]


async def test_huge_amounts_and_thousands_separators_are_refused_before_deepbot(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    """Issue 14, items 8, 10 and 12 through the admin commands: ``1e1000000`` used to raise
    ``decimal.Overflow`` ("something went wrong"), ``1,000`` was set as 1.00, ``-0`` was sent."""
    async with start_bot() as bot:
        chat = bot.chat()
        bob = deepbot_sim.user("bob")
        sent = len(deepbot_sim.received)
        for text in (
            "!points set bob 1e1000000",
            "!points add bob 1e1000000",
            "!points remove bob -1e1000000",
            "!escrow add bob 1e1000000",
        ):
            (reply,) = await chat.say(text, user="boss")
            assert reply.startswith("<n> is too large"), (text, reply)
        for text in ("!points set bob 1,000", "!points add bob 1,000", "!escrow add bob 1,000"):
            (reply,) = await chat.say(text, user="boss")
            assert reply.startswith("<n> must be written without thousands separators"), reply
        assert len(deepbot_sim.received) == sent  # nothing reached DeepBot
        assert (bob.points, bob.escrow) == (100, 0)
        assert await chat.say("!points set bob -0", user="boss") == ["bob now has 0.00 points."]
        assert [f for f in list(deepbot_sim.received)[sent:] if "set_points" in f] == [
            "api|set_points|bob|0"
        ]
        assert await chat.say("!points set bob 1000", user="boss") == [
            "bob now has 1,000.00 points."
        ]
        assert bob.points == 1000


async def test_vip_set(start_bot: StartBot, deepbot_sim: DeepBotSimulator) -> None:
    async with start_bot() as bot:
        chat = bot.chat()
        until = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
        assert await chat.say("!vip set bob silver 30", user="boss") == [
            f"Done: Bob is a Silver VIP until {until} (30 days left)."
        ]
        bob = deepbot_sim.user("bob")
        assert bob.vip == 2
        assert await chat.say("!vip set bob 3 0", user="boss") == [
            f"Done: Bob is a Gold VIP until {until} (30 days left)."
        ]
        assert await chat.say("!vip set bob normal 0", user="boss") == ["Done: Bob is not a VIP."]
        assert bob.vip == 10
        (usage,) = await chat.say("!vip set bob platinum 3", user="boss")
        assert usage.startswith("<level> must be one of normal, bronze, silver, gold, 0, 1, 2, 3")
        assert await chat.say("!vip set bob gold -1", user="boss") == [
            "The number of days cannot be negative."
        ]
        assert await chat.say("!vip set nobody gold 1", user="boss") == [
            "DeepBot has no user named nobody."
        ]
        assert [r[1:] for r in audit(bot)][:3] == [("vip set", "ok")] * 3
        assert audit(bot)[-1] == ("boss", "vip set", "refused: DeepBot has no user named nobody.")


async def test_escrow_commands(start_bot: StartBot, deepbot_sim: DeepBotSimulator) -> None:
    async with start_bot() as bot:
        chat = bot.chat()
        alice, bob = deepbot_sim.user("alice"), deepbot_sim.user("bob")
        assert await chat.say("!escrow add bob 10", user="boss") == [
            "Holding 10 points of bob in escrow."
        ]
        assert (bob.points, bob.escrow) == (90, 10)
        assert await chat.say("!escrow commit bob", user="boss") == [
            "bob's escrowed points are spent."
        ]
        assert (bob.points, bob.escrow) == (90, 0)
        assert await chat.say("!escrow commit bob", user="boss") == [
            "bob has no points held in escrow."
        ]
        assert await chat.say("!escrow add bob 1000", user="boss") == [
            "bob does not have enough points for that."
        ]
        await chat.say("!escrow add bob 5", user="boss")
        assert await chat.say("!escrow cancel bob", user="boss") == [
            "bob's escrowed points are back in their balance."
        ]
        assert (bob.points, bob.escrow) == (90, 0)
        await chat.say("!escrow add bob 5", user="boss")
        await chat.say("!escrow add alice 7", user="boss")
        assert await chat.say("!escrow cancel all", user="boss", confirm=False) == [
            "Return the escrowed points of every viewer?",
            "Nothing was changed.",
        ]
        assert (alice.escrow, bob.escrow) == (7, 5)
        assert await chat.say("!escrow cancel ALL", user="boss", confirm=True) == [
            "Return the escrowed points of every viewer?",
            "Every viewer's escrowed points are back in their balance.",
        ]
        assert (alice.points, alice.escrow, bob.points, bob.escrow) == (500, 0, 90, 0)
        assert deepbot_sim.received[-1] == "api|cancel_escrow|all"
        assert (await chat.say("!escrow cancel all", user="boss", confirm=True))[-1] == (
            "Nobody has points held in escrow."
        )
        # Without buttons the confirmation is typed.
        assert await chat.say("!escrow cancel all", user="boss") == [
            "Return the escrowed points of every viewer? (yes/no)"
        ]
        assert await chat.say("no", user="boss") == ["Nothing was changed."]
        commands = [r[1] for r in audit(bot)]
        assert commands.count("escrow add") == 5 and commands.count("escrow cancel") == 5
        assert ("boss", "escrow commit", "refused: bob has no points held in escrow.") in audit(bot)


async def test_admin_commands_are_refused_to_everyone_else(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot() as bot:
        chat = bot.chat()
        sent = len(deepbot_sim.received)
        for text in (
            "!points set bob 1",
            "!points add bob 1",
            "!points remove bob 1",
            "!vip set bob gold 1",
            "!escrow add bob 1",
            "!escrow commit bob",
            "!escrow cancel all",
            "!gives held",
            "!gives settle abc",
            "!vip expiry bob 2030-01-01",
            "!deepbot alerts on",
        ):
            assert await chat.say(text, user="u1") == ["This command is for admins only."], text
        assert len(deepbot_sim.received) == sent
        assert deepbot_sim.user("bob").points == 100
        (everyone,) = await chat.say("!help", user="u1")
        (admin,) = await chat.say("!help", user="boss")
        for name in ("!points set", "!vip set", "!escrow cancel", "!deepbot alerts"):
            assert name not in everyone and name in admin
        for name in ("!points [user]", "!give <user> <points>", "!link deepbot <name>"):
            assert name in everyone


# --- bad input and a misbehaving DeepBot -----------------------------------------------------


async def test_injection_attempts_are_refused_and_nothing_is_sent(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot() as bot:
        await link(bot, "u1", "alice")
        chat = bot.chat()
        sent = list(deepbot_sim.received)
        bad_name = "A DeepBot user name cannot contain '|', line breaks or control characters."
        attempts = {
            '!points "bob|add_points|bob|1000"': ("u1", bad_name),
            '!hours "bob\nadd_points"': ("u1", bad_name),
            '!rank "bob\x00"': ("u1", bad_name),
            '!vip "bob\u2028x"': ("u1", bad_name),
            '!profile "bob\x1b[31m"': ("u1", bad_name),
            '!link deepbot "bob|x"': ("u2", bad_name),
            '!give "bob|add_points|alice" 5': ("u1", bad_name),
            '!points add "bob|x" 5': ("boss", bad_name),
            '!vip set "bob|1" gold 1': ("boss", bad_name),
            '!escrow add "bob\r" 5': ("boss", bad_name),
            '!escrow cancel "all|x"': ("boss", bad_name),
        }
        for text, (user, expected) in attempts.items():
            assert await chat.say(text, user=user) == [expected], text
        (usage,) = await chat.say("!points add bob 5|1000", user="boss")
        assert usage.startswith("<n> must be a number")
        assert list(deepbot_sim.received) == sent
        assert [u.points for u in deepbot_sim.users.values()] == [720, 500, 100, 0]


async def test_200_concurrent_commands_each_get_their_own_answer(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    for i in range(200):
        deepbot_sim.add_user(SimUser(f"viewer{i}", points=Decimal(i), watch_minutes=Decimal(i)))
    async with start_bot() as bot:
        # Distinct viewers, each asked from their own chat.
        replies = await asyncio.gather(
            *(bot.chat(f"c{i}").say(f"!points viewer{i}", user=f"u{i}") for i in range(200))
        )
        assert replies == [[f"viewer{i} has {i}.00 points"] for i in range(200)]
        # One viewer, different questions at once: every answer matches its question.
        kinds = ("points", "hours", "rank")
        replies = await asyncio.gather(
            *(bot.chat(f"d{i}").say(f"!{kinds[i % 3]} alice", user=f"u{i}") for i in range(200))
        )
        expected = {
            "points": ["alice has 500.00 points"],
            "hours": ["alice has watched 100.00 hours"],
            "rank": ["alice's rank is Sergeant - Star 1"],
        }
        assert replies == [expected[kinds[i % 3]] for i in range(200)]
        # One viewer, 200 changes at once: every one lands exactly once.
        replies = await asyncio.gather(
            *(bot.chat(f"e{i}").say("!points add bob 1", user="boss") for i in range(200))
        )
        assert all(r[0].startswith("Added 1 point to bob.") for r in replies)
        assert deepbot_sim.user("bob").points == 300


async def test_a_wrong_secret_is_reported(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    wrong = "wrong-secret-123"
    async with start_bot(connect=False, secret=wrong) as bot:
        with pytest.raises(AuthenticationFailed):
            await bot.client("deepbot").wait_connected(2.0)
        chat = bot.chat()
        refused = "DeepBot refused the API secret; check the deepbot secret in the bot's config."
        assert await chat.say("!points alice") == [refused]
        (status,) = await chat.say("!status")
        assert f"plugin deepbot: down - {refused}" in status
        await asyncio.sleep(0.15)  # several reconnect delays: no silent retry loop
        assert deepbot_sim.register_attempts == 1
        assert not any(wrong in r.text for r in chat.replies)


async def test_unreachable_deepbot_does_not_block_start_and_fails_fast(
    bot_harness: Any, deepbot_secret: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    section = {
        "url": f"ws://127.0.0.1:{port}",
        "secret": deepbot_secret,
        "reconnect_min_delay": 0.02,
        "reconnect_max_delay": 0.05,
    }
    started = time.monotonic()
    async with bot_harness(plugins={"deepbot": section}) as bot:
        assert time.monotonic() - started < 1.0
        assert bot.failures == {}
        client: DeepBotClient = bot.client("deepbot")
        await eventually(lambda: client.last_error is not None)
        chat = bot.chat()
        (status,) = await chat.say("!status")
        assert (
            f"plugin deepbot: down - DeepBot could not be reached at ws://127.0.0.1:{port}. "
            "Retrying." in status
        )
        started = time.monotonic()
        assert await chat.say("!points alice") == ["DeepBot is not connected."]
        assert time.monotonic() - started < 0.1


async def test_simulator_restarted_mid_session(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot() as bot:
        chat = bot.chat()
        client: DeepBotClient = bot.client("deepbot")
        await chat.say("!points add bob 5", user="boss")
        await deepbot_sim.stop()
        await eventually(lambda: not client.connected)
        assert await chat.say("!points bob") == ["DeepBot is not connected."]
        (status,) = await chat.say("!status")
        assert "plugin deepbot: down - " in status and "Retrying." in status
        await deepbot_sim.start()
        await client.wait_connected(2.0)
        assert await chat.say("!points bob") == ["bob has 105.00 points"]
        await deepbot_sim.restart()  # in one go, as a DeepBot restart looks to the client
        await eventually(lambda: client.registrations == 3)
        assert await chat.say("!points bob") == ["bob has 105.00 points"]
        assert deepbot_sim.registrations == 3
        (status,) = await chat.say("!status")
        assert "plugin deepbot: up" in status


async def test_a_silent_deepbot_gives_a_timeout_not_a_hang(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot(timeout=0.3) as bot:
        chat = bot.chat()
        deepbot_sim.silent = True
        started = time.monotonic()
        assert await chat.say("!points alice") == [
            "DeepBot did not answer in time (0.3 s). Check the spelling of the name: DeepBot "
            "does not answer for users it does not know."
        ]
        assert time.monotonic() - started < 1.0
        (status,) = await chat.say("!status")
        assert "plugin deepbot: degraded - DeepBot left a request unanswered" in status
        deepbot_sim.silent = False
        await asyncio.sleep(0.35)  # the silent call's placeholder expires (grace = timeout)
        assert await chat.say("!points alice") == ["alice has 500.00 points"]


async def test_stray_pushes_do_not_disturb_commands(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    async with start_bot() as bot:
        await deepbot_sim.push("music|Some Song|Some Artist")
        await deepbot_sim.push("newsub|alice")
        assert await bot.chat().say("!points alice") == ["alice has 500.00 points"]
        assert bot.client("deepbot").ignored_frames >= 2


# --- the plugin's hooks ----------------------------------------------------------------------


async def test_embedded_default_runs_with_simulate_only(bot_harness: Any) -> None:
    async with bot_harness(plugins={"deepbot": {"simulate": True}}) as bot:
        assert bot.failures == {}
        client: DeepBotClient = bot.client("deepbot")
        assert client.connected  # start-up waited for the in-process simulator
        chat = bot.chat()
        assert await chat.say("!points expertsonline") == ["expertsonline has 720.00 points"]
        await link(bot, "console", "alice")
        assert await chat.say("!give bob 5", user="console") == ["alice gave 5 points to bob."]
        assert await chat.say("!points bob") == ["bob has 105.00 points"]
        (status,) = await chat.say("!status")
        assert "plugin deepbot: up" in status
    assert client.state is ConnectionState.CLOSED


async def test_simulator_hook_builds_a_standalone_simulator(deepbot_secret: str) -> None:
    sim = plugin_module.bot_simulator(
        ["--port", "0", "--secret", deepbot_secret, "--user", "zed:12.5:120", "--no-example"]
    )
    assert isinstance(sim, DeepBotSimulator)
    async with sim, DeepBotClient(sim.url, deepbot_secret, timeout=1.0) as client:
        assert await client.get_points("zed") == Decimal("12.5")
        assert await client.get_hours("zed") == Decimal(2)


async def test_disabling_the_plugin_closes_the_client(start_bot: StartBot) -> None:
    async with start_bot() as bot:
        client: DeepBotClient = bot.client("deepbot")
        chat = bot.chat()
        assert await chat.say("!plugins disable deepbot", user="boss") == ["deepbot disabled."]
        assert client.state is ConnectionState.CLOSED
        (reply,) = await chat.say("!points alice")
        assert reply.startswith("Unknown command !points")
        assert await chat.say("!plugins enable deepbot", user="boss") == ["deepbot enabled."]
        await bot.client("deepbot").wait_connected(2.0)
        assert await chat.say("!points alice") == ["alice has 500.00 points"]


# --- leaderboard, VIP expiry, text from DeepBot ---------------------------------------------


async def test_top_shows_the_points_or_hours_leaderboard(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    for i in range(130):
        deepbot_sim.add_user(SimUser(f"v{i:03}", points=Decimal(i), watch_minutes=Decimal(i)))
    deepbot_sim.add_user(SimUser("binger", points=Decimal(1), watch_minutes=Decimal(60_000)))
    async with start_bot() as bot:
        chat = bot.chat()
        assert await chat.say("!top 3", user="u1") == [
            "Most points:\n1. expertsonline: 720.00 points\n2. Alice: 500.00 points\n"
            "3. v129: 129.00 points"
        ]
        assert await chat.say("!top 2 hours", user="u1") == [
            "Most hours watched:\n1. binger: 1,000.00 hours\n2. expertsonline: 218.75 hours"
        ]
        assert await chat.say("!top 26", user="u1") == ["The leaderboard shows 1 to 25 viewers."]
        assert len((await chat.say("!top", user="u1"))[0].splitlines()) == 11


async def test_vip_expiry_sets_the_day_a_vip_ends(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    deepbot_sim.user("bob").vip = 3
    async with start_bot() as bot:
        chat = bot.chat()
        assert await chat.say("!vip expiry bob 2099-12-31", user="boss") == [
            f"Done: Bob is a Gold VIP until 2099-12-31 ({_days_to(datetime(2099, 12, 31))})."
        ]
        assert deepbot_sim.received[-2] == "api|set_vip_expiry|bob|2099-12-31T00:00:00"
        assert await chat.say("!vip expiry bob tomorrow", user="boss") == [
            "The date must look like 2025-12-31 or 2025-12-31T18:00."
        ]
        assert await chat.say("!vip expiry nobody 2099-01-01", user="boss") == [
            "DeepBot refused that VIP expiry for nobody (unknown user or date)."
        ]


def _days_to(when: datetime) -> str:
    days = round((when.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds() / 86400)
    return f"{days} days left"


async def test_text_from_deepbot_is_clipped_and_names_validated(
    start_bot: StartBot, deepbot_sim: DeepBotSimulator
) -> None:
    # Issue 14 item 11: 100 KB ranks and names reached the chat.
    deepbot_sim.user("bob").rank = "General " + "\x1b[31m" + "*" * 100_000
    async with start_bot() as bot:
        (reply,) = await bot.chat().say("!rank bob", user="u1")
        assert len(reply) < 150 and reply.endswith("…") and "\x1b" not in reply
        (profile,) = await bot.chat().say("!profile bob", user="u1")
        assert len(profile) < 400
        deepbot_sim.add_user(SimUser("y" * 100_000, points=Decimal(10**6)))
        (board,) = await bot.chat().say("!top 2", user="u1")
        assert len(board) < 200 and "yyyy" not in board
