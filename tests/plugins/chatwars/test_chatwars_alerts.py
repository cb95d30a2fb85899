"""Market feeds to subscribed chats: filters, one message per chat per interval for deals,
and a malformed feed message that is dropped while the consumer keeps going."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from bot_plugins.chatwars.alerts import MarketFilter, market_matches
from bot_plugins.chatwars.feeds import FeedKind
from bot_plugins.chatwars.service import service_for
from bot_plugins.chatwars.simulator import ChatWarsSimulator


def deal(item: str, price: int, qty: int = 1, seller: str = "Wolpertinger") -> dict[str, Any]:
    return {
        "sellerId": "53f3e27a124e01dcdd77de45995bf0db",
        "sellerCastle": "🦌",
        "sellerName": seller,
        "buyerId": "3537e9190d1d516e05cd638bb76fe66c",
        "buyerCastle": "🦅",
        "buyerName": "Guacamele",
        "item": item,
        "qty": qty,
        "price": price,
    }


def texts(bot: Any, chat_id: str) -> list[str]:
    return [a.text for a in bot.alerts_sent if a.chat_id == chat_id]


# --------------------------------------------------------------------------- filters


def test_filters_read_item_and_max_price() -> None:
    assert MarketFilter.parse("Iron ore 5") == MarketFilter("iron ore", 5)
    assert MarketFilter.parse("charcoal") == MarketFilter("charcoal", None)
    assert MarketFilter.parse("10") == MarketFilter(None, 10)
    assert MarketFilter.parse("") == MarketFilter()
    assert MarketFilter.parse("iron ore 5").text == "iron ore 5"
    assert MarketFilter.parse("iron ore 5").describe() == "iron ore up to 5💰"
    offers = {"offers": [("Iron ore", 6), ("Coal", 2)]}
    assert market_matches("iron", "", offers)
    assert not market_matches("iron 5", "", offers)
    assert market_matches("3", "", offers)
    assert market_matches("", "", offers)
    assert not market_matches("coal 1", "", offers)
    assert not market_matches("x", "", {})


# --------------------------------------------------------------------------- deals


async def test_deals_are_coalesced_into_one_message_per_chat_per_interval(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator
) -> None:
    async with chatwars_bot(alert_interval=60) as bot:
        service = service_for(bot.plugin("chatwars"))
        assert service is not None
        everything, cheap_charcoal = bot.chat("all"), bot.chat("cheap")
        assert await everything.say("!cw alerts deals") == [
            "This chat now gets ChatWars deals alerts for everything. They come together, at "
            "most once every 60 seconds."
        ]
        await cheap_charcoal.say("!cw alerts deals Charcoal 5")
        bot.chat("quiet")  # subscribed to nothing

        payloads = [deal("Charcoal", 5, 2)] * 20 + [deal("Charcoal", 6, 1)] * 5
        payloads += [deal("Iron ore", 3, 4, seller="Sable")]
        for payload in payloads:
            await chatwars_sim.publish_feed(FeedKind.DEALS, payload)
        await chatwars_sim.wait_until(lambda: service.feeds.received == len(payloads))
        assert bot.alerts_sent == []  # nothing before the interval ends

        assert service.feeds.flush() == 3  # what the interval timer does
        await bot.flush_alerts()
        assert texts(bot, "all") == [
            "Deal: 40 × Charcoal at 5💰 (20 deals)\n"
            "Deal: 5 × Charcoal at 6💰 (5 deals)\n"
            "Deal: 4 × Iron ore at 3💰, 🦌Sable → 🦅Guacamele"
        ]
        assert texts(bot, "cheap") == ["Deal: 40 × Charcoal at 5💰 (20 deals)"]
        assert texts(bot, "quiet") == []


async def test_the_interval_timer_publishes_deals_by_itself(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator
) -> None:
    async with chatwars_bot(alert_interval=0.2) as bot:
        await bot.chat().say("!cw alerts deals")
        await chatwars_sim.publish_feed(FeedKind.DEALS, deal("Bone", 2))
        alert = await bot.wait_for_alert(lambda a: "Bone" in a.text)
        assert alert.text == "Deal: 1 × Bone at 2💰, 🦌Wolpertinger → 🦅Guacamele"
        await chatwars_sim.publish_feed(FeedKind.DEALS, deal("Pelt", 4))
        await bot.wait_for_alert(lambda a: "Pelt" in a.text)
        assert len(bot.alerts_sent) == 2


async def test_snapshots_keep_the_latest_of_an_interval(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator
) -> None:
    async with chatwars_bot(alert_interval=60) as bot:
        service = service_for(bot.plugin("chatwars"))
        assert service is not None
        await bot.chat().say("!cw alerts digest")
        await chatwars_sim.publish_feed(FeedKind.DIGEST, [{"name": "Coal", "prices": [9]}])
        await chatwars_sim.publish_feed(FeedKind.DIGEST, [{"name": "Coal", "prices": [4, 5]}])
        await chatwars_sim.wait_until(lambda: service.feeds.received == 2)
        assert service.feeds.flush() == 1
        await bot.flush_alerts()
        assert [a.text for a in bot.alerts_sent] == ["Exchange: Coal from 4💰 (4, 5)"]
        assert service.feeds.flush() == 0


# --------------------------------------------------------------------------- other feeds


async def test_offers_digest_and_shops_reach_matching_chats(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator
) -> None:
    async with chatwars_bot(alert_interval=60) as bot:
        service = service_for(bot.plugin("chatwars"))
        assert service is not None
        market, plates = bot.chat("market"), bot.chat("plates")
        await market.say("!cw alerts offers")
        await market.say("!cw alerts digest 10")
        await market.say("!cw alerts shops")
        await plates.say("!cw alerts shops metal plate 1")
        await plates.say("!cw alerts digest iron")
        assert await market.say("!cw alerts") == [
            "This chat gets ChatWars alerts: offers (everything), digest (anything up to "
            "10💰), shops (everything)."
        ]

        offer = {k: v for k, v in deal("Thread", 7, 3).items() if not k.startswith("buyer")}
        await chatwars_sim.publish_feed(FeedKind.OFFERS, offer)
        await chatwars_sim.publish_feed(
            FeedKind.DIGEST,
            [
                {"name": "Bone powder", "prices": [10, 11, 15, 15, 15, 15, 20]},
                {"name": "Iron ore", "prices": [12, 13]},
            ],
        )
        await chatwars_sim.publish_feed(
            FeedKind.YELLOW_PAGES,
            [
                {
                    "link": "UQ5DX",
                    "name": "Studio",
                    "ownerName": "WolperTinger",
                    "ownerCastle": "🦌",
                    "kind": "⚒",
                    "mana": 20,
                    "offers": [{"item": "Metal plate", "price": 1, "mana": 10}],
                },
                {
                    "link": "OMgWt",
                    "name": "Shack @everyone",
                    "ownerName": "myDeerest",
                    "ownerCastle": "🦌",
                    "kind": "⚒",
                    "mana": 880,
                    "offers": [{"item": "Hunter Armor", "price": 80, "mana": 150}],
                },
            ],
        )
        await chatwars_sim.wait_until(lambda: service.feeds.waiting == 3)
        assert bot.alerts_sent == []
        assert service.feeds.flush() == 5
        await bot.flush_alerts()
        market_text = "\n".join(texts(bot, "market"))
        assert "Exchange: Bone powder from 10💰 (10, 11, 15, 15, 15…)" in market_text
        assert "Iron ore" not in market_text  # cheapest is 12, above the chat's 10
        assert "Shop ⚒ Studio of 🦌WolperTinger (/ws_UQ5DX): Metal plate 1💰" in market_text
        assert "Shack @\u200beveryone" in market_text  # no mass mention from a feed
        assert "Offer: 🦌Wolpertinger sells 3 × Thread at 7💰" in market_text
        assert len(texts(bot, "market")) == 1
        assert texts(bot, "plates") == [
            "Exchange: Iron ore from 12💰 (12, 13)\n"
            "Shop ⚒ Studio of 🦌WolperTinger (/ws_UQ5DX): Metal plate 1💰"
        ]

        assert await plates.say("!cw alerts off shops") == [
            "ChatWars shops alerts are off in this chat."
        ]
        assert await plates.say("!cw alerts") == ["This chat gets ChatWars alerts: digest (iron)."]
        assert await market.say("!cw alerts off") == [
            "ChatWars market alerts are off in this chat."
        ]
        assert await market.say("!cw alerts off") == ["This chat had no such ChatWars alerts."]
        [bad] = await market.say("!cw alerts deals iron -3")
        assert bad == "The maximum price cannot be negative."
        assert bot.bot.store.subscriptions(chat_id="market") == []


async def test_a_malformed_feed_message_is_dropped_and_the_consumer_goes_on(
    chatwars_bot: Callable[..., Any],
    chatwars_sim: ChatWarsSimulator,
    rabbitmq_broker: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with chatwars_bot(alert_interval=0.1) as bot:
        await bot.chat().say("!cw alerts deals")
        with caplog.at_level(logging.WARNING, logger="bot_plugins.chatwars.client"):
            await chatwars_sim.publish_raw_feed(FeedKind.DEALS, b"{not json")
            await chatwars_sim.publish_feed(FeedKind.DEALS, {"item": "Coal"})  # no price
            await chatwars_sim.publish_feed(FeedKind.DEALS, deal("Coal", 1))
            alert = await bot.wait_for_alert()
        assert alert.text.startswith("Deal: 1 × Coal at 1💰")
        dropped = [r for r in caplog.records if "dropped a malformed deals message" in r.message]
        assert len(dropped) == 2
        assert bot.client("chatwars").status.feeds[FeedKind.DEALS] is None
        # Acknowledged: nothing waits to be redelivered.
        depths = await asyncio.to_thread(rabbitmq_broker.queue_depths)
        assert depths[f"{chatwars_sim.app}_deals"] == 0


async def test_a_feed_the_bot_does_not_read_cannot_be_subscribed(
    chatwars_bot: Callable[..., Any],
) -> None:
    async with chatwars_bot(feeds=["deals"]) as bot:
        assert await bot.chat().say("!cw alerts shops") == [
            "This bot does not read the ChatWars shops feed (see chatwars.feeds in its "
            "config), so there would be no alerts."
        ]
        assert bot.bot.store.subscriptions() == []
        [ok] = await bot.chat().say("!cw alerts deals coal")
        assert ok.startswith("This chat now gets ChatWars deals alerts for coal.")
