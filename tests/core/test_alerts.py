"""The alert router: subscriptions, filters, coalescing bursts, pacing, nothing dropped silently."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

FEED = '''
from bot import Permission, Topic, command, hookimpl, subscription_command

def price_below(filter, text, data):
    return data["price"] <= int(filter)

def item_and_price(filter, text, data):
    item, _, price = filter.partition(" ")
    return data["item"] == item and (not price or data["price"] <= int(price))

class ExactItems:
    """An index of filters that name one item exactly: a lookup, never a call of matches."""

    def __init__(self):
        self.by_item = {}

    def add(self, filter, member):
        self.by_item.setdefault(filter, []).append(member)

    def matching(self, text, data):
        return self.by_item.get(data["item"], [])

def never_called(filter, text, data):
    raise AssertionError("a topic with an index is matched by its index alone")

@command("feed stock", permission=Permission.ADMIN)
async def push_stock(ctx, item: str) -> str:
    """Publish one stock event."""
    return f"matched {ctx.plugin.publish('feed.stock', f'{item} in stock', {'item': item})}"

@command("feed item", permission=Permission.ADMIN)
async def push_item(ctx, item: str, price: int) -> str:
    """Publish one market event."""
    n = ctx.plugin.publish("feed.market", f"{item} at {price}", {"item": item, "price": price})
    return f"matched {n}"

@command("feed push", permission=Permission.ADMIN)
async def push(ctx, n: int, price: int = 5) -> str:
    """Publish n events."""
    matched = 0
    for i in range(n):
        matched += ctx.plugin.publish("feed.deals", f"deal {i} at {price}", {"price": price})
    return f"published {n}, matched {matched}"

@hookimpl
def bot_alert_topics():
    return [
        Topic("feed.deals", "Deals", matches=price_below),
        Topic(
            "feed.market",
            "Market, indexed by item",
            matches=item_and_price,
            filter_key=lambda f: f.split()[0],
            event_keys=lambda text, data: [data["item"]],
        ),
        Topic("feed.stock", "Stock, indexed", matches=never_called, index=ExactItems),
    ]

@hookimpl
def bot_commands():
    return [
        push,
        push_item,
        push_stock,
        subscription_command("feed alerts", "feed.deals"),
        subscription_command("feed stock alerts", "feed.stock"),
        subscription_command("feed market", "feed.market"),
    ]
'''


@pytest.fixture
def feed(plugin_dir: Callable[..., Path]) -> dict[str, object]:
    directory = plugin_dir(feed=FEED)
    return {"plugins": {"feed": {}}, "config": {"bot": {"plugin_dirs": [str(directory)]}}}


async def test_subscribe_filter_and_unsubscribe(bot_harness, feed) -> None:
    async with bot_harness(**feed) as bot:
        a, b = bot.chat("a"), bot.chat("b")
        assert await a.say("!feed alerts on") == ["This chat now receives feed.deals alerts."]
        assert await b.say("!feed alerts on 3") == [
            "This chat now receives feed.deals alerts matching '3'."
        ]
        assert await a.say("!feed alerts on") == ["This chat already receives feed.deals alerts."]
        assert await a.say("!feed push 1 5", admin=True) == ["published 1, matched 1"]
        assert await a.say("!feed push 1 2", admin=True) == ["published 1, matched 2"]
        sent = await bot.flush_alerts()
        assert [(s.chat_id, s.text) for s in sent] == [
            ("a", "deal 0 at 5\ndeal 0 at 2"),
            ("b", "deal 0 at 2"),
        ]
        assert await a.say("!feed alerts off") == ["feed.deals alerts turned off for this chat."]
        await a.say("!feed push 1 1", admin=True)
        sent = await bot.flush_alerts()
        assert [s.chat_id for s in sent[2:]] == ["b"]


async def test_a_burst_is_coalesced_into_one_message(bot_harness, feed) -> None:
    async with bot_harness(**feed) as bot:
        chat = bot.chat("a")
        await chat.say("!feed alerts on")
        await chat.say("!feed push 50", admin=True)
        alert = await bot.wait_for_alert()
        await asyncio.sleep(0.1)
        assert len(bot.alerts_sent) == 1
        assert alert.text.splitlines() == [f"deal {i} at 5" for i in range(50)]


async def test_a_message_over_the_platform_limit_is_split_at_line_breaks(bot_harness, feed) -> None:
    async with bot_harness(**feed) as bot:
        chat = bot.chat("a")
        await chat.say("!feed alerts on")
        bot.bot.transports[chat.platform].max_length = 60
        await chat.say("!feed push 20", admin=True)
        await bot.wait_for_alert()
        await bot.bot.alerts.wait_idle()
        parts = [a.text for a in bot.alerts_sent]
        assert len(parts) > 1 and all(len(p) <= 60 for p in parts)
        assert [line for p in parts for line in p.splitlines()] == [
            f"deal {i} at 5" for i in range(20)
        ]


async def test_chat_rate_limit_gathers_instead_of_dropping(bot_harness, plugin_dir) -> None:
    directory = plugin_dir(feed=FEED)
    config = {
        "bot": {"plugin_dirs": [str(directory)], "alert_window": 0.01, "alert_chat_per_minute": 2}
    }
    async with bot_harness({"feed": {}}, config=config) as bot:
        chat = bot.chat("a")
        await chat.say("!feed alerts on")
        for _ in range(5):
            await chat.say("!feed push 1", admin=True)
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.1)
        # Two messages went out within the minute; the rest waits, gathered, for the next slot.
        assert len(bot.alerts_sent) == 2
        await bot.flush_alerts()
        lines = [line for a in bot.alerts_sent for line in a.text.splitlines()]
        assert len(lines) == 5


async def test_overflow_is_counted_not_silently_dropped(bot_harness, feed) -> None:
    async with bot_harness(**feed) as bot:
        chat = bot.chat("a")
        await chat.say("!feed alerts on")
        await chat.say("!feed push 250", admin=True)
        sent = await bot.flush_alerts()
        text = "\n".join(s.text for s in sent)
        assert "(+50 more alerts not shown: too many at once)" in text
        assert text.count("deal ") == 200


async def test_subscriptions_survive_a_restart(bot_harness, feed, tmp_path: Path) -> None:
    directory = tmp_path / "persist"
    directory.mkdir()
    async with bot_harness(**feed, directory=directory) as bot:
        await bot.chat("a").say("!feed alerts on")
    async with bot_harness(**feed, directory=directory) as bot:
        await bot.chat("x").say("!feed push 1", admin=True)
        alert = await bot.wait_for_alert()
        assert alert.chat_id == "a"


async def test_keyed_topics_check_only_subscriptions_with_the_events_key(bot_harness, feed) -> None:
    async with bot_harness(**feed) as bot:
        await bot.chat("all").say("!feed market on")
        await bot.chat("pelt").say("!feed market on pelt 10")
        await bot.chat("pelt-any").say("!feed market on pelt")
        await bot.chat("wood").say("!feed market on wood")
        admin = bot.chat("admin")
        assert await admin.say("!feed item pelt 12", admin=True) == ["matched 2"]
        assert await admin.say("!feed item pelt 8", admin=True) == ["matched 3"]
        assert await admin.say("!feed item coal 1", admin=True) == ["matched 1"]
        index = bot.bot.alerts._subs["feed.market"]
        assert set(index.by_key) == {"pelt", "wood"} and len(index.unfiltered) == 1
        await bot.chat("pelt").say("!feed market off")
        assert await admin.say("!feed item pelt 8", admin=True) == ["matched 2"]
        sent = await bot.flush_alerts()
        by_chat = {a.chat_id: a.text.splitlines() for a in sent}
        assert "wood" not in by_chat
        assert by_chat["pelt-any"] == ["pelt at 12", "pelt at 8", "pelt at 8"]
        assert by_chat["all"] == ["pelt at 12", "pelt at 8", "coal at 1", "pelt at 8"]


async def test_a_topic_with_an_index_delivers_to_what_the_index_finds(bot_harness, feed) -> None:
    async with bot_harness(**feed) as bot:
        await bot.chat("all").say("!feed stock alerts on")
        await bot.chat("pelt").say("!feed stock alerts on pelt")
        await bot.chat("pelt2").say("!feed stock alerts on pelt")
        await bot.chat("both").say("!feed stock alerts on pelt")
        await bot.chat("both").say("!feed stock alerts on coal")
        admin = bot.chat("admin")
        assert await admin.say("!feed stock pelt", admin=True) == ["matched 4"]
        assert await admin.say("!feed stock coal", admin=True) == ["matched 2"]
        # Removing a subscription rebuilds the index from what is left.
        await bot.chat("pelt2").say("!feed stock alerts off")
        assert await admin.say("!feed stock pelt", admin=True) == ["matched 3"]
        sent = await bot.flush_alerts()
        by_chat = {a.chat_id: a.text.splitlines() for a in sent}
        assert by_chat == {
            "all": ["pelt in stock", "coal in stock", "pelt in stock"],
            "pelt": ["pelt in stock", "pelt in stock"],
            "pelt2": ["pelt in stock"],
            "both": ["pelt in stock", "coal in stock", "pelt in stock"],
        }
