"""The parcels commands end to end: the real bot (test harness), the plugin, its simulator."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from bot_ext_parcels.client import MESSAGES
from bot_ext_parcels.simulator import ParcelSimulator

from bot import ServiceTimeout

if TYPE_CHECKING:
    from bot.testing import BotHarness

MakeBot = Callable[..., "BotHarness"]


async def test_track(parcels_bot: MakeBot, parcel_sim: ParcelSimulator) -> None:
    async with parcels_bot(url=parcel_sim.url, key=parcel_sim.key) as bot:
        await bot.client("parcels").wait_connected(2.0)
        chat = bot.chat()
        assert await chat.say("!track px-1001") == ["PX-1001: in transit at Leeds depot"]
        assert await chat.say("!track PX-9999") == [MESSAGES["unknown_parcel"]]
        assert await chat.say("!track 1001") == [
            "'1001' is not a parcel id; they look like PX-1001."
        ]


async def test_a_watching_chat_hears_each_move_and_the_history_is_kept(
    parcels_bot: MakeBot, parcel_sim: ParcelSimulator
) -> None:
    async with parcels_bot(url=parcel_sim.url, key=parcel_sim.key) as bot:
        await bot.client("parcels").wait_connected(2.0)
        kitchen, garage = bot.chat("kitchen"), bot.chat("garage")
        assert await kitchen.say("!parcels watch PX-1003") == [
            "Watching PX-1003: label created at sender. This chat hears when it moves."
        ]
        assert await garage.say("!parcels watch PX-1001") == [
            "Watching PX-1001: in transit at Leeds depot. This chat hears when it moves."
        ]
        assert await kitchen.say("!parcels watching") == ["Watching: PX-1003"]

        await parcel_sim.move("PX-1003", "in_transit", "Hub A")
        alert = await bot.wait_for_alert(lambda a: "PX-1003" in a.text)
        assert (alert.chat_id, alert.text) == ("kitchen", "📦 PX-1003: in transit at Hub A")
        await parcel_sim.move("PX-1003", "out_for_delivery", "van 7")
        await bot.wait_for_alert(lambda a: "van 7" in a.text)
        await bot.flush_alerts()
        assert {a.chat_id for a in bot.alerts_sent} == {"kitchen"}
        assert await garage.say("!parcels history PX-1003") == [
            "PX-1003: out for delivery at van 7; in transit at Hub A"
        ]

        assert await kitchen.say("!parcels unwatch PX-1003") == [
            "This chat no longer hears about PX-1003."
        ]
        assert "PX-1003" not in bot.client("parcels").watched
        assert await kitchen.say("!parcels unwatch PX-1003") == [
            "This chat was not watching PX-1003."
        ]
        assert await parcel_sim.move("PX-1003", "delivered", "porch") == 0


async def test_watches_survive_a_restart_of_the_bot(
    parcels_bot: MakeBot, parcel_sim: ParcelSimulator
) -> None:
    harness = parcels_bot(url=parcel_sim.url, key=parcel_sim.key)
    async with harness as bot:
        await bot.client("parcels").wait_connected(2.0)
        await bot.chat("kitchen").say("!parcels watch PX-1001")
    harness.alerts_sent.clear()
    async with harness as bot:  # same database: the subscription is still there
        await bot.client("parcels").wait_connected(2.0)
        await bot.chat("kitchen").say("!ping")
        assert await parcel_sim.move("PX-1001", "delivered", "porch") == 1
        alert = await bot.wait_for_alert()
        assert (alert.chat_id, alert.text) == ("kitchen", "📦 PX-1001: delivered at porch")


async def test_the_bot_starts_while_parcel_track_is_down(parcels_bot: MakeBot) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    async with parcels_bot(url=f"ws://127.0.0.1:{closed_port}", key="k") as bot:
        with pytest.raises(ServiceTimeout):  # it keeps trying in the background
            await bot.client("parcels").wait_connected(0.3)
        (status,) = await bot.chat().say("!status")
        assert "plugin parcels: down - not connected: cannot reach ParcelTrack" in status
        (reply,) = await bot.chat().say("!track PX-1001")
        assert reply.startswith("ParcelTrack is not connected right now")


async def test_simulate_true_needs_no_api_and_no_key(parcels_bot: MakeBot) -> None:
    async with parcels_bot(simulate=True) as bot:
        await bot.client("parcels").wait_connected(2.0)
        assert await bot.chat().say("!track PX-1002") == ["PX-1002: delivered at front door"]


async def test_a_missing_key_disables_only_this_plugin(parcels_bot: MakeBot) -> None:
    async with parcels_bot(url="ws://127.0.0.1:1") as bot:
        assert "key is required (or set simulate: true)" in bot.failures["parcels"]
        assert await bot.chat().say("!ping") == ["pong"]
