"""The pieces without a broker: reply matching, the rate cap, request rules, config."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from bot_plugins.chatwars.config import ChatWarsConfig
from bot_plugins.chatwars.correlation import Correlator
from bot_plugins.chatwars.errors import Forbidden, InvalidRequest, ProtocolError
from bot_plugins.chatwars.feeds import FeedKind
from bot_plugins.chatwars.models import UserToken
from bot_plugins.chatwars.ratelimit import SlidingWindowLimiter
from bot_plugins.chatwars.redelivery import RecentMessages
from bot_plugins.chatwars.requests import (
    AuthAdditionalOperation,
    GetInfo,
    Payout,
    Reply,
    RequestProfile,
    RequestStock,
    payout_message,
)

ALICE = UserToken(1, "a" * 32)
BOB = UserToken(2, "b" * 32)


def reply(**data: Any) -> Reply:
    return Reply.from_body(json.dumps(data))


# --------------------------------------------------------------------------- correlation


async def test_replies_match_by_action_and_user() -> None:
    table = Correlator()
    alice = table.add(RequestProfile(ALICE))
    bob = table.add(RequestProfile(BOB))
    bob_stock = table.add(RequestStock(BOB))
    assert table.match(reply(action="requestStock", result="Ok", payload={"userId": 2})) is (
        bob_stock
    )
    assert table.match(reply(action="requestProfile", result="Ok", payload={"userId": 2})) is bob
    assert table.match(reply(action="requestProfile", result="Ok", payload={"userId": 1})) is (
        alice
    )
    assert len(table) == 0


async def test_replies_without_action_or_user_fall_back_to_token() -> None:
    table = Correlator()
    alice = table.add(RequestProfile(ALICE))
    bob = table.add(RequestProfile(BOB))
    invalid = reply(result="InvalidToken", payload={"token": BOB.token})
    assert table.match(invalid) is bob
    asked = table.add(AuthAdditionalOperation(ALICE, "GetStock"))
    # authAdditionalOperation replies have no action: the user id still finds it... but the
    # oldest request of that user wins, and that is the profile request. Hence one request
    # per user in flight (Correlator.serial).
    no_action = reply(uuid="x", result="Ok", payload={"operation": "GetStock", "userId": 1})
    assert table.match(no_action) is alice
    assert table.match(no_action) is asked


async def test_user_id_as_string_and_app_level_replies() -> None:
    table = Correlator()
    info = table.add(GetInfo())
    profile = table.add(RequestProfile(ALICE))
    assert table.match(reply(action="requestProfile", result="Ok", payload={"userId": "1"})) is (
        profile
    )
    assert table.match(reply(action="getInfo", result="Ok", payload={"balance": 1})) is info


async def test_stray_replies_match_nothing() -> None:
    table = Correlator()
    table.add(RequestProfile(ALICE))
    assert table.match(reply(action="requestProfile", result="Ok", payload={"userId": 9})) is None
    assert table.match(reply(action="payout", result="Ok", payload={"userId": 1})) is None
    assert table.match(reply(result="BadFormat", payload={})) is None
    assert len(table) == 1


async def test_a_ghost_takes_its_late_reply_and_expires() -> None:
    now = [0.0]
    table = Correlator(grace=10, clock=lambda: now[0])
    first = table.add(Payout(ALICE, 1, "one"))
    table.abandon(first)
    assert table.ghosts == 1 and len(table) == 0
    second = table.add(Payout(ALICE, 1, "two"))
    ok = reply(action="payout", result="Ok", payload={"userId": 1})
    assert table.match(ok) is first  # the late reply, not the second's
    assert table.match(ok) is second
    ghost = table.add(Payout(ALICE, 1, "three"))
    table.abandon(ghost)
    now[0] = 11
    assert table.match(ok) is None and table.ghosts == 0


async def test_a_retry_of_the_same_transaction_takes_the_first_reply() -> None:
    table = Correlator()
    first = table.add(Payout(ALICE, 1, "same"))
    table.abandon(first)
    retry = table.add(Payout(ALICE, 1, "same"))
    ok = reply(action="payout", result="Ok", payload={"userId": 1})
    assert table.match(ok) is retry
    assert table.match(ok) is first


async def test_money_ghosts_hold_back_other_payouts_of_that_user_only() -> None:
    table = Correlator(grace=5)
    ghost = table.add(Payout(ALICE, 1, "lost"))
    table.abandon(ghost)
    order: list[str] = []

    async def send(request: Any, name: str) -> None:
        async with table.serial(request):
            order.append(name)

    other_payout = asyncio.create_task(send(Payout(ALICE, 1, "other"), "alice-other"))
    same_tx = asyncio.create_task(send(Payout(ALICE, 1, "lost"), "alice-retry"))
    read = asyncio.create_task(send(RequestProfile(ALICE), "alice-profile"))
    bob = asyncio.create_task(send(Payout(BOB, 1, "x"), "bob"))
    await asyncio.sleep(0.05)
    assert "alice-other" not in order
    assert {"bob"} <= set(order)
    table.match(reply(action="payout", result="Ok", payload={"userId": 1}))
    await asyncio.wait_for(asyncio.gather(other_payout, same_tx, read, bob), 1)
    assert set(order) == {"alice-other", "alice-retry", "alice-profile", "bob"}


# --------------------------------------------------------------------------- rate cap


async def test_no_window_holds_more_than_the_limit() -> None:
    limiter = SlidingWindowLimiter(rate=20, period=0.1)  # 2 per 0.1 s
    loop = asyncio.get_running_loop()
    stamps = []
    for _ in range(6):
        await limiter.acquire()
        stamps.append(loop.time())
    for i in range(2, len(stamps)):
        assert stamps[i] - stamps[i - 2] >= 0.099
    assert stamps[-1] - stamps[0] >= 0.2


# --------------------------------------------------------------------------- requests


def test_bodies_follow_the_document() -> None:
    assert GetInfo().body() == {"action": "getInfo"}
    assert RequestProfile(ALICE).body() == {"token": ALICE.token, "action": "requestProfile"}
    assert AuthAdditionalOperation(ALICE, "GetStock").body() == {
        "token": ALICE.token,
        "action": "authAdditionalOperation",
        "payload": {"operation": "GetStock"},
    }


def test_payout_message_is_escaped_and_counted_after_escaping() -> None:
    assert payout_message("  a <b> & c  ") == "a &lt;b&gt; &amp; c"
    assert payout_message('quote " stays') == 'quote " stays'
    assert len(payout_message("x" * 100)) == 100
    with pytest.raises(InvalidRequest):
        payout_message("x" * 96 + "&")  # 100 characters, 104 once escaped
    with pytest.raises(InvalidRequest):
        payout_message("💰" * 51)  # 102 UTF-16 units
    assert payout_message("💰" * 50) == "💰" * 50


def test_tokens_and_codes_stay_out_of_repr() -> None:
    assert ALICE.token not in repr(ALICE)
    assert ALICE.token not in repr(Payout(ALICE, 1, "t"))


def test_reply_parsing_is_tolerant() -> None:
    bare = reply(result="Ok")
    assert bare.payload == {} and bare.action is None and bare.user_id is None
    assert reply(result="Ok", payload={"userId": "x"}).user_id is None
    for body in (b"[]", b'{"action": "x"}', b'{"result": "Ok", "payload": "x"}', b"\xff"):
        with pytest.raises(ValueError):
            Reply.from_body(body)


def test_an_ok_reply_missing_fields_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError) as caught:
        GetInfo().parse(reply(action="getInfo", result="Ok", payload={}))
    assert "could not read" in caught.value.message
    with pytest.raises(ProtocolError):
        RequestStock(ALICE).parse(
            reply(action="requestStock", result="Ok", payload={"stock": {"Bone": "many"}})
        )


def test_forbidden_names_the_operation_safely() -> None:
    with pytest.raises(Forbidden) as caught:
        RequestProfile(ALICE).parse(
            reply(result="Forbidden", payload={"requiredOperation": "Get<b>Profile", "userId": 1})
        )
    assert caught.value.required_operation == "Get<b>Profile"
    assert (
        caught.value.message == "The bot needs your permission in ChatWars for this (GetbProfile)."
    )


# --------------------------------------------------------------------------- config


def test_config_defaults_and_client() -> None:
    config = ChatWarsConfig(app="dices", amqp_url="amqps://dices:pw@api.chatwars.me:5673/")
    # The AMQP default: the document's four feeds (an app's queue exists only on request).
    assert config.feeds.source == "amqp" and config.feeds.selected == list(FeedKind)[:4]
    client = config.new_client()
    assert list(client.status.feeds) == list(FeedKind)[:4]
    assert client.routing.exchange == "dices_ex" and client.routing.routing_key == "dices_o"
    assert "pw" not in client.status.broker
    assert "pw" not in repr(config)
    simulated = ChatWarsConfig(simulate=True)
    assert simulated.app_name == "demo"
    assert simulated.new_simulator().app == "demo"
    assert ChatWarsConfig(app="dices", test_mode=True).new_client().routing.inbound_queue == (
        "dices_ti"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"app": "x", "amqp_url": "http://host/"}, "not an amqp:// or amqps:// URL"),
        ({"app": "x", "amqp_url": "amqp://h:99999/"}, "port"),
        ({"app": "two words"}, "app name"),
        ({}, "app is required"),
        ({"app": "x", "feeds": ["deals", "gossip"]}, "unknown feed 'gossip'"),
        ({"app": "x", "max_requests_per_second": 100}, "less than or equal to 30"),
        ({"app": "x", "timeout": 0}, "greater than 0"),
        ({"app": "x", "colour": "red"}, "Extra inputs"),
        ({"app": "x", "simulator": {"feed_interval": -1}}, "greater than or equal to 0"),
    ],
)
def test_config_errors_are_clear(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChatWarsConfig(**data)
    assert message in str(caught.value)


def test_config_errors_never_show_the_url() -> None:
    with pytest.raises(ValidationError) as caught:
        ChatWarsConfig(app="x", amqp_url="ftp://dices:topsecret@host/")
    assert "topsecret" not in str(caught.value)


def test_only_redelivered_copies_of_handled_messages_are_repeats() -> None:
    seen = RecentMessages(size=2)
    assert not seen.is_repeat(b"a", redelivered=False)
    assert not seen.is_repeat(b"a", redelivered=False)  # an equal, new message
    assert seen.is_repeat(b"a", redelivered=True)
    assert not seen.is_repeat(b"b", redelivered=True)  # never handled: handle it
    seen.is_repeat(b"c", redelivered=False)
    assert not seen.is_repeat(b"a", redelivered=True)  # forgotten after `size` others
