"""Feed messages are acknowledged in batches (``multiple=True``), never before they were handled.

The broker is the judge: ``rabbitmqctl list_queues messages`` counts ready *and*
unacknowledged messages, so a depth of 0 while the client is still consuming means every
message was acknowledged, and a depth of N - k means exactly k were.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aio_pika

from bot_plugins.chatwars.client import ChatWarsClient
from bot_plugins.chatwars.feeds import Deal, FeedKind, FeedMessage
from bot_plugins.chatwars.simulator import ChatWarsSimulator

MakeClient = Callable[..., Awaitable[ChatWarsClient]]


def deal(seq: int) -> dict[str, Any]:
    """A deal whose price is its sequence number, so a handled message maps back to it."""
    return {
        "sellerId": "a" * 32,
        "sellerCastle": "🦌",
        "sellerName": "Seller",
        "buyerId": "b" * 32,
        "buyerCastle": "🐉",
        "buyerName": "Buyer",
        "item": "Charcoal",
        "qty": 1,
        "price": seq,
    }


async def depth(broker: Any, queue: str) -> int:
    """Ready plus unacknowledged messages in ``queue``."""
    return int((await asyncio.to_thread(broker.queue_depths)).get(queue, 0))


async def wait_depth(broker: Any, queue: str, expected: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        # The broker's counts come from rabbitmqctl: there is no event to wait on.
        while (await depth(broker, queue)) != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def no_reconnects() -> Iterator[float]:
    """Stay away after a drop, so the test, not the client, reads what the broker kept."""
    return itertools.repeat(60.0)


async def test_many_messages_all_handled_and_all_acknowledged(
    make_client: MakeClient, chatwars_sim: ChatWarsSimulator, rabbitmq_broker: Any
) -> None:
    # Handlers finish out of order (some await longer), one in seven fails, and malformed
    # messages are mixed in: each kind of outcome must still end acknowledged.
    count = 600
    handled: list[int] = []

    async def uneven(message: FeedMessage) -> None:
        assert isinstance(message, Deal)
        if message.price % 5 == 0:
            await asyncio.sleep(0.002 * (message.price % 3))
        handled.append(message.price)
        if message.price % 7 == 0:
            raise RuntimeError("bug in an alert")

    client = await make_client(feeds=[FeedKind.DEALS])
    client.add_feed_handler(uneven)
    queue = client.routing.feed_queue(FeedKind.DEALS)
    for start in range(1, count + 1, 50):
        await asyncio.gather(
            *(
                chatwars_sim.publish_feed(FeedKind.DEALS, deal(seq))
                for seq in range(start, min(count + 1, start + 50))
            )
        )
        await chatwars_sim.publish_raw_feed(FeedKind.DEALS, b"\x00garbage")
    await chatwars_sim.wait_until(lambda: len(handled) == count, timeout=20)
    assert sorted(handled) == list(range(1, count + 1))
    # Still consuming: nothing ready, nothing unacknowledged, malformed and failed included.
    await wait_depth(rabbitmq_broker, queue, 0)

    # And nothing comes back to a new consumer: every acknowledgement took effect.
    await client.close()
    again = await make_client(feeds=[FeedKind.DEALS])
    redelivered: list[FeedMessage] = []
    again.add_feed_handler(redelivered.append)
    await chatwars_sim.publish_feed(FeedKind.DEALS, deal(count + 1))
    await chatwars_sim.wait_until(lambda: len(redelivered) == 1)
    assert [m.price for m in redelivered if isinstance(m, Deal)] == [count + 1]
    await wait_depth(rabbitmq_broker, queue, 0)


async def test_a_drop_redelivers_only_what_was_not_acknowledged(
    make_client: MakeClient,
    chatwars_sim: ChatWarsSimulator,
    rabbitmq_broker: Any,
    rabbitmq_url: str,
) -> None:
    # Deal 8 hangs in its handler; 1-7 finish before it, 9-20 after it. A multiple ack may
    # cover only 1-7: 9-20 were handled but their acks wait behind 8.
    count, stuck = 20, 8
    handled: list[int] = []
    started_stuck = asyncio.Event()

    async def hangs_on_one(message: FeedMessage) -> None:
        assert isinstance(message, Deal)
        if message.price == stuck:
            started_stuck.set()
            await asyncio.Event().wait()  # until the channel closes and cancels it
        handled.append(message.price)

    client = await make_client(feeds=[FeedKind.DEALS], reconnect_delays=no_reconnects)
    client.add_feed_handler(hangs_on_one)
    queue = client.routing.feed_queue(FeedKind.DEALS)
    for seq in range(1, count + 1):
        await chatwars_sim.publish_feed(FeedKind.DEALS, deal(seq))
    await asyncio.wait_for(started_stuck.wait(), 5)
    await chatwars_sim.wait_until(lambda: len(handled) == count - 1)
    await wait_depth(rabbitmq_broker, queue, count - (stuck - 1))
    await asyncio.sleep(0.3)  # no later flush acknowledges past the unhandled message
    assert await depth(rabbitmq_broker, queue) == count - (stuck - 1)

    await asyncio.to_thread(rabbitmq_broker.close_all_connections, "test: network failure")
    await chatwars_sim.wait_until(lambda: not client.connected, timeout=10)
    await client.close()

    # What the broker kept, read with a bare consumer: the unhandled message, and those
    # handled after it whose acks waited behind it (so at least once), all flagged
    # redelivered; none of 1-7, handled and acknowledged before the drop.
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        kept = await channel.get_queue(queue, ensure=False)
        back: list[tuple[int, bool]] = []
        while (message := await kept.get(no_ack=True, fail=False)) is not None:
            back.append((json.loads(message.body)["price"], bool(message.redelivered)))
    assert back == [(seq, True) for seq in range(stuck, count + 1)]


async def test_a_message_cut_short_by_a_drop_is_handled_after_the_reconnect(
    make_client: MakeClient, chatwars_sim: ChatWarsSimulator, rabbitmq_broker: Any
) -> None:
    # Deal 3 hangs the first time; the drop cancels it. Its redelivered copy must be handled,
    # not skipped as a repeat of something handled; 4-6, handled before the drop but not
    # acknowledged (their acks waited behind 3), come back too and are skipped.
    handled: list[int] = []
    hung = asyncio.Event()

    async def hangs_once(message: FeedMessage) -> None:
        assert isinstance(message, Deal)
        if message.price == 3 and not hung.is_set():
            hung.set()
            await asyncio.Event().wait()
        handled.append(message.price)

    client = await make_client(feeds=[FeedKind.DEALS])
    client.add_feed_handler(hangs_once)
    for seq in range(1, 7):
        await chatwars_sim.publish_feed(FeedKind.DEALS, deal(seq))
    await asyncio.wait_for(hung.wait(), 5)
    await chatwars_sim.wait_until(lambda: len(handled) == 5)
    await asyncio.to_thread(rabbitmq_broker.close_all_connections, "test: network failure")
    await chatwars_sim.wait_until(lambda: 3 in handled, timeout=15)
    await wait_depth(rabbitmq_broker, client.routing.feed_queue(FeedKind.DEALS), 0)
    assert sorted(handled) == [1, 2, 3, 4, 5, 6]
