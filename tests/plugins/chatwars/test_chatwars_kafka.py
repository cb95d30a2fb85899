"""Market feeds from Kafka (issue 15): ``feeds: {source: kafka, bootstrap, prefix}`` reads
the ``<prefix><feed>`` topics of a real Kafka-protocol broker started for the session
(tests/support/kafka.py), deals, duels and auction digests included, with no app
registration and no AMQP broker at all."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiokafka  # a dependency of the bot (pyproject): never a reason to skip these tests
import aiokafka.admin as kafka_admin
import pytest

from bot_plugins.chatwars.config import ChatWarsConfig
from bot_plugins.chatwars.feeds import FeedKind
from bot_plugins.chatwars.simworld import ChatWarsWorld


@pytest.fixture
def prefix() -> str:
    """Fresh topic names per test (the broker keeps everything in memory for the session)."""
    return f"t{uuid.uuid4().hex[:10]}-cw3-"


@pytest.fixture
async def producer(kafka_bootstrap: str, prefix: str) -> AsyncIterator[Any]:
    """Creates the test's topics (one partition each, as the caveats advise) and sends."""
    admin = kafka_admin.AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [kafka_admin.NewTopic(f"{prefix}{kind.value}", 1, 1) for kind in FeedKind]
        )
    finally:
        await admin.close()
    sender = aiokafka.AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await sender.start()
    try:
        yield sender
    finally:
        await sender.stop()


async def send(producer: Any, prefix: str, kind: FeedKind, payload: Any) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await producer.send_and_wait(f"{prefix}{kind.value}", body)


def kafka_section(kafka_bootstrap: str, prefix: str, **more: Any) -> dict[str, Any]:
    return {
        # No app and the default AMQP URL, where no broker listens: Kafka alone must do.
        "feeds": {
            "source": "kafka",
            "bootstrap": kafka_bootstrap,
            "prefix": prefix,
            "offset_reset": "earliest",
        },
        "alert_interval": 0.2,
        "reconnect_min_delay": 0.05,
        "reconnect_max_delay": 0.5,
        **more,
    }


async def test_kafka_feeds_become_alerts_without_an_app_registration(
    bot_harness: Callable[..., Any], kafka_bootstrap: str, prefix: str, producer: Any
) -> None:
    world = ChatWarsWorld(seed=5)
    async with bot_harness(
        plugins={"chatwars": kafka_section(kafka_bootstrap, prefix)},
        admins={"console": ["boss"]},
    ) as bot:
        assert "chatwars" not in bot.failures, bot.failures
        chat = bot.chat("market", kind="group")
        assert (await chat.say("!cw alerts deals iron ore"))[0].startswith(
            "This chat now gets ChatWars deals alerts for iron ore."
        )
        assert (await chat.say("!cw alerts duels Sable"))[0] == (
            "This chat now gets ChatWars duels alerts for sable."
        )
        assert (await chat.say("!cw alerts auction"))[0] == (
            "This chat now gets ChatWars auction alerts for everything."
        )

        deal = {**world.feed_payload(FeedKind.DEALS), "item": "Iron ore", "qty": 7, "price": 4}
        await send(producer, prefix, FeedKind.DEALS, deal)
        # Malformed and deeply nested messages are dropped; reading goes on.
        await send(producer, prefix, FeedKind.DEALS, b"{not json")
        await send(producer, prefix, FeedKind.DUELS, b"[" * 100_000)
        duel = world.feed_payload(FeedKind.DUELS)
        duel["winner"].update(name="Sable", tag="NC", castle="🦌", level=40)
        duel["loser"].update(name="Quill", tag=None, castle="🦈", level=38)
        duel.update(isChallenge=False, isGuildDuel=False)
        await send(producer, prefix, FeedKind.DUELS, duel)
        lots = world.feed_payload(FeedKind.AU_DIGEST)
        lots[0].update(itemName="Hunter Bow", price=120, quality=None, status="Active")
        await send(producer, prefix, FeedKind.AU_DIGEST, lots)

        alert = await bot.wait_for_alert(lambda a: "Iron ore" in a.text, timeout=30)
        assert "Deal: 7 × Iron ore at 4💰" in alert.text
        alert = await bot.wait_for_alert(lambda a: "Duel:" in a.text, timeout=30)
        assert "Duel: 🦌[NC]Sable (40) beat 🦈Quill (38)" in alert.text
        alert = await bot.wait_for_alert(lambda a: "Auction:" in a.text, timeout=30)
        assert "Auction: Hunter Bow by" in alert.text and "at 120💰, Active" in alert.text

        service = bot.plugin("chatwars")
        [status] = [
            line
            for line in (await bot.chat(kind="private").say("!status"))[0].splitlines()
            if "chatwars" in line
        ]
        assert status == "plugin chatwars: up"
        assert service is not None
        # Commands that need an app say why they cannot work.
        [refused] = await bot.chat(kind="private").say("!cw balance", user="boss", admin=True)
        assert refused == (
            "This bot has no ChatWars app registered (chatwars.app), so only the market "
            "alerts work (cw alerts)."
        )


