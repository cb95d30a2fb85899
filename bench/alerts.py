"""Benchmark: alert fan-out. `python bench/alerts.py [--deals 3000] [--rounds 5]`

The ChatWars simulator publishes deals into a private RabbitMQ as fast as it can; the
ChatWars plugin consumes them (acknowledging each after handling), gathers them per
``alert_interval``, and the alert router matches them against 10,000 chat subscriptions with
item filters (``cw alerts deals <item> [max price]``) and delivers coalesced messages.

Reported: deals/s consumed, matching cost per published event, p99 delay from publish to the
coalesced chat message, and the counts published = consumed = matched + unmatched. Floor, same
run: a bare aio-pika consumer acknowledging the same queue while the same publisher runs;
target >= 0.8x its rate. Both rates are taken the same way: deals over the time from the first
publish to the last deal consumed. Platform pacing (25 messages/s over all chats on Telegram)
is turned off here: it is a limit of the platforms, not of this code, and would only measure
waiting.

Without pacing, a 0.25 s interval to 10,000 chats asks for ~40,000 chat messages a second,
sent from the loop that also consumes the feed. So each round also runs the plugin once with
``alert_window`` at an hour (matched and gathered per chat as usual, delivered only after the
round): that figure is intake and matching alone, and the gap between the two is delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import aio_pika
from _common import Report, arguments, ms, pct, per_second, rabbitmq_support, us

from bot.testing import BotHarness, SentAlert
from bot_plugins.chatwars.feeds import FeedKind
from bot_plugins.chatwars.service import service_for
from bot_plugins.chatwars.simulator import ChatWarsSimulator
from bot_plugins.chatwars.simworld import ITEMS

APP = "benchalerts"
DEALS_TOPIC = "chatwars.deals"


def deal(seq: int, rng: random.Random) -> dict[str, Any]:
    """A deal whose price is its sequence number, so a chat line maps back to its publish."""
    return {
        "sellerId": "a" * 32,
        "sellerCastle": "🦌",
        "sellerName": "Seller",
        "buyerId": "b" * 32,
        "buyerCastle": "🐉",
        "buyerName": "Buyer",
        "item": rng.choice(ITEMS),
        "qty": 1,
        "price": seq,
    }


async def publish_all(sim: ChatWarsSimulator, n: int, sent_at: dict[int, float]) -> float:
    """Publish n deals, 50 in flight at a time; returns the seconds it took."""
    rng = random.Random(7)
    t0 = time.perf_counter()
    for start in range(1, n + 1, 50):
        batch = range(start, min(n + 1, start + 50))
        for seq in batch:
            sent_at[seq] = time.perf_counter()
        await asyncio.gather(*(sim.publish_feed(FeedKind.DEALS, deal(s, rng)) for s in batch))
    return time.perf_counter() - t0


async def floor_rate(url: str, sim: ChatWarsSimulator, n: int) -> float:
    """Deals/s a bare aio-pika consumer with acks takes off the deals queue."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=64)
        queue = await channel.get_queue(f"{APP}_deals", ensure=False)
        got = 0
        done = asyncio.Event()
        last = 0.0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal got, last
            await message.ack()
            got += 1
            if got == n:
                last = time.perf_counter()
                done.set()

        tag = await queue.consume(on_message)
        t0 = time.perf_counter()
        await publish_all(sim, n, {})
        await asyncio.wait_for(done.wait(), 120)
        await queue.cancel(tag)
        return n / (last - t0)


def subscribe_chats(h: BotHarness, count: int) -> None:
    """``count`` Telegram chats, each filtering deals by an item and, for half, a price."""
    rng = random.Random(11)
    store = h.bot.store
    with store.transaction():
        for i in range(count):
            item = rng.choice(ITEMS).lower()
            flt = item if i % 2 else f"{item} {rng.randint(1, 10_000)}"
            store.subscribe("telegram", str(100_000 + i), DEALS_TOPIC, flt)
    h.bot.alerts.load()


#: a chat's window when the round measures intake and matching alone: longer than any round
HELD = 3600.0


