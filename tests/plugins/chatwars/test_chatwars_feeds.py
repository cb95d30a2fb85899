"""The market feeds: parsing the document's shapes, and consuming them over the broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import pytest

from bot_plugins.chatwars.client import ChatWarsClient
from bot_plugins.chatwars.feeds import (
    Deal,
    Digest,
    DigestEntry,
    FeedFormatError,
    FeedKind,
    FeedMessage,
    Offer,
    Shop,
    ShopOffer,
    YellowPages,
    parse_feed,
)
from bot_plugins.chatwars.simulator import ChatWarsSimulator
from bot_plugins.chatwars.simworld import ChatWarsWorld

MakeClient = Callable[..., Awaitable[ChatWarsClient]]

DOC_DEAL = {
    "sellerId": "53f3e27a124e01dcdd77de45995bf0db",
    "sellerCastle": "🦌",
    "sellerName": "Wolpertinger",
    "buyerId": "3537e9190d1d516e05cd638bb76fe66c",
    "buyerCastle": "🦌",
    "buyerName": "Guacamele",
    "item": "charcoal",
    "qty": 10,
    "price": 6,
}
DOC_YELLOW_PAGES = [
    {
        "link": "UQ5DX",
        "name": "Studio",
        "ownerName": "WolperTinger",
        "ownerCastle": "🦌",
        "kind": "⚒",
        "mana": 20,
        "offers": [{"item": "Metal plate", "price": 1, "mana": 10}],
    }
]


# --------------------------------------------------------------------------- parsing


def test_the_documents_examples_parse() -> None:
    deal = parse_feed(FeedKind.DEALS, json.dumps(DOC_DEAL))
    assert deal == Deal(
        seller_id="53f3e27a124e01dcdd77de45995bf0db",
        seller_castle="🦌",
        seller_name="Wolpertinger",
        buyer_id="3537e9190d1d516e05cd638bb76fe66c",
        buyer_castle="🦌",
        buyer_name="Guacamele",
        item="charcoal",
        qty=10,
        price=6,
    )
    offer = {k: v for k, v in DOC_DEAL.items() if not k.startswith("buyer")}
    assert parse_feed(FeedKind.OFFERS, json.dumps(offer)) == Offer(
        "53f3e27a124e01dcdd77de45995bf0db", "🦌", "Wolpertinger", "charcoal", 10, 6
    )
    digest = parse_feed(
        FeedKind.DIGEST,
        json.dumps([{"name": "Bone powder", "prices": [10, 11, 15]}, {"name": "Iron ore"}]),
    )
    assert digest == Digest((DigestEntry("Bone powder", (10, 11, 15)), DigestEntry("Iron ore", ())))
    assert isinstance(digest, Digest) and digest.entries[0].best_price == 10
    pages = parse_feed(FeedKind.YELLOW_PAGES, json.dumps(DOC_YELLOW_PAGES).encode())
    assert pages == YellowPages(
        (
            Shop(
                "UQ5DX", "Studio", "WolperTinger", "🦌", "⚒", 20, (ShopOffer("Metal plate", 1, 10),)
            ),
        )
    )


def test_numbers_as_strings_are_accepted() -> None:
    deal = parse_feed(FeedKind.DEALS, json.dumps({**DOC_DEAL, "qty": "10", "price": " 6"}))
    assert isinstance(deal, Deal) and (deal.qty, deal.price) == (10, 6)


def test_a_deal_shaped_as_documented_reads_as_the_lenient_reader_reads_it() -> None:
    # Such deals skip the field-by-field checks; the result must be the same.
    as_documented = parse_feed(FeedKind.DEALS, json.dumps(DOC_DEAL))
    stringly = {k: str(v) if k in ("qty", "price") else v for k, v in DOC_DEAL.items()}
    assert as_documented == parse_feed(FeedKind.DEALS, json.dumps(stringly))
    without_names = {k: v for k, v in DOC_DEAL.items() if not k.endswith(("Name", "Castle"))}
    sparse = parse_feed(FeedKind.DEALS, json.dumps(without_names))
    assert isinstance(sparse, Deal) and (sparse.seller_name, sparse.buyer_castle) == ("", "")


@pytest.mark.parametrize(
    ("kind", "body", "reason"),
    [
        (FeedKind.DEALS, b"{not json", "not JSON"),
        (FeedKind.DEALS, b"\xff\xfe", "not JSON"),
        (FeedKind.DEALS, json.dumps([DOC_DEAL]).encode(), "not an object"),
        (FeedKind.DEALS, json.dumps({**DOC_DEAL, "qty": "ten"}).encode(), "qty"),
        (FeedKind.DEALS, json.dumps({**DOC_DEAL, "price": True}).encode(), "price"),
        (FeedKind.OFFERS, json.dumps({"item": "x", "qty": 1}).encode(), "sellerId"),
        (FeedKind.DIGEST, json.dumps({"name": "x"}).encode(), "not a list"),
        (FeedKind.DIGEST, json.dumps([{"name": "x", "prices": ["a"]}]).encode(), "prices"),
        (FeedKind.YELLOW_PAGES, json.dumps([{"name": "no link"}]).encode(), "link"),
        (FeedKind.YELLOW_PAGES, json.dumps([{"link": "A", "offers": 3}]).encode(), "offers"),
    ],
)
def test_malformed_feed_messages_raise_a_clear_error(
    kind: FeedKind, body: bytes, reason: str
) -> None:
    with pytest.raises(FeedFormatError) as caught:
        parse_feed(kind, body)
    assert reason in str(caught.value)


def test_generated_feeds_parse() -> None:
    world = ChatWarsWorld(seed=3)
    for kind in FeedKind:
        message = parse_feed(kind, json.dumps(world.feed_payload(kind)))
        assert message.kind == kind


# --------------------------------------------------------------------------- over the broker


async def test_every_feed_reaches_the_handler(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator
) -> None:
    received: list[FeedMessage] = []
    chatwars_client.add_feed_handler(received.append)
    assert chatwars_client.status.feeds == {kind: None for kind in FeedKind}
    sent = {kind: await chatwars_sim.publish_feed(kind) for kind in FeedKind}
    await chatwars_sim.wait_until(lambda: len(received) == len(FeedKind))
    by_kind = {message.kind: message for message in received}
    for kind, payload in sent.items():
        assert by_kind[kind] == parse_feed(kind, json.dumps(payload))


async def test_a_malformed_message_is_dropped_and_the_feed_goes_on(
    chatwars_client: ChatWarsClient,
    chatwars_sim: ChatWarsSimulator,
    rabbitmq_broker: Any,
    caplog: Any,
) -> None:
    received: list[FeedMessage] = []
    chatwars_client.add_feed_handler(received.append)
    await chatwars_sim.publish_raw_feed(FeedKind.DEALS, b"\x00garbage")
    await chatwars_sim.publish_raw_feed(FeedKind.DEALS, json.dumps({"item": 1}).encode())
    await chatwars_sim.publish_feed(FeedKind.DEALS, DOC_DEAL)
    await chatwars_sim.wait_until(lambda: len(received) == 1)
    assert received == [parse_feed(FeedKind.DEALS, json.dumps(DOC_DEAL))]
    assert caplog.text.count("dropped a malformed deals message") == 2
    depths = await asyncio.to_thread(rabbitmq_broker.queue_depths)
    assert depths[chatwars_client.routing.feed_queue(FeedKind.DEALS)] == 0  # all acknowledged


async def test_messages_are_acknowledged_only_after_the_handler_finished(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, rabbitmq_broker: Any
) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(message: FeedMessage) -> None:
        started.set()
        await release.wait()

    chatwars_client.add_feed_handler(slow)
    await chatwars_sim.publish_feed(FeedKind.OFFERS)
    await asyncio.wait_for(started.wait(), 5)
    queue = chatwars_client.routing.feed_queue(FeedKind.OFFERS)
    assert (await asyncio.to_thread(rabbitmq_broker.queue_depths))[queue] == 1  # unacked
    release.set()
    for _ in range(50):
        if (await asyncio.to_thread(rabbitmq_broker.queue_depths))[queue] == 0:
            break
    else:
        pytest.fail("the message was never acknowledged")


async def test_a_failing_handler_does_not_stop_the_feed(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator
) -> None:
    received: list[FeedMessage] = []

    def broken(message: FeedMessage) -> None:
        raise RuntimeError("bug in an alert")

    chatwars_client.add_feed_handler(broken)
    chatwars_client.add_feed_handler(received.append)
    await chatwars_sim.publish_feed(FeedKind.DEALS)
    await chatwars_sim.publish_feed(FeedKind.DEALS)
    await chatwars_sim.wait_until(lambda: len(received) == 2)


async def test_feeds_are_published_at_the_configured_rate(
    rabbitmq_url: str, chatwars_app: str, make_client: MakeClient
) -> None:
    # make_client's own simulator serves chatwars_app without feeds; this one ticks fast.
    ticking = ChatWarsSimulator(
        rabbitmq_url,
        f"{chatwars_app}f",
        seed=5,
        feed_interval=0.1,
        deals_per_tick=4,
        feed_exchange_prefix=f"{chatwars_app}f.",
        delete_on_stop=True,
    )
    async with ticking:
        client = await make_client(app=ticking.app)
        received: list[FeedMessage] = []
        client.add_feed_handler(received.append)
        await ticking.wait_until(lambda: len(received) >= 14)
    kinds = [message.kind for message in received]
    assert kinds.count(FeedKind.DEALS) >= 8
    assert {FeedKind.OFFERS, FeedKind.DIGEST, FeedKind.YELLOW_PAGES} <= set(kinds)


async def test_a_missing_feed_queue_leaves_replies_and_other_feeds_working(
    rabbitmq_url: str, chatwars_sim: ChatWarsSimulator, make_client: MakeClient
) -> None:
    # The app never asked ChatWars for an offers queue: it does not exist on the server.
    async with await aio_pika.connect(rabbitmq_url) as connection:
        channel = await connection.channel()
        await channel.queue_delete(f"{chatwars_sim.app}_offers")
    client = await make_client()
    assert client.connected
    assert "does not exist" in (client.status.feeds[FeedKind.OFFERS] or "")
    assert client.status.feeds[FeedKind.DEALS] is None
    received: list[FeedMessage] = []
    client.add_feed_handler(received.append)
    await chatwars_sim.publish_feed(FeedKind.DEALS)
    await chatwars_sim.wait_until(lambda: len(received) == 1)
    chatwars_sim.world.balance = 7
    assert (await client.get_info()).balance == 7
