"""The market index gives exactly what checking every filter gives, and the router delivers by
it: each matching chat once per event, whatever number of its filters or the event's offers
match."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from bot_plugins.chatwars.feeds import FeedKind
from bot_plugins.chatwars.filters import MarketIndex, market_matches, phrases
from bot_plugins.chatwars.service import service_for
from bot_plugins.chatwars.simulator import ChatWarsSimulator

NAMES = ["Iron ore", "Silver ore", "Bone", "Bone powder", "Magic stone", "Pelt", "Ore iron"]
#: filters as chats type them, with the odd ones the store may hold (the unparsable are kept
#: as lower-case text, and a filter of spaces selects everything)
ODD_FILTERS = [
    "   ",
    "ORE",
    "iron  ore 5",
    "iron ore -5",
    "iron\tore",
    "bone powder 0",
    "0",
    "x" * 70 + " 5",
    "powder bone",
    "stone 12",
    "magic",
]


def random_filter(rng: random.Random) -> str:
    words = rng.choice(NAMES).split()
    start = rng.randrange(len(words))
    item = " ".join(words[start : rng.randint(start + 1, len(words))])
    choice = rng.random()
    if choice < 0.3:
        return item
    if choice < 0.4:
        return str(rng.randint(0, 40))
    return f"{item.upper() if choice < 0.5 else item} {rng.randint(0, 40)}"


def random_offers(rng: random.Random) -> list[tuple[str, int | None]]:
    return [
        (rng.choice(NAMES), None if rng.random() < 0.1 else rng.randint(0, 45))
        for _ in range(rng.choice([1, 1, 1, 2, 3]))
    ]


def test_an_item_name_satisfies_every_run_of_its_words_and_no_item() -> None:
    assert phrases("Bone  Powder") == (None, "bone", "bone powder", "powder")
    assert phrases("") == (None,)


def test_the_index_matches_exactly_the_filters_the_matcher_passes() -> None:
    rng = random.Random(5)
    filters = list(dict.fromkeys(ODD_FILTERS + [random_filter(rng) for _ in range(400)]))
    index: MarketIndex[str] = MarketIndex()
    for text in filters:
        index.add(text, text)  # the filter's own text stands for the chat
    events: list[dict[str, Any]] = [{"offers": random_offers(rng)} for _ in range(600)]
    events += [{}, {"offers": []}, {"offers": "x"}]
    for data in events:
        expected = {f for f in filters if market_matches(f, "", data)}
        found = index.matching("", data)
        assert len(found) == len(set(found)), data  # each filter at most once
        assert set(found) == expected, data


async def test_a_chat_gets_a_deal_once_however_many_of_its_filters_match(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator
) -> None:
    async with chatwars_bot(alert_interval=60) as bot:
        service = service_for(bot.plugin("chatwars"))
        assert service is not None
        greedy, picky, other = bot.chat("greedy"), bot.chat("picky"), bot.chat("other")
        for flt in ("ore", "iron ore 10", "10", "iron"):
            await greedy.say(f"!cw alerts deals {flt}")
        await picky.say("!cw alerts deals iron ore 3")
        await other.say("!cw alerts deals silver ore")
        await picky.say("!cw alerts shops ore 5")
        await other.say("!cw alerts shops ore")

        await chatwars_sim.publish_feed(
            FeedKind.DEALS,
            {
                "sellerId": "s",
                "sellerName": "Sable",
                "buyerId": "b",
                "buyerName": "Guacamele",
                "item": "Iron ore",
                "qty": 2,
                "price": 4,
            },
        )
        shop = {
            "link": "UQ5DX",
            "name": "Ores",
            "ownerName": "Sable",
            "kind": "⚒",
            "offers": [{"item": "Iron ore", "price": 4}, {"item": "Silver ore", "price": 6}],
        }
        await chatwars_sim.publish_feed(FeedKind.YELLOW_PAGES, [shop])
        await chatwars_sim.wait_until(lambda: service.feeds.received == 2)
        assert service.feeds.flush() == 2
        await bot.flush_alerts()
        sent = {
            chat: [a.text for a in bot.alerts_sent if a.chat_id == chat]
            for chat in ("greedy", "picky", "other")
        }
        deal = "Deal: 2 × Iron ore at 4💰, Sable → Guacamele"
        shop_text = "Shop ⚒ Ores of Sable (/ws_UQ5DX): Iron ore 4💰, Silver ore 6💰"
        assert sent == {"greedy": [deal], "picky": [shop_text], "other": [shop_text]}
