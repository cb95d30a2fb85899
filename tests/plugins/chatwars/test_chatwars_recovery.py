"""Broken connections and lost replies: money moves exactly once, calls recover.

These break the real broker connection (``rabbitmqctl close_all_connections``) or restart
the broker, while a payout is in flight.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from bot.errors import ServiceTimeout
from bot_plugins.chatwars.client import ChatWarsClient
from bot_plugins.chatwars.errors import DuplicateTransaction
from bot_plugins.chatwars.feeds import Deal, FeedKind
from bot_plugins.chatwars.models import PayoutDone, UserToken
from bot_plugins.chatwars.requests import Payout
from bot_plugins.chatwars.simulator import ChatWarsSimulator

MakeClient = Callable[..., Awaitable[ChatWarsClient]]


async def link(client: ChatWarsClient, sim: ChatWarsSimulator, user_id: int) -> UserToken:
    await client.create_auth_code(user_id)
    return (await client.grant_token(user_id, sim.world.last_code(user_id, "auth"))).credentials


async def depth(broker: Any, queue: str) -> int:
    return int((await asyncio.to_thread(broker.queue_depths)).get(queue, 0))


async def test_connection_broken_mid_payout_pays_exactly_once(
    make_client: MakeClient, chatwars_sim: ChatWarsSimulator, rabbitmq_broker: Any
) -> None:
    world = chatwars_sim.world
    client = await make_client(timeout=20.0)
    user = await link(client, chatwars_sim, 6001)
    pouches_before, balance_before = world.users[6001].pouches, world.balance
    txid = client.new_transaction_id()

    chatwars_sim.hold_replies()
    payout = asyncio.create_task(client.payout(user, 4, txid, "prize"))
    await chatwars_sim.wait_until(lambda: len(world.payouts) == 1)

    # The game has paid; its reply is not out yet. Now every connection drops.
    await asyncio.to_thread(rabbitmq_broker.close_all_connections, "test: network failure")
    await chatwars_sim.wait_until(lambda: client.reconnects >= 1, timeout=10)
    chatwars_sim.release_replies()

    assert await payout == PayoutDone(6001, txid, 4)
    # The unacknowledged request was redelivered to the simulator after its reconnect; it
    # was recognised and not paid again.
    assert [t.transaction_id for t in world.payouts] == [txid]
    assert world.users[6001].pouches == pouches_before + 4
    assert world.balance == balance_before - 400

    # A retry with the same transactionId (what the ledger does after a timeout) is refused.
    with pytest.raises(DuplicateTransaction):
        await client.payout(user, 4, txid, "prize")
    assert len(world.payouts) == 1 and world.balance == balance_before - 400
    assert await depth(rabbitmq_broker, client.routing.inbound_queue) == 0


async def test_reply_sent_while_the_client_is_away_waits_in_its_queue(
    make_client: MakeClient, chatwars_sim: ChatWarsSimulator, rabbitmq_broker: Any
) -> None:
    def slow_reconnects() -> Iterator[float]:
        return itertools.repeat(2.0)

    world = chatwars_sim.world
    client = await make_client(timeout=20.0, reconnect_delays=slow_reconnects)
    user = await link(client, chatwars_sim, 6002)
    txid = client.new_transaction_id()
    chatwars_sim.hold_replies()
    payout = asyncio.create_task(client.payout(user, 1, txid))
    await chatwars_sim.wait_until(lambda: len(world.payouts) == 1)

    await asyncio.to_thread(rabbitmq_broker.close_all_connections)
    chatwars_sim.release_replies()
    # The simulator is back first and answers into the queue; nobody consumes it yet.
    await chatwars_sim.wait_until(lambda: chatwars_sim.replies_sent >= 3, timeout=5)
    assert not client.connected
    assert await depth(rabbitmq_broker, client.routing.inbound_queue) == 1

    assert await payout == PayoutDone(6002, txid, 1)
    await chatwars_sim.wait_until(lambda: client.connected)
    assert client.reconnects == 1
    assert len(world.payouts) == 1


async def test_lost_reply_then_retry_with_the_same_id_proves_it_happened_once(
    make_client: MakeClient, chatwars_sim: ChatWarsSimulator
) -> None:
    world = chatwars_sim.world
    client = await make_client(timeout=0.5)
    late: list[Any] = []
    client.add_late_reply_handler(lambda request, outcome: late.append(outcome))
    user = await link(client, chatwars_sim, 6003)
    balance_before = world.balance
    txid = client.new_transaction_id()

    chatwars_sim.drop_replies("payout")
    with pytest.raises(ServiceTimeout):
        await client.payout(user, 2, txid)
    assert len(world.payouts) == 1  # it happened; we just never heard

    # The retry goes out at once (same transaction: no need to wait for the lost reply).
    with pytest.raises(DuplicateTransaction) as caught:
        await client.call(Payout(user, 2, txid), timeout=3)
    assert caught.value.code == "DuplicateTransaction"
    assert len(world.payouts) == 1 and world.balance == balance_before - 200
    assert late == []


async def test_a_different_payout_waits_for_the_lost_reply_window(
    make_client: MakeClient, chatwars_sim: ChatWarsSimulator
) -> None:
    # After a payout timed out, a *different* payout to the same user is held back until the
    # first's reply can no longer arrive: two payout replies for one user look the same.
    client = await make_client(timeout=0.3, late_reply_grace=0.8)
    user = await link(client, chatwars_sim, 6004)
    chatwars_sim.drop_replies("payout")
    with pytest.raises(ServiceTimeout):
        await client.payout(user, 1, "first")
    loop = asyncio.get_running_loop()
    started = loop.time()
    done = await client.call(Payout(user, 1, "second"), timeout=3)
    assert done == PayoutDone(6004, "second", 1)
    assert loop.time() - started >= 0.4
    # Other users were never held up.
    other = await link(client, chatwars_sim, 6005)
    assert (await client.payout(other, 1, "third")).user_id == 6005


async def test_everything_recovers_after_a_broker_restart(
    make_client: MakeClient, chatwars_sim: ChatWarsSimulator, rabbitmq_broker: Any
) -> None:
    client = await make_client(timeout=5.0)
    deals: list[Deal] = []
    client.add_feed_handler(
        lambda message: deals.append(message) if message.kind == FeedKind.DEALS else None
    )
    user = await link(client, chatwars_sim, 6006)

    await asyncio.to_thread(rabbitmq_broker.restart)
    await chatwars_sim.wait_until(lambda: client.connected, timeout=15)

    assert client.status.feeds == {kind: None for kind in FeedKind}
    done = await client.payout(user, 1, client.new_transaction_id())
    assert done.user_id == 6006
    await chatwars_sim.publish_feed(FeedKind.DEALS)
    await chatwars_sim.wait_until(lambda: len(deals) == 1)
