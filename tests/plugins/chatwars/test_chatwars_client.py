"""The ChatWars client against the simulator over a real RabbitMQ broker."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.errors import NotConnected, ServiceError, ServiceTimeout
from bot_plugins.chatwars import errors
from bot_plugins.chatwars.client import ChatWarsClient
from bot_plugins.chatwars.errors import (
    DuplicateTransaction,
    Forbidden,
    InvalidCode,
    InvalidRequest,
    InvalidToken,
    NoSuchUser,
    OperationRequestPending,
)
from bot_plugins.chatwars.models import (
    AppInfo,
    GrantedToken,
    OperationGranted,
    PaymentAuthorized,
    PaymentDone,
    PayoutDone,
    UserToken,
)
from bot_plugins.chatwars.requests import Payout
from bot_plugins.chatwars.simulator import ChatWarsSimulator

Link = Callable[..., Awaitable[UserToken]]
MakeClient = Callable[..., Awaitable[ChatWarsClient]]


def sent(sim: ChatWarsSimulator, action: str) -> list[dict[str, Any]]:
    return [r for r in sim.world.requests if isinstance(r, dict) and r.get("action") == action]


async def link_with(client: ChatWarsClient, sim: ChatWarsSimulator, user_id: int) -> UserToken:
    """Link through ``client`` itself: a second client on the same app would share (and
    split) its reply queue, as two bots running as one app would."""
    await client.create_auth_code(user_id)
    granted = await client.grant_token(user_id, sim.world.last_code(user_id, "auth"))
    return granted.credentials


# --------------------------------------------------------------------------- linking


async def test_link_flow_gives_token_and_game_id(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator
) -> None:
    sent_code = await chatwars_client.create_auth_code(4242)
    assert sent_code.user_id == 4242
    code = chatwars_sim.world.last_code(4242, "auth")

    granted = await chatwars_client.grant_token(4242, code)

    assert isinstance(granted, GrantedToken)
    assert granted.user_id == 4242
    assert granted.game_id == chatwars_sim.world.users[4242].game_id
    assert len(granted.token) == 32
    assert granted.token not in repr(granted)  # tokens stay out of logs
    # Exactly the document's shapes went out.
    assert sent(chatwars_sim, "createAuthCode") == [
        {"action": "createAuthCode", "payload": {"userId": 4242}}
    ]
    assert sent(chatwars_sim, "grantToken") == [
        {"action": "grantToken", "payload": {"userId": 4242, "authCode": code}}
    ]


async def test_wrong_code_is_invalid_code_and_right_code_still_works(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator
) -> None:
    await chatwars_client.create_auth_code(77)
    with pytest.raises(InvalidCode) as caught:
        await chatwars_client.grant_token(77, "00000x")
    assert caught.value.code == "InvalidCode"
    assert "code" in caught.value.message
    granted = await chatwars_client.grant_token(77, chatwars_sim.world.last_code(77, "auth"))
    assert granted.user_id == 77


async def test_unknown_user_is_no_such_user(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator
) -> None:
    chatwars_sim.world.remove_user(555)
    with pytest.raises(NoSuchUser) as caught:
        await chatwars_client.create_auth_code(555)
    assert caught.value.user_id == 555
    assert isinstance(caught.value, ServiceError) and caught.value.service == "chatwars"


# --------------------------------------------------------------------------- profile/stock


async def test_profile_forbidden_then_approve_then_retry(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    user = await link_user(1001)
    with pytest.raises(Forbidden) as caught:
        await chatwars_client.request_profile(user)
    assert caught.value.required_operation == "GetUserProfile"
    assert "GetUserProfile" in caught.value.message

    asked = await chatwars_client.auth_additional_operation(user, "GetUserProfile")
    assert asked.operation == "GetUserProfile" and asked.user_id == 1001
    assert chatwars_client.pending_operation_request(1001) == asked
    code = chatwars_sim.world.last_code(1001, "operation")

    granted = await chatwars_client.grant_additional_operation(user, asked.request_id, code)
    assert granted == OperationGranted(asked.request_id, 1001)
    assert chatwars_client.pending_operation_request(1001) is None

    profile = await chatwars_client.request_profile(user)
    sim_user = chatwars_sim.world.users[1001]
    assert profile.user_id == 1001
    assert profile.user_name == sim_user.name
    assert profile.level == sim_user.level
    assert profile.castle == sim_user.castle
    assert profile.pouches == sim_user.pouches
    assert sent(chatwars_sim, "grantAdditionalOperation")[0] == {
        "token": user.token,
        "action": "grantAdditionalOperation",
        "payload": {"requestId": asked.request_id, "authCode": code},
    }


async def test_stock_after_grant(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    user = await link_user(1002)
    with pytest.raises(Forbidden) as caught:
        await chatwars_client.request_stock(user)
    assert caught.value.required_operation == "GetStock"
    asked = await chatwars_client.auth_additional_operation(user, "GetStock")
    with pytest.raises(InvalidCode):
        await chatwars_client.grant_additional_operation(user, asked.request_id, "999999x")
    code = chatwars_sim.world.last_code(1002, "operation")
    await chatwars_client.grant_additional_operation(user, asked.request_id, code)

    stock = await chatwars_client.request_stock(user)

    assert stock.items == chatwars_sim.world.users[1002].stock
    assert sent(chatwars_sim, "requestStock")[-1] == {
        "token": user.token,
        "action": "requestStock",
    }


async def test_permission_is_not_asked_twice_within_the_cooldown(
    make_client: MakeClient, chatwars_sim: ChatWarsSimulator
) -> None:
    client = await make_client(operation_cooldown=0.4)
    user = await link_with(client, chatwars_sim, 1003)
    first = await client.auth_additional_operation(user, "GetUserProfile")

    with pytest.raises(OperationRequestPending) as caught:
        await client.auth_additional_operation(user, "GetUserProfile")
    assert caught.value.request == first
    assert caught.value.retry_after > 0
    assert len(sent(chatwars_sim, "authAdditionalOperation")) == 1  # nothing was sent
    # Another operation is a different question.
    await client.auth_additional_operation(user, "GetStock")

    await asyncio.sleep(0.45)
    again = await client.auth_additional_operation(user, "GetUserProfile")
    assert again.request_id != first.request_id
    assert len(sent(chatwars_sim, "authAdditionalOperation")) == 3


async def test_unknown_operation_is_no_such_operation(
    chatwars_client: ChatWarsClient, link_user: Link
) -> None:
    user = await link_user(1004)
    with pytest.raises(errors.NoSuchOperation):
        await chatwars_client.auth_additional_operation(user, "FlyToTheMoon")
    # A refused request did not reach the player, so it does not start the cooldown.
    with pytest.raises(errors.NoSuchOperation):
        await chatwars_client.auth_additional_operation(user, "FlyToTheMoon")


async def test_revoked_token_is_invalid_token(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    user = await link_user(1005, "GetUserProfile")
    chatwars_sim.world.revoke_tokens(1005)
    # The reply is {"result": "InvalidToken", "payload": {"token": ...}} only: matched by token.
    with pytest.raises(InvalidToken) as caught:
        await chatwars_client.request_profile(user)
    assert "link" in caught.value.message
    assert user.token not in caught.value.message


# --------------------------------------------------------------------------- money


async def test_payment_flow_moves_pouches_once(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    world = chatwars_sim.world
    user = await link_user(2001)
    world.users[2001].pouches = 12
    balance = world.balance
    txid = chatwars_client.new_transaction_id()

    held = await chatwars_client.authorize_payment(user, 5, txid)
    assert held == PaymentAuthorized(2001, txid, 5, fee_gold=4, debit_gold=496)
    code = world.last_code(2001, "payment")
    with pytest.raises(errors.AuthorizationFailed):
        await chatwars_client.pay(user, 5, "0000", txid)
    done = await chatwars_client.pay(user, 5, code, txid)

    assert done == PaymentDone(2001, txid, 5, fee_gold=4, debit_gold=496)
    assert world.users[2001].pouches == 7
    assert world.balance == balance + 496
    assert [t.transaction_id for t in world.payments] == [txid]
    # Paying again with the same id is refused and changes nothing.
    with pytest.raises(DuplicateTransaction):
        await chatwars_client.pay(user, 5, code, txid)
    assert world.users[2001].pouches == 7 and len(world.payments) == 1
    assert sent(chatwars_sim, "pay")[-1] == {
        "token": user.token,
        "action": "pay",
        "payload": {"amount": {"pouches": 5}, "confirmationCode": code, "transactionId": txid},
    }


async def test_payment_beyond_the_players_pouches_is_refused(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    user = await link_user(2002)
    chatwars_sim.world.users[2002].pouches = 2
    with pytest.raises(errors.InsufficientFunds) as caught:
        await chatwars_client.authorize_payment(user, 3, chatwars_client.new_transaction_id())
    assert caught.value.message.startswith("You do not have enough gold pouches")


async def test_payout_escapes_the_message_and_pays_once(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    world = chatwars_sim.world
    user = await link_user(2003)
    before_user, before_balance = world.users[2003].pouches, world.balance
    txid = chatwars_client.new_transaction_id()

    done = await chatwars_client.payout(user, 3, txid, "You won <b>3</b> pouches & glory 💰")

    assert done == PayoutDone(2003, txid, 3)
    assert world.users[2003].pouches == before_user + 3
    assert world.balance == before_balance - 300
    assert sent(chatwars_sim, "payout")[-1] == {
        "token": user.token,
        "action": "payout",
        "payload": {
            "transactionId": txid,
            "amount": {"pouches": 3},
            "message": "You won &lt;b&gt;3&lt;/b&gt; pouches &amp; glory 💰",
        },
    }
    with pytest.raises(DuplicateTransaction) as caught:
        await chatwars_client.payout(user, 3, txid, "again")
    assert "not carried out twice" in caught.value.message
    assert len(world.payouts) == 1 and world.balance == before_balance - 300


async def test_payout_beyond_the_app_balance_is_refused(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    user = await link_user(2004)
    chatwars_sim.world.balance = 250
    with pytest.raises(errors.InsufficientFunds) as caught:
        await chatwars_client.payout(user, 3, chatwars_client.new_transaction_id())
    assert "bot's ChatWars balance" in caught.value.message
    assert chatwars_sim.world.payouts == [] and chatwars_sim.world.balance == 250


async def test_get_info_reports_the_balance(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator
) -> None:
    chatwars_sim.world.balance = 31337
    assert await chatwars_client.get_info() == AppInfo(balance=31337)
    assert sent(chatwars_sim, "getInfo") == [{"action": "getInfo"}]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda c, u: c.create_auth_code(0), "positive whole number"),
        (lambda c, u: c.create_auth_code(True), "positive whole number"),
        (lambda c, u: c.grant_token(5, "12 34"), "letters and digits"),
        (lambda c, u: c.payout(u, 0, "tx-1"), "at least one"),
        (lambda c, u: c.payout(u, -3, "tx-1"), "at least one"),
        (lambda c, u: c.payout(u, 2.5, "tx-1"), "whole number"),
        (lambda c, u: c.payout(u, 10**9, "tx-1"), "at most"),
        (lambda c, u: c.payout(u, 1, "tx 1"), "transaction id"),
        (lambda c, u: c.payout(u, 1, ""), "transaction id"),
        (lambda c, u: c.payout(u, 1, "tx-1", "x" * 101), "too long"),
        (lambda c, u: c.payout(u, 1, "tx-1", "<" * 30), "too long"),  # 120 after escaping
        (lambda c, u: c.payout(u, 1, "tx-1", "a\x00b"), "control characters"),
        (lambda c, u: c.pay(u, 1, "", "tx-1"), "confirmation code"),
        (lambda c, u: c.auth_additional_operation(u, "Get Stock"), "operation name"),
        (lambda c, u: c.request_profile(UserToken(5, "bad token")), "link your account"),
    ],
)
async def test_bad_input_is_refused_before_sending(
    chatwars_client: ChatWarsClient,
    chatwars_sim: ChatWarsSimulator,
    call: Callable[[ChatWarsClient, UserToken], Awaitable[Any]],
    needle: str,
) -> None:
    user = UserToken(5, "0123456789abcdef0123456789abcdef")
    with pytest.raises(InvalidRequest) as caught:
        await call(chatwars_client, user)
    assert needle in caught.value.message
    assert caught.value.code is None
    await asyncio.sleep(0.05)
    assert chatwars_sim.world.requests == []


async def test_payout_message_of_exactly_100_symbols_is_accepted(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    user = await link_user(2005)
    await chatwars_client.payout(user, 1, chatwars_client.new_transaction_id(), "&" * 20)
    assert sent(chatwars_sim, "payout")[-1]["payload"]["message"] == "&amp;" * 20


# --------------------------------------------------------------------------- result codes

ALL_RESULTS = [
    "BadAmount",
    "BadCurrency",
    "BadFormat",
    "ActionNotFound",
    "NoSuchUser",
    "NotRegistered",
    "InvalidCode",
    "TryAgain",
    "AuthorizationFailed",
    "InsufficientFunds",
    "InvalidToken",
    "Forbidden",
    "NoSuchOperation",
    "LevelIsLow",
    "NotInGuild",
    "NoOffersFoundByPrice",
    "UserIsBusy",
    "BattleIsNear",
    "DuplicateTransaction",
]


async def test_every_result_code_becomes_its_typed_error_with_a_chat_message(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    user = await link_user(3001, "GetUserProfile")
    messages = set()
    for result in ALL_RESULTS:
        chatwars_sim.world.inject(result, action="requestProfile", user_id=3001)
        with pytest.raises(errors.ResultError) as caught:
            await chatwars_client.request_profile(user)
        error = caught.value
        assert type(error) is errors.RESULT_ERRORS[result], result
        assert error.code == result
        assert error.service == "chatwars"
        assert error.message.endswith(".") and error.message[0].isupper(), error.message
        assert user.token not in error.message
        messages.add(error.message)
    assert len(messages) == len(ALL_RESULTS)  # each code says something of its own
    # And the client is still in step: the next call gets its own, Ok reply.
    assert (await chatwars_client.request_profile(user)).user_id == 3001


async def test_an_unknown_result_code_is_reported_not_crashed(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    user = await link_user(3002, "GetStock")
    chatwars_sim.world.inject("Overheated<script>", action="requestStock")
    with pytest.raises(errors.UnknownResult) as caught:
        await chatwars_client.request_stock(user)
    assert caught.value.message == "ChatWars refused the request (Overheatedscript)."


async def test_not_registered_app(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator
) -> None:
    chatwars_sim.world.registered = False
    with pytest.raises(errors.NotRegistered):
        await chatwars_client.get_info()


# --------------------------------------------------------------------------- concurrency


async def test_fifty_users_at_once_never_get_each_others_replies(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator
) -> None:
    world = chatwars_sim.world
    ids = list(range(10_000, 10_050))

    async def one_user(user_id: int) -> tuple[int, Any, Any, Any]:
        await chatwars_client.create_auth_code(user_id)
        granted = await chatwars_client.grant_token(user_id, world.last_code(user_id, "auth"))
        world.grant_operation(user_id, "GetUserProfile")
        world.grant_operation(user_id, "GetStock")
        user = granted.credentials
        profile, stock, payout = await asyncio.gather(
            chatwars_client.request_profile(user),
            chatwars_client.request_stock(user),
            chatwars_client.payout(user, 1, f"tx-{user_id}", f"hi {user_id}"),
        )
        return user_id, granted, (profile, stock), payout

    results = await asyncio.gather(*(one_user(i) for i in ids))

    tokens = set()
    for user_id, granted, (profile, stock), payout in results:
        sim_user = world.users[user_id]
        assert granted.user_id == user_id and granted.game_id == sim_user.game_id
        tokens.add(granted.token)
        assert profile.user_id == user_id and profile.user_name == sim_user.name
        assert stock.user_id == user_id and stock.items == sim_user.stock
        assert payout == PayoutDone(user_id, f"tx-{user_id}", 1)
    assert len(tokens) == 50
    assert sorted(t.user_id for t in world.payouts) == ids
    assert all(world.messages[i] == [f"hi {i}"] for i in ids)


async def test_one_users_payouts_are_serialised_and_each_gets_its_own_result(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Link
) -> None:
    user = await link_user(4001)
    chatwars_sim.world.balance = 500  # room for 5 pouches: two of these three payouts fit
    outcomes = await asyncio.gather(
        chatwars_client.payout(user, 2, "p-1"),
        chatwars_client.payout(user, 2, "p-2"),
        chatwars_client.payout(user, 2, "p-3"),
        return_exceptions=True,
    )
    assert outcomes[:2] == [PayoutDone(4001, "p-1", 2), PayoutDone(4001, "p-2", 2)]
    assert isinstance(outcomes[2], errors.InsufficientFunds)
    assert [t.transaction_id for t in chatwars_sim.world.payouts] == ["p-1", "p-2"]


async def test_rate_limit_spreads_requests_over_time(make_client: MakeClient) -> None:
    client = await make_client(max_rate=10.0)
    started = time.monotonic()
    await asyncio.gather(*(client.create_auth_code(20_000 + i) for i in range(14)))
    # Ten fit in the first second; the other four wait for the window to move.
    assert time.monotonic() - started >= 0.95


# --------------------------------------------------------------------------- timeouts


async def test_no_reply_times_out_and_the_late_reply_is_not_given_to_the_next_call(
    make_client: MakeClient, chatwars_sim: ChatWarsSimulator
) -> None:
    client = await make_client(timeout=0.4)
    late: list[tuple[str, Any]] = []
    client.add_late_reply_handler(lambda request, outcome: late.append((request.action, outcome)))
    user = await link_with(client, chatwars_sim, 5001)
    chatwars_sim.world.balance = 100  # one pouch only
    chatwars_sim.hold_replies()
    with pytest.raises(ServiceTimeout) as caught:
        await client.payout(user, 1, "late-1")
    assert caught.value.code == "Timeout" and "0.4 seconds" in caught.value.message

    # A second payout for the same user waits: its reply could not be told from the first's.
    second = asyncio.create_task(client.call(Payout(user, 1, "late-2"), timeout=5))
    await asyncio.sleep(0.2)
    assert len(sent(chatwars_sim, "payout")) == 1
    chatwars_sim.release_replies()

    # The late Ok went to the first call's late-reply handler; the second was then sent and
    # got its own answer: the app balance only had room for one pouch.
    with pytest.raises(errors.InsufficientFunds):
        await second
    await chatwars_sim.wait_until(lambda: bool(late))
    assert late == [("payout", PayoutDone(5001, "late-1", 1))]
    assert [t.transaction_id for t in chatwars_sim.world.payouts] == ["late-1"]


async def test_a_malformed_reply_is_dropped_and_the_consumer_goes_on(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, caplog: Any
) -> None:
    await chatwars_sim.publish_raw_reply(b"{not json")
    await chatwars_sim.publish_raw_reply(json.dumps({"result": 5}).encode())
    await chatwars_sim.publish_raw_reply(json.dumps({"action": "getInfo"}).encode())
    await chatwars_sim.publish_raw_reply(
        b'{"action":"payout","result":"Ok","payload":{"userId":1}}'
    )
    chatwars_sim.world.balance = 99
    assert (await chatwars_client.get_info()).balance == 99
    assert "malformed reply" in caplog.text
    assert "answers no waiting request" in caplog.text


# --------------------------------------------------------------------------- connection


async def test_test_mode_uses_the_test_queues(
    make_client: MakeClient, chatwars_sim: ChatWarsSimulator
) -> None:
    client = await make_client(test_mode=True)
    assert client.routing.routing_key.endswith("_to")
    assert client.routing.inbound_queue.endswith("_ti")
    chatwars_sim.world.balance = 4242
    assert (await client.get_info()).balance == 4242


async def test_unreachable_broker_is_reported_with_a_reason_and_calls_fail_fast(
    make_client: MakeClient, chatwars_app_password: str
) -> None:
    password = chatwars_app_password
    client = await make_client(amqp_url=f"amqp://cwapp:{password}@127.0.0.1:9/")
    status = client.status
    assert not status.connected
    assert "cannot reach the broker at amqp://127.0.0.1:9/" in (status.reason or "")
    assert password not in repr(status)
    started = time.monotonic()
    with pytest.raises(NotConnected) as caught:
        await client.get_info()
    assert time.monotonic() - started < 0.5
    assert password not in caught.value.message
    assert "not reachable" in caught.value.message


async def test_wrong_password_is_reported_without_the_password(
    make_client: MakeClient, rabbitmq_broker: Any, chatwars_app_password: str
) -> None:
    wrong = f"wrong-{chatwars_app_password}"
    host, port = rabbitmq_broker.host, rabbitmq_broker.port
    client = await make_client(amqp_url=f"amqp://cwapp:{wrong}@{host}:{port}/")
    assert not client.connected
    assert "refused the login" in (client.status.reason or "")
    assert wrong not in (client.status.reason or "")


async def test_the_client_never_declares_anything(
    make_client: MakeClient, rabbitmq_broker: Any
) -> None:
    # No simulator for this app: its queues do not exist, and the client must not create them.
    client = await make_client(app="nobody-made-me")
    assert not client.connected
    assert "does not exist" in (client.status.reason or "")
    queues = await asyncio.to_thread(rabbitmq_broker.queue_depths)
    assert not any(name.startswith("nobody-made-me") for name in queues)
