"""What chat sees of library and API text (issue 14, items 11 and 12): no internal reprs,
and outside text clipped."""

from __future__ import annotations

from typing import Any

import aio_pika
import pytest
from aio_pika.exceptions import ChannelInvalidStateError

from bot_plugins.chatwars.client import ChatWarsClient
from bot_plugins.chatwars.errors import ChatWarsNotConnected
from bot_plugins.chatwars.feeds import FeedKind
from bot_plugins.chatwars.simulator import ChatWarsSimulator


async def test_a_closed_channel_is_described_without_its_repr(
    rabbitmq_url: str, chatwars_client: ChatWarsClient
) -> None:
    # The real exception aio-pika raises when publishing on a closed channel.
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        channel = await connection.channel()
        exchange = channel.default_exchange
        await channel.close()
        with pytest.raises(ChannelInvalidStateError) as raised:
            await exchange.publish(aio_pika.Message(b"{}"), routing_key="nowhere")
    finally:
        await connection.close()
    assert "Channel object at 0x" in str(raised.value)  # what used to reach chat

    reason = chatwars_client.describe_problem(raised.value)
    assert reason == "the channel to the broker was closed"
    message = ChatWarsNotConnected(reason).message
    assert message == "ChatWars is not reachable right now (the channel to the broker was closed)."


async def test_unknown_library_errors_lose_reprs_and_are_clipped(
    chatwars_client: ChatWarsClient,
) -> None:
    problem = RuntimeError("<Connection: 'amqp://x' at 0x7f00> broke " + "x" * 5000)
    reason = chatwars_client.describe_problem(problem)
    assert "<" not in reason and "0x7f00" not in reason and "RuntimeError" not in reason
    assert reason.startswith("broke xxx") and reason.endswith("…") and len(reason) == 200


async def test_deeply_nested_json_is_dropped_and_reading_goes_on(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Any
) -> None:
    """json.loads raises RecursionError (not ValueError) on deep nesting: a feed message or
    a reply like that is dropped like any malformed one, and nothing else is lost."""
    received: list[Any] = []
    chatwars_client.add_feed_handler(received.append)
    nested = b"[" * 100_000
    await chatwars_sim.publish_raw_feed(FeedKind.DEALS, nested)
    await chatwars_sim.publish_raw_reply(nested)
    deal = await chatwars_sim.publish_feed(FeedKind.DEALS)
    await chatwars_sim.wait_until(lambda: len(received) == 1, 10)
    assert received[0].item == deal["item"]
    user = await link_user(7301)  # replies still flow
    assert user.user_id == 7301
