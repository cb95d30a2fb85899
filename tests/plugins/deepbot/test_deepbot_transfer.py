"""``give`` when things break between its steps: no point is created or lost.

A give is: read the giver's balance, ``del_points`` (giver), read the receiver's balance,
``add_points`` (receiver), and on a refusal ``add_points`` back to the giver. Each test cuts
the real websocket (the simulator's :meth:`~DeepBotSimulator.cut`) at one of those requests,
either before DeepBot applied it (the request was lost) or after (the answer was lost), and
checks that the two balances always add up and that the give ends settled.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.testing import BotHarness
from bot_plugins.deepbot.gives import (
    UNSETTLED,
    GiveStatus,
    get_give,
    gives_with_status,
    new_give,
    set_status,
)
from bot_plugins.deepbot.simulator import DeepBotSimulator

ADMINS = {"console": ["boss"]}

# (function, user, applied) -> what the giver reads, and the balances (Alice, Bob) after.
GIVEN = "Alice gave 40 points to Bob."
CUTS = [
    pytest.param("get_points", "alice", False, GIVEN, (460, 140), id="read-giver"),
    pytest.param("del_points", "alice", False, "nothing was taken", (500, 100), id="debit-lost"),
    pytest.param("del_points", "alice", True, GIVEN, (460, 140), id="debit-answer-lost"),
    pytest.param("get_points", "bob", False, GIVEN, (460, 140), id="read-receiver"),
    pytest.param("add_points", "bob", False, "went back to Alice", (500, 100), id="credit-lost"),
    pytest.param("add_points", "bob", True, GIVEN, (460, 140), id="credit-answer-lost"),
]


def section(sim: DeepBotSimulator, secret: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": sim.url,
        "secret": secret,
        "timeout": 1.0,
        "reconnect_min_delay": 0.02,
        "reconnect_max_delay": 0.1,
        **extra,
    }


async def link(bot: BotHarness, user: str, account: str) -> None:
    """Link and approve the claim as an admin would: a give needs an approved link."""
    reply = await bot.chat(f"link-{user}").say(f"!link deepbot {account}", user=user)
    assert reply[0].startswith("You claimed DeepBot user"), reply
    bot.approve_link(user, "deepbot")


def balances(sim: DeepBotSimulator) -> tuple[Decimal, Decimal]:
    return sim.user("alice").points, sim.user("bob").points


@pytest.mark.parametrize(("function", "user", "applied", "expected", "after"), CUTS)
async def test_a_give_cut_at_any_step_creates_and_loses_nothing(
    bot_harness: Any,
    deepbot_sim: DeepBotSimulator,
    deepbot_secret: str,
    function: str,
    user: str,
    applied: bool,
    expected: str,
    after: tuple[int, int],
) -> None:
    async with bot_harness(
        plugins={"deepbot": section(deepbot_sim, deepbot_secret)}, admins=ADMINS
    ) as bot:
        client = bot.client("deepbot")
        await client.wait_connected(2.0)
        await link(bot, "u1", "alice")
        deepbot_sim.cut(function, apply=applied, user=user)
        (reply,) = await bot.chat().say("!give bob 40", user="u1")
        assert expected in reply
        assert balances(deepbot_sim) == after
        assert sum(balances(deepbot_sim)) == 600
        assert gives_with_status(bot.bot.store, *UNSETTLED) == []
        assert deepbot_sim.user("alice").escrow == 0
        assert client.registrations >= 2  # the cut was a real reconnect


async def test_a_refund_cut_before_or_after_it_applies_returns_exactly_once(
    bot_harness: Any, deepbot_sim: DeepBotSimulator, deepbot_secret: str
) -> None:
    async with bot_harness(
        plugins={"deepbot": section(deepbot_sim, deepbot_secret)}, admins=ADMINS
    ) as bot:
        await bot.client("deepbot").wait_connected(2.0)
        await link(bot, "u1", "alice")
        for applied in (False, True):
            deepbot_sim.fail("add_points", "bob")  # the credit is refused...
            deepbot_sim.cut("add_points", apply=applied, user="alice")  # ...the refund cut
            (reply,) = await bot.chat().say("!give bob 40", user="u1")
            assert reply.startswith("Nothing was given to Bob."), reply
            assert reply.endswith("The 40 points went back to Alice."), reply
            assert balances(deepbot_sim) == (500, 100)
        assert len(gives_with_status(bot.bot.store, GiveStatus.REFUNDED)) == 2


async def test_a_give_left_in_flight_by_a_crash_is_settled_at_start_up(
    bot_harness: Any, deepbot_sim: DeepBotSimulator, deepbot_secret: str, tmp_path: Path
) -> None:
    config = {"deepbot": section(deepbot_sim, deepbot_secret)}
    directory = tmp_path / "same-bot"
    directory.mkdir()
    async with bot_harness(plugins=config, admins=ADMINS, directory=directory) as bot:
        store = bot.bot.store
        await bot.client("deepbot").wait_connected(2.0)
        # Three gives the bot was in the middle of when it "crashed".
        debited = new_give(
            store, platform="console", user_id="u1", giver="Alice", receiver="Bob", amount="40"
        )
        set_status(store, debited, GiveStatus.DEBITING, balance_before="500")
        crediting = new_give(
            store, platform="console", user_id="u2", giver="Carol", receiver="Bob", amount="5"
        )
        set_status(store, crediting, GiveStatus.CREDITING, balance_before="100")
        never_sent = new_give(
            store, platform="console", user_id="u3", giver="Bob", receiver="Alice", amount="1"
        )
        deepbot_sim.user("alice").points = Decimal(460)  # Alice's debit went through
        deepbot_sim.user("carol").points = Decimal(0)  # Carol's 5 were taken (not credited)
    # The next start settles them: Alice's give finishes, Carol's is refunded, Bob's fails.
    async with bot_harness(plugins=config, admins=ADMINS, directory=directory) as bot:
        store = bot.bot.store
        for _ in range(400):
            if not gives_with_status(store, *UNSETTLED):
                break
            await asyncio.sleep(0.01)
        assert get_give(store, debited).status == GiveStatus.DONE
        assert get_give(store, crediting).status == GiveStatus.REFUNDED
        assert get_give(store, never_sent).status == GiveStatus.FAILED
        assert balances(deepbot_sim) == (460, 140)
        assert deepbot_sim.user("carol").points == 5


async def test_an_unsettled_give_blocks_the_next_until_it_is_settled(
    bot_harness: Any, deepbot_sim: DeepBotSimulator, deepbot_secret: str
) -> None:
    config = {"deepbot": section(deepbot_sim, deepbot_secret, timeout=0.3)}
    async with bot_harness(plugins=config, admins=ADMINS) as bot:
        await bot.client("deepbot").wait_connected(2.0)
        await link(bot, "u1", "alice")
        # Bob's credit and every read of Bob's balance go unanswered.
        deepbot_sim.fail("add_points", "bob", msg=None, times=None)
        deepbot_sim.fail("get_points", "bob", msg=None, times=None, after=1)
        (reply,) = await bot.chat().say("!give bob 5", user="u1")
        (first,) = gives_with_status(bot.bot.store, GiveStatus.CREDITING)
        assert reply == (
            f"DeepBot did not confirm the give of 5 points to Bob (give {first.id}). The bot "
            "will check the balances and finish or undo it as soon as DeepBot answers; until "
            "then you cannot start another give."
        )
        (reply,) = await bot.chat().say("!give bob 7", user="u1")
        assert reply == (
            f"Your give {first.id} (5 points to Bob) is not settled yet, so you cannot start "
            "another. The bot settles it as soon as DeepBot answers; try again later."
        )
        assert balances(deepbot_sim) == (495, 100)  # the 7 were never taken
        deepbot_sim.clear_failures()
        assert await bot.chat().say("!give bob 7", user="u1") == ["Alice gave 7 points to Bob."]
        assert get_give(bot.bot.store, first.id).status == GiveStatus.REFUNDED
        assert balances(deepbot_sim) == (493, 107)


async def test_concurrent_gives_never_overspend_or_interleave(
    bot_harness: Any, deepbot_sim: DeepBotSimulator, deepbot_secret: str
) -> None:
    async with bot_harness(
        plugins={"deepbot": section(deepbot_sim, deepbot_secret)}, admins=ADMINS
    ) as bot:
        await bot.client("deepbot").wait_connected(2.0)
        await link(bot, "u1", "bob")  # Bob has 100
        await link(bot, "u2", "alice")
        replies = await asyncio.gather(
            *(bot.chat(f"c{i}").say("!give carol 30", user="u1") for i in range(5)),
            *(bot.chat(f"d{i}").say("!give bob 10", user="u2") for i in range(3)),
        )
        given = [r for (r,) in replies if r.endswith("gave 30 points to Carol.")]
        total = sum(balances(deepbot_sim)) + deepbot_sim.user("carol").points
        assert total == 600
        assert deepbot_sim.user("carol").points == 30 * len(given)
        assert deepbot_sim.user("bob").points >= 0
        assert gives_with_status(bot.bot.store, *UNSETTLED) == []


async def test_a_debit_that_empties_the_balance_is_held_not_credited(
    bot_harness: Any, deepbot_sim: DeepBotSimulator, deepbot_secret: str
) -> None:
    # An install that ignores fail_if_insufficient, and Alice spending points in DeepBot
    # between the bot's balance check and its del_points: "success", balance 0.
    deepbot_sim.ignore_fail_flag = True

    def spend(frame: str) -> None:
        if frame.startswith("api|del_points|Alice|"):
            deepbot_sim.user("alice").points = Decimal(10)

    deepbot_sim.before_request = spend
    async with bot_harness(
        plugins={"deepbot": section(deepbot_sim, deepbot_secret)}, admins=ADMINS
    ) as bot:
        await bot.client("deepbot").wait_connected(2.0)
        await link(bot, "u1", "alice")
        (reply,) = await bot.chat().say("!give bob 40", user="u1")
        (held,) = gives_with_status(bot.bot.store, GiveStatus.HELD)
        assert reply == (
            "The give stopped halfway: DeepBot answered success but took Alice's whole balance "
            "(its balance fell below the amount meanwhile, and this DeepBot does not refuse "
            "then); nothing was added to the receiver. Stopped at: debiting. It is recorded "
            f"for an admin as give {held.id}; you cannot give again until it is settled."
        )
        assert balances(deepbot_sim) == (0, 100)  # no point created for Bob


async def test_a_give_found_unexplainable_at_start_up_is_alerted_to_admins(
    bot_harness: Any, deepbot_sim: DeepBotSimulator, deepbot_secret: str, tmp_path: Path
) -> None:
    config = {"deepbot": section(deepbot_sim, deepbot_secret)}
    directory = tmp_path / "same-bot"
    directory.mkdir()
    async with bot_harness(plugins=config, admins=ADMINS, directory=directory) as bot:
        assert await bot.chat("admins").say("!deepbot alerts on", user="boss") == [
            "This chat now receives deepbot.escrow alerts."
        ]
        store = bot.bot.store
        give_id = new_give(
            store, platform="console", user_id="u1", giver="Alice", receiver="Bob", amount="40"
        )
        set_status(store, give_id, GiveStatus.CREDITING, balance_before="100")
    deepbot_sim.user("bob").points = Decimal(133)  # neither 100 nor 140: cannot be told
    async with bot_harness(plugins=config, admins=ADMINS, directory=directory) as bot:
        alert = await bot.wait_for_alert(lambda a: give_id in a.text, timeout=10)
        assert alert.chat_id == "admins"
        assert alert.text.startswith(
            f"A give of 40 points from Alice to Bob stopped halfway (give {give_id}): "
            "DeepBot did not confirm adding 40 points to Bob"
        )
        assert get_give(bot.bot.store, give_id).status == GiveStatus.HELD
        assert balances(deepbot_sim) == (500, 133)  # nothing moved by the bot
