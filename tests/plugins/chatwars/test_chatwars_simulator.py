"""The simulator on the wire, seen by a bare AMQP app (not our client): exact shapes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from bot.simulation import Simulator
from bot_plugins.chatwars.feeds import FeedKind
from bot_plugins.chatwars.routing import Routing
from bot_plugins.chatwars.simulator import ChatWarsSimulator, simulator_from_args


class RawApp:
    """Publishes requests and reads replies the way the API document describes, by hand."""

    def __init__(self, url: str, app: str, test_mode: bool = False) -> None:
        self.url, self.routing = url, Routing(app, test_mode)
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def __aenter__(self) -> RawApp:
        self.connection = await aio_pika.connect(self.url)
        channel = await self.connection.channel()
        self.exchange = await channel.get_exchange(self.routing.exchange, ensure=False)
        queue = await channel.get_queue(self.routing.inbound_queue, ensure=False)

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                await self.replies.put(json.loads(message.body))

        await queue.consume(on_reply)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()

    async def ask(self, request: dict[str, Any] | bytes) -> dict[str, Any]:
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        await self.exchange.publish(aio_pika.Message(body), routing_key=self.routing.routing_key)
        return await asyncio.wait_for(self.replies.get(), 5)


@pytest.fixture
async def raw(chatwars_app_url: str, chatwars_sim: ChatWarsSimulator) -> AsyncIterator[RawApp]:
    async with RawApp(chatwars_app_url, chatwars_sim.app) as app:
        yield app


async def linked(raw: RawApp, sim: ChatWarsSimulator, user_id: int) -> str:
    await raw.ask({"action": "createAuthCode", "payload": {"userId": user_id}})
    code = sim.world.last_code(user_id, "auth")
    reply = await raw.ask(
        {"action": "grantToken", "payload": {"userId": user_id, "authCode": code}}
    )
    return str(reply["payload"]["token"])


async def test_link_replies_have_the_documents_shapes(
    raw: RawApp, chatwars_sim: ChatWarsSimulator
) -> None:
    reply = await raw.ask({"action": "createAuthCode", "payload": {"userId": 1234567}})
    assert set(reply) == {"uuid", "action", "result", "payload"}
    assert len(reply["uuid"]) == 20
    assert reply["action"] == "createAuthCode" and reply["result"] == "Ok"
    assert reply["payload"] == {"userId": 1234567}
    code = chatwars_sim.world.last_code(1234567, "auth")
    assert len(code) == 5 and code.isdigit()

    reply = await raw.ask(
        {"action": "grantToken", "payload": {"userId": 1234567, "authCode": code}}
    )
    assert reply["result"] == "Ok" and reply["action"] == "grantToken"
    assert set(reply["payload"]) == {"userId", "id", "token"}
    assert reply["payload"]["id"] == chatwars_sim.world.users[1234567].game_id
    # A code works once.
    again = await raw.ask(
        {"action": "grantToken", "payload": {"userId": 1234567, "authCode": code}}
    )
    assert again["result"] == "InvalidCode"


async def test_operation_replies_have_the_observed_shapes(
    raw: RawApp, chatwars_sim: ChatWarsSimulator
) -> None:
    token = await linked(raw, chatwars_sim, 11)
    forbidden = await raw.ask({"token": token, "action": "requestProfile"})
    assert forbidden["result"] == "Forbidden"
    assert forbidden["payload"] == {"requiredOperation": "GetUserProfile", "userId": 11}

    asked = await raw.ask(
        {
            "token": token,
            "action": "authAdditionalOperation",
            "payload": {"operation": "GetUserProfile"},
        }
    )
    # The real reply names its action (all three public clients dispatch on it).
    assert asked["action"] == "authAdditionalOperation"
    assert set(asked) == {"uuid", "action", "result", "payload"}
    assert asked["payload"] == {"operation": "GetUserProfile", "userId": 11}
    code = chatwars_sim.world.last_code(11, "operation")
    assert chatwars_sim.world.codes_sent(11, "operation")[-1].request_id == asked["uuid"]

    granted = await raw.ask(
        {
            "token": token,
            "action": "grantAdditionalOperation",
            "payload": {"requestId": asked["uuid"], "authCode": code},
        }
    )
    assert granted == {
        "action": "grantAdditionalOperation",
        "result": "Ok",
        "payload": {"requestId": asked["uuid"], "userId": 11},
    }
    profile = await raw.ask({"token": token, "action": "requestProfile"})
    assert set(profile) == {"action", "result", "payload"}
    assert set(profile["payload"]["profile"]) == {
        "atk", "castle", "class", "def", "exp", "gold", "guild", "lvl", "mana", "pouches",
        "stamina", "userName",
        # beyond the document, as Cactiw's bot and go-chatwars-api read them
        "guild_tag", "hp", "maxHp",
    }  # fmt: skip


async def test_invalid_token_reply_is_bare(raw: RawApp) -> None:
    reply = await raw.ask({"token": "nope", "action": "requestStock"})
    assert reply == {"result": "InvalidToken", "payload": {"token": "nope"}}


async def test_get_info_and_bad_requests(raw: RawApp, chatwars_sim: ChatWarsSimulator) -> None:
    chatwars_sim.world.balance = 1231242
    assert await raw.ask({"action": "getInfo"}) == {
        "action": "getInfo",
        "result": "Ok",
        "payload": {"balance": 1231242},
    }
    assert await raw.ask(b"{oops") == {"result": "BadFormat", "payload": {}}
    assert (await raw.ask({"action": "fly"}))["result"] == "ActionNotFound"
    bad = await raw.ask({"action": "createAuthCode", "payload": {"userId": "12"}})
    assert bad["result"] == "BadFormat"


async def test_payment_and_payout_rules(raw: RawApp, chatwars_sim: ChatWarsSimulator) -> None:
    world = chatwars_sim.world
    token = await linked(raw, chatwars_sim, 12)
    world.users[12].pouches = 10

    async def authorize(amount: dict[str, Any], txid: str = "t1") -> dict[str, Any]:
        payload = {"amount": amount, "transactionId": txid}
        return await raw.ask({"token": token, "action": "authorizePayment", "payload": payload})

    assert (await authorize({"gold": 5}))["result"] == "BadCurrency"
    assert (await authorize({"pouches": 0}))["result"] == "BadAmount"
    assert (await authorize({"pouches": 11}))["result"] == "InsufficientFunds"
    held = await authorize({"pouches": 5})
    assert held["payload"] == {
        "fee": {"gold": 4},
        "debit": {"gold": 496},
        "userId": 12,
        "transactionId": "t1",  # as go-chatwars-api reads it
    }
    assert (await authorize({"pouches": 5}))["result"] == "DuplicateTransaction"
    # The hold counts: only 5 of the 10 pouches are still free.
    assert (await authorize({"pouches": 6}, "t2"))["result"] == "InsufficientFunds"

    code = world.last_code(12, "payment")
    pay = {"amount": {"pouches": 5}, "confirmationCode": code, "transactionId": "t1"}
    paid = await raw.ask({"token": token, "action": "pay", "payload": pay})
    assert paid["token"] == token and paid["action"] == "pay" and paid["result"] == "Ok"
    assert paid["payload"]["transactionId"] == "t1"
    again = await raw.ask({"token": token, "action": "pay", "payload": pay})
    assert again["result"] == "DuplicateTransaction"
    assert again["payload"] == {"transactionId": "t1", "userId": 12}
    assert len(world.payments) == 1 and world.users[12].pouches == 5

    payout = {"transactionId": "t1", "amount": {"pouches": 1}, "message": "hi"}
    used = await raw.ask({"token": token, "action": "payout", "payload": payout})
    assert used["result"] == "DuplicateTransaction"  # ids are unique across both kinds
    long = {"transactionId": "t3", "amount": {"pouches": 1}, "message": "x" * 101}
    assert (await raw.ask({"token": token, "action": "payout", "payload": long}))[
        "result"
    ] == "BadFormat"
    assert world.payouts == []


async def test_an_authorization_expires(raw: RawApp, chatwars_sim: ChatWarsSimulator) -> None:
    world = chatwars_sim.world
    world.payment_ttl = 0.05
    token = await linked(raw, chatwars_sim, 13)
    hold = {"amount": {"pouches": 1}, "transactionId": "e1"}
    await raw.ask({"token": token, "action": "authorizePayment", "payload": hold})
    await asyncio.sleep(0.1)
    pay = {**hold, "confirmationCode": world.last_code(13, "payment")}
    expired = await raw.ask({"token": token, "action": "pay", "payload": pay})
    assert expired["result"] == "AuthorizationFailed"
    assert world.payments == []


async def test_test_mode_queues_are_served(
    chatwars_app_url: str, chatwars_sim: ChatWarsSimulator
) -> None:
    async with RawApp(chatwars_app_url, chatwars_sim.app, test_mode=True) as app:
        reply = await app.ask({"action": "getInfo"})
    assert reply["result"] == "Ok"


async def test_a_redelivered_request_is_not_done_twice(
    raw: RawApp, chatwars_sim: ChatWarsSimulator, rabbitmq_broker: Any
) -> None:
    world = chatwars_sim.world
    token = await linked(raw, chatwars_sim, 14)
    chatwars_sim.hold_replies()
    payout = {"transactionId": "r1", "amount": {"pouches": 2}, "message": ""}
    await raw.exchange.publish(
        aio_pika.Message(
            json.dumps({"token": token, "action": "payout", "payload": payout}).encode()
        ),
        routing_key=raw.routing.routing_key,
    )
    await chatwars_sim.wait_until(lambda: len(world.payouts) == 1)
    # The simulator's connection drops with the request unacknowledged: the broker will hand
    # it out again. (Our raw app loses its connection too; read the reply with a new one.)
    await asyncio.to_thread(rabbitmq_broker.close_all_connections)
    chatwars_sim.release_replies()
    async with RawApp(raw.url, chatwars_sim.app) as again:
        reply = await asyncio.wait_for(again.replies.get(), 10)
        assert reply["result"] == "Ok" and reply["action"] == "payout"
        await asyncio.sleep(0.5)
        assert again.replies.empty()  # one reply, not two
    assert len(world.payouts) == 1


async def test_injected_results_and_dropped_replies(
    raw: RawApp, chatwars_sim: ChatWarsSimulator
) -> None:
    chatwars_sim.world.inject("BattleIsNear", action="getInfo")
    assert (await raw.ask({"action": "getInfo"}))["result"] == "BattleIsNear"
    assert (await raw.ask({"action": "getInfo"}))["result"] == "Ok"
    chatwars_sim.drop_replies("getInfo")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(raw.ask({"action": "getInfo"}), 0.3)


def test_simulator_from_args() -> None:
    sim = simulator_from_args(
        ["--port", "5999", "--app", "dices", "--seed", "9", "--balance", "77", "--grant-all"]
    )
    assert isinstance(sim, Simulator)
    assert sim.url == "amqp://guest:guest@127.0.0.1:5999/"
    assert sim.app == "dices" and sim.world.balance == 77
    assert "GetStock" in sim.world.initial_operations
    assert sim.feed_interval == 5.0
    tls = simulator_from_args(
        ["--tls", "--host", "h", "--user", "a b", "--vhost", "v", "--feed-interval", "0"]
    )
    assert tls.url == "amqps://a%20b:guest@h:5672/v" and tls.feed_interval is None
    for bad in (["--port", "0"], ["--app", "no spaces"], ["--port", "x"]):
        with pytest.raises(SystemExit):
            simulator_from_args(bad)


async def test_feed_exchanges_fan_out_to_the_apps_queue(
    rabbitmq_url: str, chatwars_sim: ChatWarsSimulator
) -> None:
    async with await aio_pika.connect(rabbitmq_url) as connection:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{chatwars_sim.app}_yellow_pages", ensure=False)
        payload = await chatwars_sim.publish_feed(FeedKind.YELLOW_PAGES)
        for _ in range(50):
            message = await queue.get(fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.02)
        assert message is not None
        await message.ack()
        assert json.loads(message.body) == payload
