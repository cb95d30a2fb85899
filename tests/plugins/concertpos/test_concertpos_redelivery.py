"""A sale delivered twice (a cluster worker died after selling, before acknowledging) is sold
once: its ledger id comes from the command's id, so the second run finds the first's row."""

from __future__ import annotations

from concertpos_support import plugin_section
from test_concertpos_commands import BOSS, Harness, pos_bot

from bot_plugins.concertpos.simulator import ConcertPOSSimulator


async def test_a_sale_run_again_with_its_command_id_sells_nothing_more(
    bot_harness: Harness, concertpos_sim: ConcertPOSSimulator
) -> None:
    async with pos_bot(bot_harness, plugin_section(concertpos_sim.url)) as bot:
        chat = bot.chat()
        first = await chat.say("!pos sell 5 1 card", user=BOSS, confirm=True, id="discord:991")
        assert first[-1].startswith("Sold 1 x Fries for 3.50, paid by Card.")
        again = await chat.say("!pos sell 5 1 card", user=BOSS, confirm=True, id="discord:991")
        assert again[-1].startswith("This command already recorded sale ")
        assert again[-1].endswith("nothing was sold again. Check pos transactions.")
        assert concertpos_sim.command_counts["payitems"] == 1
        assert len(bot.bot.store.ledger_entries("concertpos")) == 1
        # another message is another sale
        other = await chat.say("!pos sell 5 1 card", user=BOSS, confirm=True, id="discord:992")
        assert other[-1].startswith("Sold 1 x Fries")
        assert concertpos_sim.command_counts["payitems"] == 2
