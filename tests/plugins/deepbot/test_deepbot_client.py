"""The DeepBot client against the simulator over a real websocket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.errors import NotConnected, ServiceError, ServiceTimeout
from bot_plugins.deepbot import protocol
from bot_plugins.deepbot.client import ConnectionState, DeepBotClient
from bot_plugins.deepbot.errors import (
    AuthenticationFailed,
    ConnectionLost,
    DeepBotError,
    DeepBotNotConnected,
    DeepBotTimeout,
    InvalidArgument,
    InvalidPoints,
    InvalidVipLength,
    InvalidVipLevel,
    NoPointsInEscrow,
    NotAuthorized,
    NotEnoughPoints,
    OperationFailed,
    UnexpectedReply,
    UserNotFound,
)
from bot_plugins.deepbot.models import ModLevel, VipLevel
from bot_plugins.deepbot.simulator import DeepBotSimulator, SimUser

Factory = Callable[..., Awaitable[DeepBotClient]]


async def eventually(condition: Callable[[], bool], within: float = 2.0) -> None:
    """Wait for a condition the code under test reaches on its own schedule."""
    for _ in range(int(within / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in time")


# --- reading ---------------------------------------------------------------------------------


async def test_get_user_is_typed_with_parsed_timestamps(deepbot_client: DeepBotClient) -> None:
    user = await deepbot_client.get_user("ExpertsOnline")
    assert user.name == "expertsonline"
    assert user.points == Decimal("720")
    assert user.watch_minutes == Decimal("13125")
    assert user.hours == Decimal("218.75")
    assert user.vip_level is VipLevel.NORMAL and not user.is_vip
    assert user.mod_level is ModLevel.STREAMER
    assert user.join_date == datetime(2014, 7, 5, 18, 9, 10, 315608, tzinfo=UTC)
    assert user.last_seen == datetime(2015, 3, 1, 4, 17, 9, 545139, tzinfo=UTC)
    assert user.vip_expiry is not None
    assert user.vip_expiry.utcoffset() == timedelta(hours=8)
    assert user.vip_expiry == datetime(2014, 12, 8, 16, tzinfo=UTC)


async def test_points_hours_and_rank(deepbot_client: DeepBotClient) -> None:
    assert await deepbot_client.get_points("alice") == Decimal("500")
    assert await deepbot_client.get_hours("ALICE") == Decimal("100")
    assert await deepbot_client.get_rank("Alice") == "Sergeant - Star 1"
    assert await deepbot_client.get_rank("expertsonline") == "Sergeant - Star 2"
    assert await deepbot_client.get_hours("bob") == Decimal("1.5")


async def test_decimal_comma_numbers_are_read(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    deepbot_sim.decimal_comma = True
    deepbot_sim.user("bob").points = Decimal("13.37")
    assert await deepbot_client.get_points("bob") == Decimal("13.37")
    assert await deepbot_client.get_hours("bob") == Decimal("1.5")


async def test_user_exists(deepbot_client: DeepBotClient) -> None:
    assert await deepbot_client.user_exists("carol") is True
    assert await deepbot_client.user_exists("nobody") is False


@pytest.mark.parametrize("message", ["User not found", "user not found"])
async def test_unknown_user_is_a_typed_error(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient, message: str
) -> None:
    deepbot_sim.not_found_message = message
    for call in (
        deepbot_client.get_user,
        deepbot_client.get_points,
        deepbot_client.get_hours,
        deepbot_client.get_rank,
    ):
        with pytest.raises(UserNotFound) as caught:
            await call("nobody")
        assert caught.value.message == "DeepBot has no user named nobody."
        assert caught.value.code == message
        assert caught.value.service == "deepbot"
        assert isinstance(caught.value, ServiceError)


# --- changing points -------------------------------------------------------------------------


async def test_set_add_and_del_points(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory
) -> None:
    deepbot_sim.decimals = True
    client = await deepbot_client_factory(whole_points=False)
    await client.set_points("bob", Decimal("250.5"))
    assert deepbot_sim.user("bob").points == Decimal("250.5")
    await client.add_points("Bob", 10)
    await client.del_points("BOB", "0.5")
    assert await client.get_points("bob") == Decimal("260")
    await client.set_points("bob", 0)
    assert deepbot_sim.user("bob").points == 0
    assert list(deepbot_sim.received)[-3] == "api|del_points|BOB|0.5|True"


async def test_whole_points_by_default_and_never_minus_zero(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    sent = len(deepbot_sim.received)
    for call in (deepbot_client.add_points, deepbot_client.del_points):
        with pytest.raises(InvalidArgument, match="whole number"):
            await call("bob", Decimal("0.5"))
    with pytest.raises(InvalidArgument, match="2,147,483,647"):
        await deepbot_client.add_points("bob", 2**31)
    assert len(deepbot_sim.received) == sent
    await deepbot_client.set_points("bob", Decimal("-0"))
    await deepbot_client.add_points("bob", Decimal("2.000"))
    assert list(deepbot_sim.received)[-2:] == ["api|set_points|bob|0", "api|add_points|bob|2"]


async def test_del_points_sends_fail_if_insufficient_and_is_refused(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    with pytest.raises(OperationFailed):
        await deepbot_client.del_points("bob", 101)
    assert deepbot_sim.received[-1] == "api|del_points|bob|101|True"
    assert deepbot_sim.user("bob").points == 100
    # What an install does with the flag False (deepclient.py's default): success, and 0.
    await deepbot_client.del_points("bob", 101, fail_if_insufficient=False)
    assert deepbot_sim.received[-1] == "api|del_points|bob|101|False"
    assert deepbot_sim.user("bob").points == 0


async def test_refused_point_changes_are_typed_and_change_nothing(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    with pytest.raises(OperationFailed) as caught:
        await deepbot_client.del_points("bob", 101)
    assert "bob" in caught.value.message and caught.value.code == "failed"
    with pytest.raises(OperationFailed):
        await deepbot_client.set_points("nobody", 5)
    with pytest.raises(OperationFailed):
        await deepbot_client.add_points("nobody", 5)
    assert deepbot_sim.user("bob").points == Decimal(100)


# --- escrow ----------------------------------------------------------------------------------


async def test_escrow_add_commit_cancel(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    alice = deepbot_sim.user("alice")
    await deepbot_client.add_to_escrow("alice", 100)
    await deepbot_client.add_to_escrow("alice", 50)
    assert (alice.points, alice.escrow) == (Decimal(350), Decimal(150))
    assert await deepbot_client.get_points("alice") == Decimal(350)
    await deepbot_client.cancel_escrow("Alice")
    assert (alice.points, alice.escrow) == (Decimal(500), Decimal(0))
    await deepbot_client.add_to_escrow("alice", 200)
    await deepbot_client.commit_user_escrow("alice")
    assert (alice.points, alice.escrow) == (Decimal(300), Decimal(0))
    with pytest.raises(NoPointsInEscrow):
        await deepbot_client.commit_user_escrow("alice")
    with pytest.raises(NoPointsInEscrow) as caught:
        await deepbot_client.cancel_escrow("alice")
    assert caught.value.message == "alice has no points held in escrow."


async def test_escrow_refusals(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    with pytest.raises(NotEnoughPoints) as caught:
        await deepbot_client.add_to_escrow("bob", 101)
    assert caught.value.message == "bob does not have enough points for that."
    with pytest.raises(UserNotFound):
        await deepbot_client.add_to_escrow("nobody", 1)
    with pytest.raises(UserNotFound):
        await deepbot_client.commit_user_escrow("nobody")
    with pytest.raises(UserNotFound):
        await deepbot_client.cancel_escrow("nobody")
    assert (deepbot_sim.user("bob").points, deepbot_sim.user("bob").escrow) == (100, 0)


async def test_cancel_escrow_for_all(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    await deepbot_client.add_to_escrow("alice", 10)
    await deepbot_client.add_to_escrow("bob", 20)
    await deepbot_client.cancel_escrow("ALL")
    assert deepbot_sim.user("alice").points == 500 and deepbot_sim.user("bob").points == 100
    assert deepbot_sim.received[-1] == "api|cancel_escrow|all"
    with pytest.raises(NoPointsInEscrow) as caught:
        await deepbot_client.cancel_all_escrow()
    assert caught.value.message == "every viewer has no points held in escrow."


# --- VIP -------------------------------------------------------------------------------------


async def test_set_vip_sets_level_and_adds_days(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    before = datetime.now(UTC)
    await deepbot_client.set_vip("bob", VipLevel.GOLD, 30)
    user = await deepbot_client.get_user("bob")
    assert user.vip_level is VipLevel.GOLD and user.is_vip
    assert user.vip_expiry is not None
    assert timedelta(days=29) < user.vip_expiry - before <= timedelta(days=30, seconds=5)
    await deepbot_client.set_vip("bob", 3, 10)
    assert deepbot_sim.user("bob").vip_expiry - user.vip_expiry == timedelta(days=10)
    await deepbot_client.set_vip("bob", 0, 0)
    assert (await deepbot_client.get_user("bob")).vip_level is VipLevel.NONE


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (protocol.MSG_BAD_VIP_LEVEL, InvalidVipLevel),
        (protocol.MSG_BAD_VIP_LENGTH, InvalidVipLength),
        ("User not found", UserNotFound),
    ],
)
async def test_set_vip_refusals_from_deepbot(
    deepbot_sim: DeepBotSimulator,
    deepbot_client: DeepBotClient,
    message: str,
    error: type[DeepBotError],
) -> None:
    deepbot_sim.fail("set_vip", "bob", message)
    with pytest.raises(error):
        await deepbot_client.set_vip("bob", 1, 7)
    assert deepbot_sim.user("bob").vip == 10


# --- DeepBot's vocabulary --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("Not enough points", NotEnoughPoints),
        ("No points in escrow", NoPointsInEscrow),
        ("points should be a positive number", InvalidPoints),
        ("failed", OperationFailed),
        ("Failed.", OperationFailed),
        ("Failed. Incorrect VIP level.", InvalidVipLevel),
        ("Failed. Incorrect VIP length.", InvalidVipLength),
        ("user not found", UserNotFound),
        ("banana", UnexpectedReply),
        ("", UnexpectedReply),
    ],
)
async def test_every_known_message_becomes_its_error(
    deepbot_sim: DeepBotSimulator,
    deepbot_client: DeepBotClient,
    message: str,
    error: type[DeepBotError],
) -> None:
    deepbot_sim.fail("add_to_escrow", "bob", message)
    with pytest.raises(error) as caught:
        await deepbot_client.add_to_escrow("bob", 5)
    assert type(caught.value) is error
    assert caught.value.function == "add_to_escrow"
    assert caught.value.message.endswith(".")


async def test_unreadable_answers_are_unexpected_replies(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    deepbot_sim.fail("get_points", "bob", "lots")
    with pytest.raises(UnexpectedReply) as caught:
        await deepbot_client.get_points("bob")
    assert caught.value.code == "lots"
    deepbot_sim.fail("get_user", "bob", "Bob is great")
    with pytest.raises(UnexpectedReply):
        await deepbot_client.get_user("bob")
    deepbot_sim.fail("get_rank", "bob", "")
    with pytest.raises(UnexpectedReply):
        await deepbot_client.get_rank("bob")


# --- refusing bad input before anything is sent ----------------------------------------------

INJECTIONS = [
    "bob|1000",
    "bob\n",
    "bob\napi|set_points|bob|1000000",
    "bob\r",
    "bo\x00b",
    "bob\x1b[31m",
    "bob\u2028",
    "bob\u202e",
    "",
    "   ",
    "x" * 101,
]


@pytest.mark.parametrize("name", INJECTIONS)
async def test_bad_user_names_are_refused_and_nothing_is_sent(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient, name: str
) -> None:
    sent = len(deepbot_sim.received)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: deepbot_client.get_user(name),
        lambda: deepbot_client.get_points(name),
        lambda: deepbot_client.get_hours(name),
        lambda: deepbot_client.get_rank(name),
        lambda: deepbot_client.set_points(name, 1),
        lambda: deepbot_client.add_points(name, 1),
        lambda: deepbot_client.del_points(name, 1),
        lambda: deepbot_client.add_to_escrow(name, 1),
        lambda: deepbot_client.commit_user_escrow(name),
        lambda: deepbot_client.cancel_escrow(name),
        lambda: deepbot_client.set_vip(name, 1, 1),
        lambda: deepbot_client.set_vip_expiry(name, datetime(2030, 1, 1)),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument) as caught:
            await call()
        assert not name.strip() or name not in caught.value.message
    assert len(deepbot_sim.received) == sent
    assert deepbot_sim.user("bob").points == 100


@pytest.mark.parametrize(
    "points",
    [
        "1|2",
        "5\n",
        "abc",
        "NaN",
        "Infinity",
        float("nan"),
        float("inf"),
        -1,
        "-0.5",
        0,
        True,
        None,
        Decimal("1e13"),
        Decimal("0.5"),
        2**31,
    ],
)
async def test_bad_amounts_are_refused_and_nothing_is_sent(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient, points: Any
) -> None:
    sent = len(deepbot_sim.received)
    for call in (
        deepbot_client.add_points,
        deepbot_client.del_points,
        deepbot_client.add_to_escrow,
    ):
        with pytest.raises(InvalidArgument):
            await call("bob", points)
    if points != 0:
        with pytest.raises(InvalidArgument):
            await deepbot_client.set_points("bob", points)
    assert len(deepbot_sim.received) == sent


async def test_amounts_are_sent_in_plain_notation(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory
) -> None:
    deepbot_sim.decimals = True
    client = await deepbot_client_factory(whole_points=False)
    await client.add_points("bob", Decimal("1E+2"))
    await client.add_points("bob", 0.1)
    await client.add_points("bob", "2.50")
    assert list(deepbot_sim.received)[-3:] == [
        "api|add_points|bob|100",
        "api|add_points|bob|0.1",
        "api|add_points|bob|2.5",
    ]
    assert deepbot_sim.user("bob").points == Decimal("202.6")


@pytest.mark.parametrize(
    ("level", "days"),
    [
        (4, 1),
        (11, 1),
        (-1, 1),
        ("1", 1),
        (True, 1),
        (1.0, 1),
        (1, -1),
        (1, 1.5),
        (1, "7"),
        (1, 100_000),
        (1, False),
    ],
)
async def test_bad_vip_arguments_are_refused_and_nothing_is_sent(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient, level: Any, days: Any
) -> None:
    sent = len(deepbot_sim.received)
    with pytest.raises(InvalidArgument):
        await deepbot_client.set_vip("bob", level, days)
    assert len(deepbot_sim.received) == sent


# --- many calls on one connection ------------------------------------------------------------


async def test_200_concurrent_calls_for_distinct_users(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    for i in range(200):
        deepbot_sim.add_user(
            SimUser(f"viewer{i}", points=Decimal(i), watch_minutes=Decimal(i * 60))
        )
    points = [deepbot_client.get_points(f"Viewer{i}") for i in range(200)]
    hours = [deepbot_client.get_hours(f"viewer{i}") for i in range(200)]
    results = await asyncio.gather(*points, *hours)
    assert results[:200] == [Decimal(i) for i in range(200)]
    assert results[200:] == [Decimal(i) for i in range(200)]


async def test_200_concurrent_calls_for_the_same_user(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    # Interleave sets and reads: each read must see exactly the set sent just before it,
    # which only holds if every answer went back to its own call.
    calls = []
    for i in range(100):
        calls.append(deepbot_client.set_points("bob", i + 1))
        calls.append(deepbot_client.get_points("BOB"))
    results = await asyncio.gather(*calls)
    assert results[0::2] == [None] * 100
    assert results[1::2] == [Decimal(i + 1) for i in range(100)]


async def test_pushed_frames_are_ignored_between_answers(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    pushes = [
        "music|Song title|Artist",
        "newsub|somebody",
        "{not json",
        '{"event": "follow"}',
        "[1, 2]",
        '{"function": "get_points", "param": "stranger", "msg": "1.00"}',
    ]

    async def push_all() -> None:
        for frame in pushes:
            await deepbot_sim.push(frame)
            await asyncio.sleep(0)

    results = await asyncio.gather(
        push_all(), *(deepbot_client.get_points("alice") for _ in range(50))
    )
    assert results[1:] == [Decimal(500)] * 50
    assert deepbot_client.ignored_frames >= 4  # pushes, a list, a stray reply
    assert deepbot_client.bad_frames == 2  # bad JSON, an object without a function
    assert await deepbot_client.get_points("bob") == Decimal(100)


# --- timeouts --------------------------------------------------------------------------------


async def test_a_silent_server_times_out_every_call(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory
) -> None:
    client = await deepbot_client_factory(timeout=0.2, late_reply_grace=0.1)
    deepbot_sim.silent = True
    started = time.monotonic()
    results = await asyncio.gather(
        client.get_user("bob"),
        client.get_points("bob"),
        client.get_hours("bob"),
        client.get_rank("bob"),
        client.set_points("bob", 1),
        client.add_points("bob", 1),
        client.del_points("bob", 1),
        client.add_to_escrow("bob", 1),
        client.commit_user_escrow("bob"),
        client.cancel_escrow("bob"),
        client.set_vip("bob", 1, 1),
        return_exceptions=True,
    )
    assert time.monotonic() - started < 1.0
    for result in results:
        assert isinstance(result, DeepBotTimeout) and isinstance(result, ServiceTimeout)
        assert result.message == "DeepBot did not answer in time (0.2 s)."
    deepbot_sim.silent = False
    await asyncio.sleep(0.15)  # the placeholders of the silent calls expire
    assert await client.get_points("bob") == Decimal(100)


async def test_each_call_times_out_at_its_own_deadline_while_others_are_answered(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory
) -> None:
    """One timer serves every call's deadline (the oldest first): a call started later is
    not timed out at an earlier call's deadline, and answered calls in between are never
    timed out."""
    deepbot_sim.not_found_message = None  # unknown users get no answer at all
    client = await deepbot_client_factory(timeout=0.4)
    loop = asyncio.get_running_loop()
    failed_after: dict[str, float] = {}

    async def unanswered(name: str) -> None:
        started = loop.time()
        with pytest.raises(DeepBotTimeout):
            await client.get_user(name)
        failed_after[name] = loop.time() - started

    first = asyncio.ensure_future(unanswered("ghost1"))
    await asyncio.sleep(0.15)
    second = asyncio.ensure_future(unanswered("ghost2"))
    answered = 0
    while not first.done() or not second.done():
        assert await client.get_points("bob") == Decimal(100)
        answered += 1
        await asyncio.sleep(0.01)
    await asyncio.gather(first, second)
    assert answered > 10
    for name in ("ghost1", "ghost2"):
        assert 0.39 <= failed_after[name] < 0.6, failed_after
    assert await client.get_points("bob") == Decimal(100)


async def test_an_unanswered_unknown_user_times_out(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory
) -> None:
    deepbot_sim.not_found_message = None  # installs that do not answer for unknown users
    client = await deepbot_client_factory(timeout=0.2)
    with pytest.raises(DeepBotTimeout):
        await client.get_user("nobody")
    assert await client.get_points("bob") == Decimal(100)


async def test_a_late_answer_is_not_given_to_the_next_call(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory
) -> None:
    client = await deepbot_client_factory(timeout=0.3, late_reply_grace=2.0)
    deepbot_sim.reply_delay = 0.45
    with pytest.raises(DeepBotTimeout):
        await client.get_points("bob")  # DeepBot answers 100.00, but too late
    deepbot_sim.reply_delay = 0
    deepbot_sim.user("bob").points = Decimal(200)
    assert await client.get_points("bob") == Decimal(200)


async def test_retries_after_a_silent_spell_get_answers_again(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory
) -> None:
    client = await deepbot_client_factory(timeout=0.5, late_reply_grace=5.0)
    deepbot_sim.silent = True
    with pytest.raises(DeepBotTimeout):
        await client.get_points("bob")  # never answered: its placeholder stays
    deepbot_sim.silent = False
    # The retry's answer could not be told apart from the silent call's late one, so the
    # retry goes out on a fresh connection instead of losing its answer.
    assert await client.get_points("bob") == Decimal(100)
    assert client.recycles == 1
    assert await client.get_points("bob") == Decimal(100)
    assert client.recycles == 1


async def test_a_reply_later_than_timeout_and_grace_never_answers_a_later_call(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory
) -> None:
    # Issue 14 item 3: the placeholder was pruned after the grace, so the late "failed"
    # answered the next add_points, which then said success... or the reverse.
    client = await deepbot_client_factory(timeout=0.3, late_reply_grace=0.1)
    deepbot_sim.fail("add_points", "bob", msg="failed")
    deepbot_sim.reply_delay = 0.6  # later than timeout + grace
    with pytest.raises(DeepBotTimeout):
        await client.add_points("bob", 1)
    deepbot_sim.reply_delay = 0
    await client.add_points("bob", 1)  # must be its own "success", not the late "failed"
    assert deepbot_sim.user("bob").points == 101
    deepbot_sim.reply_delay = 0.6
    with pytest.raises(DeepBotTimeout):
        await client.get_points("bob")
    deepbot_sim.user("bob").points = Decimal(7)
    deepbot_sim.reply_delay = 0
    await asyncio.sleep(0.5)  # the late 101.00 arrives in this window or is cut off
    assert await client.get_points("bob") == Decimal(7)


async def test_a_recycle_lets_the_calls_in_flight_finish_first(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory
) -> None:
    client = await deepbot_client_factory(timeout=1.5, late_reply_grace=0.2)
    deepbot_sim.fail("get_points", "bob", msg=None)  # never answered: a placeholder stays
    with pytest.raises(DeepBotTimeout):
        await client.get_points("bob")
    deepbot_sim.reply_delay = 0.3
    in_flight = asyncio.ensure_future(client.get_hours("alice"))
    await asyncio.sleep(0.05)
    assert await client.get_points("bob") == Decimal(100)  # sent on a fresh connection
    assert await in_flight == Decimal(100)  # answered before the old connection closed
    assert client.recycles == 1 and client.registrations == 2


async def test_a_late_reply_for_another_user_does_not_recycle(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory
) -> None:
    deepbot_sim.not_found_message = None
    client = await deepbot_client_factory(timeout=0.3)
    with pytest.raises(DeepBotTimeout):
        await client.get_points("nobody")
    assert await client.get_points("bob") == Decimal(100)  # another key: no wait
    assert client.recycles == 0


# --- connection ------------------------------------------------------------------------------


async def test_a_wrong_secret_is_reported_and_not_retried(
    deepbot_sim: DeepBotSimulator, deepbot_client_factory: Factory, deepbot_secret: str
) -> None:
    wrong = "wrong-" + deepbot_secret
    client = await deepbot_client_factory(secret=wrong, connect=False)
    with pytest.raises(AuthenticationFailed) as caught:
        await client.connect()
    assert "secret" in caught.value.message
    assert wrong not in caught.value.message and wrong not in str(caught.value.code)
    assert caught.value.code == "incorrect api secret"
    assert client.state is ConnectionState.AUTH_FAILED
    assert client.last_error == caught.value.message
    await asyncio.sleep(0.2)  # several reconnect delays: a retry loop would show here
    assert deepbot_sim.register_attempts == 1
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed):
        await client.get_points("bob")
    assert time.monotonic() - started < 0.05
    assert wrong not in repr(client)


async def test_calls_fail_fast_when_deepbot_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = DeepBotClient(
        f"ws://127.0.0.1:{port}", "secret", timeout=0.5, reconnect_base=0.02, reconnect_cap=0.05
    )
    try:
        with pytest.raises(DeepBotNotConnected) as caught:
            await client.connect(within=0.2)
        assert caught.value.message == "DeepBot is not connected."
        assert client.last_error == f"DeepBot could not be reached at ws://127.0.0.1:{port}."
        started = time.monotonic()
        with pytest.raises(NotConnected):
            await client.get_points("bob")
        assert time.monotonic() - started < 0.05
    finally:
        await client.close()
    assert client.state is ConnectionState.CLOSED


async def test_restarted_simulator_is_used_again_after_reregistering(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    await deepbot_client.add_points("bob", 5)
    port = deepbot_sim.port
    await deepbot_sim.stop()
    await eventually(lambda: not deepbot_client.connected)
    started = time.monotonic()
    with pytest.raises(DeepBotNotConnected):
        await deepbot_client.get_points("bob")
    assert time.monotonic() - started < 0.05
    await deepbot_sim.start()
    assert deepbot_sim.port == port
    await deepbot_client.wait_connected(within=2.0)
    assert await deepbot_client.get_points("bob") == Decimal(105)
    assert deepbot_client.registrations == 2
    assert deepbot_sim.registrations == 2


async def test_a_dropped_connection_fails_calls_in_flight_and_recovers(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    deepbot_sim.reply_delay = 0.5
    call = asyncio.ensure_future(deepbot_client.add_points("bob", 1))
    await eventually(lambda: "api|add_points|bob|1" in deepbot_sim.received)
    await deepbot_sim.drop_connections()
    with pytest.raises(ConnectionLost) as caught:
        await call
    assert caught.value.message == "The connection to DeepBot was lost before it answered."
    deepbot_sim.reply_delay = 0
    await deepbot_client.wait_connected(within=2.0)
    assert await deepbot_client.get_points("alice") == Decimal(500)


async def test_not_authorized_makes_the_client_register_again(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    deepbot_sim.forget_registrations()
    with pytest.raises(NotAuthorized):
        await deepbot_client.get_points("bob")
    await eventually(lambda: deepbot_client.registrations == 2)
    await deepbot_client.wait_connected(within=2.0)
    assert await deepbot_client.get_points("bob") == Decimal(100)


async def test_close_fails_pending_calls_and_later_calls(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    deepbot_sim.silent = True
    call = asyncio.ensure_future(deepbot_client.get_points("bob"))
    await asyncio.sleep(0.02)
    await deepbot_client.close()
    with pytest.raises(DeepBotNotConnected) as caught:
        await call
    assert caught.value.message == "The DeepBot client was closed."
    with pytest.raises(DeepBotNotConnected):
        await deepbot_client.get_points("bob")
    await deepbot_client.close()  # twice is fine
    assert deepbot_client.state is ConnectionState.CLOSED


async def test_context_manager_connects_and_closes(
    deepbot_sim: DeepBotSimulator, deepbot_secret: str
) -> None:
    async with DeepBotClient(deepbot_sim.url, deepbot_secret, timeout=1) as client:
        assert client.connected
        assert await client.get_rank("carol") == "Recruit - Star 1"
    assert client.state is ConnectionState.CLOSED
    await eventually(lambda: deepbot_sim.connection_count == 0)


# --- lists and VIP expiry (beyond the document; both public clients use them) ----------------


@pytest.mark.parametrize("as_json", [False, True], ids=["objects", "json-strings"])
async def test_pages_of_users_count_and_vip_expiry(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient, as_json: bool
) -> None:
    deepbot_sim.msg_as_json = as_json  # DeepBot.cs decodes msg when it is a JSON string
    for i in range(120):
        deepbot_sim.add_user(SimUser(f"v{i:03}", points=Decimal(i), watch_minutes=Decimal(60)))
    assert await deepbot_client.get_users_count() == 124
    first = await deepbot_client.get_users(0, 100)
    rest = await deepbot_client.get_users(100, 100)
    assert len(first) == 100 and len(rest) == 24
    assert first[0].name == "expertsonline" and rest[-1].name == "v119"
    assert await deepbot_client.get_users(124, 100) == []  # "List empty"
    top = await deepbot_client.get_top_users(0, 3)
    assert [(u.name, u.points) for u in top] == [
        ("expertsonline", Decimal(720)),
        ("Alice", Decimal(500)),
        ("v119", Decimal(119)),
    ]
    record = await deepbot_client.get_user("bob")  # one object, in either shape
    assert record.points == Decimal(100)
    with pytest.raises(InvalidArgument):
        await deepbot_client.get_top_users(0, 101)
    await deepbot_client.set_vip_expiry("bob", datetime(2031, 5, 6, 7, 8, 9))
    assert deepbot_sim.received[-1] == "api|set_vip_expiry|bob|2031-05-06T07:08:09"
    assert deepbot_sim.user("bob").vip_expiry == datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    with pytest.raises(UserNotFound):
        await deepbot_client.set_vip_expiry("nobody", datetime(2031, 5, 6))


async def test_concurrent_pages_are_answered_in_order(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    # Replies to get_users carry no user name: they match in order on the function alone.
    for i in range(250):
        deepbot_sim.add_user(SimUser(f"w{i:03}"))
    pages = await asyncio.gather(*(deepbot_client.get_users(o, 100) for o in (0, 100, 200)))
    assert [len(p) for p in pages] == [100, 100, 54]
    assert pages[1][0].name == "w096"


async def test_an_unreadable_page_and_bad_names_in_it(
    deepbot_sim: DeepBotSimulator, deepbot_client: DeepBotClient
) -> None:
    deepbot_sim.add_user(SimUser("x" * 5000))
    deepbot_sim.add_user(SimUser("evil\u202ename"))
    users = await deepbot_client.get_users(0, 100)
    assert [u.name for u in users] == ["expertsonline", "Alice", "Bob", "Carol"]