async def plugin_run(
    url: str, sim: ChatWarsSimulator, n: int, subs: int, window: float = 0.05
) -> dict[str, Any]:
    """One plugin round; with ``window`` at HELD, nothing is delivered until it is over."""
    with tempfile.TemporaryDirectory() as d:
        plugins = {"chatwars": {"amqp_url": url, "app": APP, "alert_interval": 0.25}}
        config = {
            "bot": {
                "alert_window": window,
                "alert_chat_per_minute": 100_000,
                "alert_global_per_second": 1_000_000,
            }
        }
        async with BotHarness(plugins, config=config, directory=Path(d)) as h:
            runtime = h.bot.plugins.runtimes["chatwars"]
            service = service_for(runtime)
            assert service is not None
            await service.client.wait_connected(10)
            subscribe_chats(h, subs)

            router = h.bot.alerts
            original = router.publish
            costs: list[float] = []
            outcome = {"matched": 0, "unmatched": 0}

            def timed_publish(topic: str, text: str, data: dict[str, Any] | None = None) -> int:
                t0 = time.perf_counter()
                matched = original(topic, text, data)
                costs.append(time.perf_counter() - t0)
                if topic == DEALS_TOPIC:
                    outcome["matched" if matched else "unmatched"] += 1
                return matched

            router.publish = timed_publish  # type: ignore[method-assign]
            service.feeds.publish = timed_publish
            delivered_at: list[tuple[float, str]] = []
            record = h._record_alert

            def timed_record(alert: SentAlert) -> None:
                delivered_at.append((time.perf_counter(), alert.text))
                record(alert)

            h._record_alert = timed_record  # type: ignore[method-assign]

            sent_at: dict[int, float] = {}
            received0 = service.feeds.received
            t0 = time.perf_counter()
            await publish_all(sim, n, sent_at)
            while service.feeds.received - received0 < n:
                if time.perf_counter() - t0 > 120:
                    raise SystemExit(f"only {service.feeds.received - received0} of {n} consumed")
                await asyncio.sleep(0.005)
            consumed_s = time.perf_counter() - t0
            await asyncio.sleep(0.6)  # one more alert interval: the last deals are published
            if window < HELD:
                await router.wait_idle(60)
            consumed = service.feeds.received - received0

    delays = []
    price = re.compile(r" at (\d+)💰")
    for when, text in delivered_at:
        for m in price.finditer(text):
            seq = int(m.group(1))
            if seq in sent_at:
                delays.append(when - sent_at[seq])
    return {
        "rate": n / consumed_s,
        "consumed": consumed,
        "costs": costs,
        "delays": delays,
        "messages": len(delivered_at),
        **outcome,
    }


async def main(args: argparse.Namespace) -> None:
    logging.disable(logging.WARNING)
    report = Report(
        f"alert fan-out: {args.deals:,} deals a round, "
        f"{args.subscriptions:,} filtered chat subscriptions",
        args,
    )
    rate = report.figure(
        "deals/s consumed",
        per_second,
        0.8,
        higher_is_better=True,
        floor_label="bare aio-pika consumer with acks",
    )
    held = report.figure(
        "deals/s consumed, delivery after the round",
        per_second,
        higher_is_better=True,
        floor_label="bare aio-pika consumer with acks",
    )
    cost50 = report.figure("matching cost per published event p50", us)
    cost99 = report.figure("matching cost per published event p99", us)
    delay50 = report.figure("delay publish -> chat message p50", ms)
    delay99 = report.figure("delay publish -> chat message p99", ms)
    messages = report.figure("chat messages delivered (coalesced)", lambda x: f"{x:,.0f}")
    with rabbitmq_support().running_broker() as broker:
        url = str(broker.url)
        async with ChatWarsSimulator(url, APP, seed=1) as sim:
            for _ in range(args.rounds):
                floor = await floor_rate(url, sim, args.deals)
                published_before = sim.feeds_sent
                result = await plugin_run(url, sim, args.deals, args.subscriptions)
                published = sim.feeds_sent - published_before
                rate.add(result["rate"], floor)
                held_before = sim.feeds_sent
                intake = await plugin_run(url, sim, args.deals, args.subscriptions, HELD)
                held.add(intake["rate"], floor)
                counts = f"{sim.feeds_sent - held_before} / {intake['consumed']}"
                ok = sim.feeds_sent - held_before == intake["consumed"] == args.deals
                report.check("delivery after the round: published / consumed", counts, ok)
                cost50.add(pct(result["costs"], 50))
                cost99.add(pct(result["costs"], 99))
                delay50.add(pct(result["delays"], 50))
                delay99.add(pct(result["delays"], 99))
                messages.add(result["messages"])
                counts = (
                    f"{published} / {result['consumed']} / "
                    f"{result['matched']} + {result['unmatched']}"
                )
                ok = published == result["consumed"] == result["matched"] + result["unmatched"]
                report.check("published / consumed / matched + unmatched", counts, ok)
    report.finish()


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("--deals", type=int, default=3000)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    asyncio.run(main(parser.parse_args()))
