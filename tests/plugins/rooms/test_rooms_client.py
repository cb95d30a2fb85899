"""RoomsClient against the simulator over real HTTP: fields, replies, errors and retries."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest

from bot.errors import NotConnected, ServiceError, ServiceTimeout
from bot_plugins.rooms.client import MAX_BODY, RoomsClient, is_key_refusal
from bot_plugins.rooms.errors import (
    RoomsAuthError,
    RoomsBadResponse,
    RoomsHTTPError,
    RoomsInvalidRequest,
    RoomsRefused,
    RoomsTimeout,
    RoomsUnavailable,
)
from bot_plugins.rooms.models import (
    JoinRequest,
    LeaveRequest,
    PingRequest,
    UpdateCreditsRequest,
)
from bot_plugins.rooms.simulator import RoomsSimulator


def join(performer: int = 11, nickname: str = "bob", customer: int | None = 501, credits: int = 25):
    return JoinRequest(
        performer_id=performer,
        nickname=nickname,
        ip_address="203.0.113.9",
        registered=customer is not None,
        credits=credits,
        customer_id=customer,
    )


# -- the happy paths, and exactly what goes over the wire -----------------------------------


async def test_join_sends_documented_fields_and_returns_display_nickname(rooms_client, rooms_sim):
    result = await rooms_client.join_room(join())

    assert re.fullmatch(r"bob_\d{4}", result.nickname)
    [call] = rooms_sim.calls
    assert list(call.fields.items()) == [
        ("function", "joinRoom"),
        ("performerId", "11"),
        ("nickname", "bob"),
        ("customerId", "501"),
        ("ipAddress", "203.0.113.9"),
        ("registered", "1"),
        ("credits", "25"),
    ]
    assert call.key_ok
    [member] = rooms_sim.members(11)
    assert (member.display_nickname, member.customer_id, member.credits) == (
        result.nickname,
        501,
        25,
    )


async def test_unregistered_join_omits_customer_id(rooms_client, rooms_sim):
    await rooms_client.join_room(join(customer=None, credits=0))

    fields = rooms_sim.calls[0].fields
    assert "customerId" not in fields
    assert fields["registered"] == "0"
    assert rooms_sim.members(11)[0].registered is False


async def test_json_replies_are_read_as_well_as_the_relaxed_literal(rooms_client, rooms_sim):
    relaxed = await rooms_client.join_room(join(performer=1))
    rooms_sim.json_replies = True
    as_json = await rooms_client.join_room(join(performer=2))

    assert re.fullmatch(r"bob_\d{4}", relaxed.nickname)
    assert re.fullmatch(r"bob_\d{4}", as_json.nickname)
    await rooms_client.ping_room(PingRequest(2, as_json.nickname, 501))
    assert rooms_sim.members(2)[0].pings == 1


async def test_ping_then_leave_with_either_nickname(rooms_client, rooms_sim):
    shown = (await rooms_client.join_room(join(customer=None))).nickname
    other = (await rooms_client.join_room(join(nickname="amy", customer=None))).nickname

    ack = await rooms_client.ping_room(PingRequest(11, shown))
    assert ack.function == "pingRoom"
    await rooms_client.leave_room(LeaveRequest(11, "bob"))  # the nickname we sent
    await rooms_client.leave_room(LeaveRequest(11, other))  # the one the API displays

    assert rooms_sim.members(11) == []
    assert [c.fields["nickname"] for c in rooms_sim.calls_of("leaveRoom")] == ["bob", other]


async def test_update_credits_for_registered_customer(rooms_client, rooms_sim):
    await rooms_client.join_room(join(customer=501, credits=25))

    ack = await rooms_client.update_credits(UpdateCreditsRequest(501, 90))

    assert ack.function == "updateCredits"
    assert rooms_sim.credits(501) == 90
    assert rooms_sim.members(11)[0].credits == 90
    assert list(rooms_sim.calls[-1].fields) == ["function", "customerId", "credits"]


async def test_update_credits_refused_for_unregistered_customer(rooms_client, rooms_sim):
    await rooms_client.join_room(join(customer=None))

    with pytest.raises(RoomsRefused) as caught:
        await rooms_client.update_credits(UpdateCreditsRequest(777, 10))

    assert "registered" in caught.value.message
    assert caught.value.function == "updateCredits"
    assert rooms_sim.credits(777) is None
    assert len(rooms_sim.calls_of("updateCredits")) == 1  # a refusal is never retried


async def test_refusal_carries_the_api_message(rooms_client, rooms_sim):
    with pytest.raises(RoomsRefused) as caught:
        await rooms_client.leave_room(LeaveRequest(11, "nobody"))

    error = caught.value
    assert isinstance(error, ServiceError)
    assert error.service == "rooms"
    assert error.api_message == "Customer is not in this room."
    assert error.code == "Customer is not in this room."
    assert error.message == (
        "The rooms service refused to leave the room: Customer is not in this room."
    )
    assert len(rooms_sim.calls_of("leaveRoom")) == 1


# -- the key --------------------------------------------------------------------------------


async def test_wrong_key_is_refused_and_never_shown(rooms_sim, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # other tests quiet httpx's own level
    wrong = "wrong-key-Q7/&"
    async with RoomsClient(rooms_sim.url, wrong, timeout=1.0, retry_base=0.01) as client:
        with pytest.raises(RoomsRefused) as caught:
            await client.join_room(join())

    assert caught.value.api_message == "Invalid API key."
    assert rooms_sim.calls[0].key_ok is False
    assert rooms_sim.members(11) == []
    assert wrong not in caplog.text
    assert "wrong-key-Q7%2F%26" not in caplog.text
    assert "key=***" in caplog.text  # httpx's own request log line, redacted


async def test_key_is_redacted_from_logs_and_api_messages(
    rooms_client, rooms_sim, rooms_key, caplog
):
    caplog.set_level(logging.DEBUG)
    rooms_sim.fail("body", body=f'{{ success: false, message: "bad key {rooms_key}" }}')
    with pytest.raises(RoomsRefused) as caught:
        await rooms_client.join_room(join())
    rooms_sim.fail("http_error", times=3, functions={"pingRoom"})
    with pytest.raises(RoomsHTTPError):
        await rooms_client.ping_room(PingRequest(11, "bob"))

    assert caught.value.message.endswith("bad key ***")
    assert rooms_key not in caught.value.message
    assert rooms_key not in repr(rooms_client)
    assert caplog.records, "expected request log lines"
    assert rooms_key not in caplog.text
    assert "test-key-Zx9%21q" not in caplog.text


async def test_auth_http_status_is_reported_without_retry(rooms_client, rooms_sim):
    rooms_sim.fail("http_error", status=403, times=None)

    with pytest.raises(RoomsAuthError) as caught:
        await rooms_client.ping_room(PingRequest(11, "bob"))

    assert caught.value.code == "403"
    assert "key" in caught.value.message and "config" in caught.value.message
    assert len(rooms_sim.calls_of("pingRoom")) == 1


# -- malformed bodies, HTTP errors and timeouts: retried only where idempotent ---------------


async def test_malformed_body_is_retried_for_ping(rooms_client, rooms_sim):
    shown = (await rooms_client.join_room(join())).nickname
    rooms_sim.fail("malformed", times=1)

    await rooms_client.ping_room(PingRequest(11, shown, 501))

    pings = rooms_sim.calls_of("pingRoom")
    assert [c.fault for c in pings] == ["malformed", None]
    assert rooms_sim.members(11)[0].pings == 1


async def test_malformed_body_is_reported_for_join_and_not_retried(rooms_client, rooms_sim):
    rooms_sim.fail("malformed", times=1)

    with pytest.raises(RoomsBadResponse) as caught:
        await rooms_client.join_room(join())

    assert caught.value.code == "malformed"
    assert caught.value.message == "The rooms service sent an answer the bot could not understand."
    assert len(rooms_sim.calls_of("joinRoom")) == 1
    assert rooms_sim.members(11) == []


async def test_join_with_an_unusable_display_nickname_is_a_bad_response(rooms_client, rooms_sim):
    rooms_sim.fail("body", body='{ success: true, message: "", nickname: "a\\u0007b" }')

    with pytest.raises(RoomsBadResponse) as caught:
        await rooms_client.join_room(join())

    assert "control characters" in caught.value.detail


async def test_join_without_a_display_nickname_keeps_ours(rooms_client, rooms_sim):
    rooms_sim.fail("body", body="{ success: true }")

    assert (await rooms_client.join_room(join())).nickname == "bob"


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>Bad Gateway</body></html>",
        "{ message: 'no success field' }",
        "{ success: maybe }",
        "x" * (MAX_BODY + 1),
    ],
)
async def test_unreadable_bodies_are_bad_responses(rooms_client, rooms_sim, body):
    rooms_sim.fail("body", body=body, times=1)

    with pytest.raises(RoomsBadResponse):
        await rooms_client.update_credits(UpdateCreditsRequest(501, 1))


async def test_server_errors_are_retried_for_leave(rooms_client, rooms_sim):
    shown = (await rooms_client.join_room(join())).nickname
    rooms_sim.fail("http_error", status=502, times=2, functions={"leaveRoom"})

    await rooms_client.leave_room(LeaveRequest(11, shown, 501))

    assert [c.fault for c in rooms_sim.calls_of("leaveRoom")] == ["http_error", "http_error", None]
    assert rooms_sim.members(11) == []


async def test_retries_give_up_after_the_configured_attempts(rooms_client, rooms_sim):
    rooms_sim.fail("http_error", status=500, times=None)

    with pytest.raises(RoomsHTTPError) as caught:
        await rooms_client.leave_room(LeaveRequest(11, "bob"))

    assert caught.value.status == 500
    assert len(rooms_sim.calls_of("leaveRoom")) == 3  # 1 + retries=2


async def test_rate_limited_ping_is_retried(rooms_client, rooms_sim):
    shown = (await rooms_client.join_room(join())).nickname
    rooms_sim.fail("http_error", status=429, times=1)

    await rooms_client.ping_room(PingRequest(11, shown, 501))

    assert len(rooms_sim.calls_of("pingRoom")) == 2


async def test_server_error_on_join_is_reported_not_retried(rooms_client, rooms_sim):
    rooms_sim.fail("http_error", status=500, times=1)

    with pytest.raises(RoomsHTTPError) as caught:
        await rooms_client.join_room(join())

    assert caught.value.code == "500"
    assert len(rooms_sim.calls_of("joinRoom")) == 1


async def test_dropped_connection_on_update_credits_is_not_retried(rooms_client, rooms_sim):
    await rooms_client.join_room(join(customer=501, credits=25))
    rooms_sim.fail("drop", times=1)

    with pytest.raises(RoomsUnavailable):
        await rooms_client.update_credits(UpdateCreditsRequest(501, 40))

    assert len(rooms_sim.calls_of("updateCredits")) == 1
    assert rooms_sim.credits(501) == 25


async def test_a_hanging_join_times_out_once(rooms_sim, rooms_key):
    rooms_sim.fail("hang", times=1, hang=5.0)
    async with RoomsClient(rooms_sim.url, rooms_key, timeout=0.3, retry_base=0.01) as client:
        started = time.monotonic()
        with pytest.raises(RoomsTimeout) as caught:
            await client.join_room(join())
        elapsed = time.monotonic() - started

    assert isinstance(caught.value, ServiceTimeout)
    assert caught.value.code == "timeout"
    assert 0.25 <= elapsed < 2.0
    assert len(rooms_sim.calls_of("joinRoom")) == 1


async def test_a_hanging_ping_is_retried(rooms_sim, rooms_key):
    async with RoomsClient(rooms_sim.url, rooms_key, timeout=0.3, retry_base=0.01) as client:
        shown = (await client.join_room(join())).nickname
        rooms_sim.fail("hang", times=1, hang=5.0)
        await client.ping_room(PingRequest(11, shown, 501))

    assert [c.fault for c in rooms_sim.calls_of("pingRoom")] == ["hang", None]


# -- unreachable service and reconnecting ---------------------------------------------------


async def test_unreachable_service_is_reported(rooms_key):
    sim = RoomsSimulator(key=rooms_key)
    await sim.start()
    url = sim.url
    await sim.stop()  # nothing listens on that port now

    async with RoomsClient(url, rooms_key, timeout=0.5, retries=1, retry_base=0.01) as client:
        with pytest.raises(RoomsUnavailable) as caught:
            await client.join_room(join())

    assert isinstance(caught.value, NotConnected)
    assert caught.value.code == "unreachable"


async def test_client_reconnects_with_backoff_when_the_service_returns(rooms_key):
    first = RoomsSimulator(key=rooms_key)
    await first.start()
    port = first.port
    async with RoomsClient(first.url, rooms_key, timeout=0.5, retry_base=0.01) as client:
        await client.join_room(join(customer=None))  # a pooled keep-alive connection exists
        await first.stop()

        second = RoomsSimulator(key=rooms_key, port=port)
        slow = RoomsClient(
            first.url, rooms_key, timeout=0.5, retries=8, retry_base=0.05, retry_cap=0.2
        )

        async def restart_later() -> None:
            await asyncio.sleep(0.2)
            await second.start()

        restarter = asyncio.create_task(restart_later())
        try:
            # Connection refused means nothing was sent, so even joinRoom is retried.
            result = await slow.join_room(join(performer=12, customer=None))
            await restarter
            # The old client's pooled connection died with the first server: it reconnects.
            await client.ping_room(PingRequest(12, result.nickname))
        finally:
            await slow.close()
            await second.stop()

    assert [c.function for c in second.calls] == ["joinRoom", "pingRoom"]


async def test_closed_client_refuses_calls(rooms_client, rooms_sim):
    await rooms_client.close()
    await rooms_client.close()  # twice is fine

    with pytest.raises(RoomsUnavailable):
        await rooms_client.ping_room(PingRequest(11, "bob"))
    assert rooms_sim.calls == []


# -- concurrency ----------------------------------------------------------------------------


async def test_concurrent_joins_and_pings(rooms_key):
    requests = [
        join(performer=30 + i % 3, nickname=f"fan{i}", customer=1000 + i) for i in range(40)
    ]
    # A purge window far beyond the test's run time: on a loaded machine 40 joins can take
    # longer than the shared fixture's half second, and a purge would fail the count below.
    async with (
        RoomsSimulator(key=rooms_key, purge_after=60.0, seed=7) as sim,
        RoomsClient(sim.url, rooms_key, timeout=5.0, retry_base=0.01) as client,
    ):
        results = await asyncio.gather(*(client.join_room(r) for r in requests))
        await asyncio.gather(
            *(
                client.ping_room(PingRequest(r.performer_id, res.nickname, r.customer_id))
                for r, res in zip(requests, results, strict=True)
            )
        )
        rooms = sim.rooms()

    for request, result in zip(requests, results, strict=True):
        assert result.nickname.startswith(f"{request.nickname}_")
    assert sorted(len(members) for members in rooms.values()) == [13, 13, 14]
    assert all(m.pings == 1 for members in rooms.values() for m in members)


# -- bad input never reaches the API --------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: join(performer=0), "performer id"),
        (lambda: join(performer=True), "whole number"),
        (lambda: join(nickname="   "), "empty"),
        (lambda: join(nickname="a\nb"), "control"),
        (lambda: join(nickname="x" * 65), "at most 64"),
        (lambda: join(credits=-1), "Credits"),
        (lambda: join(credits=2.5), "whole number"),
        (lambda: JoinRequest(1, "bob", "not-an-ip", False, 0), "IPv4 or IPv6"),
        (lambda: JoinRequest(1, "bob", "127.0.0.1", True, 0), "needs a customer id"),
        (lambda: JoinRequest(1, "bob", "127.0.0.1", 1, 0), "true or false"),
        (lambda: PingRequest(1, "bob", customer_id=-5), "customer id"),
        (lambda: LeaveRequest("7", "bob"), "whole number"),
        (lambda: UpdateCreditsRequest(501, 2**31), "between 0"),
    ],
)
def test_bad_requests_are_refused_before_sending(build, fragment):
    with pytest.raises(RoomsInvalidRequest) as caught:
        build()

    assert fragment in caught.value.message
    assert caught.value.code == "invalid"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ws://example.test", "not an http:// or https:// URL"),
        ("example.test/customer", "not an http:// or https:// URL"),
        ("http://example.test/?key=abc", "must not contain the key"),
    ],
)
def test_bad_urls_are_refused(url, fragment):
    with pytest.raises(RoomsInvalidRequest) as caught:
        RoomsClient(url, "k")

    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("http://api.test", "http://api.test/customer"),
        ("https://api.test/v1/", "https://api.test/v1/customer"),
        ("http://api.test/customer", "http://api.test/customer"),
    ],
)
async def test_endpoint_is_built_from_the_base_url(url, endpoint):
    async with RoomsClient(url, "k") as client:
        assert str(client.endpoint) == endpoint


def test_empty_key_is_refused():
    with pytest.raises(RoomsInvalidRequest):
        RoomsClient("http://api.test", "")


# -- leave after a lost reply, and what the health check reads -------------------------------


async def test_retried_leave_whose_first_attempt_landed_counts_as_left(rooms_client, rooms_sim):
    shown = (await rooms_client.join_room(join())).nickname
    rooms_sim.fail("lost", functions={"leaveRoom"})  # done, but the answer never comes back

    ack = await rooms_client.leave_room(LeaveRequest(11, shown, 501))

    assert ack.function == "leaveRoom"
    assert ack.message == "Customer is not in this room."
    leaves = rooms_sim.calls_of("leaveRoom")
    assert [(c.fault, c.success) for c in leaves] == [("lost", True), (None, False)]
    assert rooms_sim.members(11) == []


async def test_a_lost_join_reply_is_reported_not_repeated(rooms_client, rooms_sim):
    rooms_sim.fail("lost", functions={"joinRoom"})

    with pytest.raises(RoomsUnavailable):
        await rooms_client.join_room(join())

    assert len(rooms_sim.calls_of("joinRoom")) == 1  # a second join could add a second member
    assert len(rooms_sim.members(11)) == 1


async def test_last_failure_follows_what_the_calls_show(rooms_client, rooms_sim, rooms_key):
    assert rooms_client.last_failure is None
    rooms_sim.fail("http_error", status=503, functions={"joinRoom"})
    with pytest.raises(RoomsHTTPError) as failed:
        await rooms_client.join_room(join())
    assert rooms_client.last_failure is failed.value

    with pytest.raises(RoomsRefused):  # a refusal shows the service is up and takes our key
        await rooms_client.leave_room(LeaveRequest(11, "nobody"))
    assert rooms_client.last_failure is None

    async with RoomsClient(rooms_sim.url, "not-" + rooms_key, timeout=1.0) as wrong:
        with pytest.raises(RoomsRefused) as refused:
            await wrong.ping_room(PingRequest(11, "bob"))
        assert wrong.last_failure is refused.value
        assert is_key_refusal(wrong.last_failure)
    assert not is_key_refusal(RoomsRefused("leaveRoom", "Customer is not in this room."))