async def test_health_says_when_the_kafka_brokers_cannot_be_reached(
    bot_harness: Callable[..., Any], prefix: str
) -> None:
    section = kafka_section("127.0.0.1:9", prefix)  # the discard port: nobody answers
    async with bot_harness(plugins={"chatwars": section}) as bot:
        chat = bot.chat(kind="private")
        for _ in range(300):  # up to 30 s on a loaded machine
            [status] = [
                line for line in (await chat.say("!status"))[0].splitlines() if "chatwars" in line
            ]
            if "cannot reach" in status:
                break
            await asyncio.sleep(0.1)
        assert status == (
            "plugin chatwars: down - Not reading the ChatWars feeds from Kafka: cannot reach "
            "the Kafka brokers at 127.0.0.1:9; retrying."
        )


def test_feed_config_keys_and_errors() -> None:
    config = ChatWarsConfig(feeds={"source": "kafka", "bootstrap": "a:9092, b:9093"})
    assert config.feeds.bootstrap == "a:9092,b:9093" and config.feeds.prefix == "cw3-"
    assert config.feeds.selected == list(FeedKind) and config.feeds.amqp_kinds == []
    assert not config.has_app  # alerts only: no app needed
    legacy = ChatWarsConfig(app="x", feeds=["deals", "duels"])
    assert legacy.feeds.source == "amqp" and legacy.feeds.amqp_kinds == [
        FeedKind.DEALS,
        FeedKind.DUELS,
    ]
    for bad, said in (
        ({"source": "kafka"}, "bootstrap is required with source: kafka"),
        ({"source": "kafka", "bootstrap": "nohost"}, "is not host:port"),
        ({"source": "kafka", "bootstrap": "h:1", "prefix": "a b"}, "topic prefix"),
        ({"source": "mq"}, "amqp"),
    ):
        with pytest.raises(ValueError, match=said):
            ChatWarsConfig(app="x", feeds=bad)
    with pytest.raises(ValueError, match="app is required"):
        ChatWarsConfig(feeds={"source": "amqp"})


def test_aiokafka_is_imported_only_when_kafka_is_the_source() -> None:
    code = (
        "import sys\n"
        "import bot_plugins.chatwars\n"
        "from bot_plugins.chatwars.config import ChatWarsConfig\n"
        "ChatWarsConfig(app='x').new_client()\n"
        "print('aiokafka' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


async def test_a_reader_in_a_group_resumes_where_the_group_left_off(
    kafka_bootstrap: str, prefix: str, producer: Any
) -> None:
    """With ``group_id`` the group's committed offsets decide where a restarted reader
    starts: deals published while no reader ran are read, the ones read before are not. (A
    reader without a group starts at new messages each time: ``offset_reset: latest``.)"""
    from bot_plugins.chatwars.kafka_feeds import KafkaFeeds

    world = ChatWarsWorld(seed=9)
    group = f"g{uuid.uuid4().hex[:8]}"
    seen: list[int] = []

    def deal(n: int) -> dict[str, Any]:
        return {**world.feed_payload(FeedKind.DEALS), "item": "Iron ore", "qty": n, "price": 4}

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(600):  # a group's join and rebalance take seconds
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"read {seen}")

    def reader() -> KafkaFeeds:
        feeds = KafkaFeeds(kafka_bootstrap, prefix, [FeedKind.DEALS], group_id=group)
        feeds.add_feed_handler(lambda deal: seen.append(deal.qty))
        feeds.start()
        return feeds

    first = reader()
    for n in range(1, 100):  # until the group has its partition and reads from the end
        await send(producer, prefix, FeedKind.DEALS, deal(n))
        await asyncio.sleep(0.2)
        if seen:
            break
    await send(producer, prefix, FeedKind.DEALS, deal(1000))
    await until(lambda: 1000 in seen)
    before = list(seen)
    assert before[-1] == 1000
    await first.close()  # leaves the group, committing what it read

    for n in (1001, 1002, 1003):
        await send(producer, prefix, FeedKind.DEALS, deal(n))
    second = reader()
    try:
        await until(lambda: len(seen) >= len(before) + 3)
        assert seen[len(before) :] == [1001, 1002, 1003]  # nothing missed, nothing twice
    finally:
        await second.close()
