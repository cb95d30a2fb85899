"""A payout delivered twice (a cluster worker died mid-command) is paid once: its ledger id
comes from the command's id, so the second run finds the row the first one wrote."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot_plugins.chatwars.simulator import ChatWarsSimulator


def payouts_sent(sim: ChatWarsSimulator) -> int:
    return len([r for r in sim.world.requests if r["action"] == "payout"])


async def test_a_payout_run_again_with_its_command_id_is_paid_once(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    async with chatwars_bot(timeout=0.5) as bot:
        chatwars_link(bot, "bob", 6210)
        chat = bot.chat(kind="private")
        say = {"user": "boss", "admin": True, "confirm": True}
        first = await chat.say("!cw payout bob 2", id="telegram:5:100", **say)
        assert first[-1].startswith("Paid 2 gold pouches to Telegram user 6210.")
        again = await chat.say("!cw payout bob 2", id="telegram:5:100", **say)
        assert again[-1] == first[-1]  # reported as paid, not paid again
        assert payouts_sent(chatwars_sim) == 1

        # One whose answer was lost: the run again sends nothing and says what to do.
        chatwars_sim.drop_replies("payout")
        await chat.say("!cw payout bob 3", id="telegram:5:101", **say)
        assert payouts_sent(chatwars_sim) == 2
        again = await chat.say("!cw payout bob 3", id="telegram:5:101", **say)
        assert "already started payout" in again[-1]
        assert "nothing was sent again" in again[-1]
        assert payouts_sent(chatwars_sim) == 2
        assert [e.status for e in bot.bot.store.ledger_entries("chatwars")].count("done") == 1
