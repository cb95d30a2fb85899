"""PresenceManager over real HTTP: keep-alive, loss, leave, restart and shutdown."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from bot_plugins.rooms.client import RoomsClient
from bot_plugins.rooms.errors import (
    RoomsAlreadyPresent,
    RoomsError,
    RoomsHTTPError,
    RoomsInvalidRequest,
    RoomsNotPresent,
    RoomsRefused,
    RoomsUnavailable,
)
from bot_plugins.rooms.models import JoinRequest
from bot_plugins.rooms.presence import Presence, PresenceManager
from bot_plugins.rooms.simulator import RoomsSimulator


def join(performer: int = 21, nickname: str = "amy", customer: int | None = 601) -> JoinRequest:
    return JoinRequest(
        performer_id=performer,
        nickname=nickname,
        ip_address="198.51.100.4",
        registered=customer is not None,
        credits=5,
        customer_id=customer,
    )


async def test_pinged_member_outlives_the_purge_window(rooms_presence, rooms_sim, rooms_lost):
    presence = await rooms_presence.join(join(), owner="tg:1")

    await asyncio.sleep(rooms_sim.purge_after * 2.5)

    [member] = rooms_sim.members(21)
    assert member.display_nickname == presence.display_nickname
    assert member.pings >= 5
    assert presence.last_ping_at is not None and presence.failures == 0
    assert rooms_lost.calls == []
    pings = rooms_sim.calls_of("pingRoom")
    assert {c.fields["nickname"] for c in pings} == {presence.display_nickname}
    assert {c.fields["customerId"] for c in pings} == {"601"}


async def test_presence_lost_when_pings_fail(rooms_presence, rooms_sim, rooms_lost, rooms_wait):
    presence = await rooms_presence.join(join(), owner="tg:1")
    rooms_sim.fail("http_error", status=503, times=None, functions={"pingRoom"})

    lost, error = await rooms_lost.wait()

    assert lost is presence
    assert isinstance(error, RoomsHTTPError)
    assert "503" in error.message
    assert rooms_presence.get(21, "tg:1") is None
    assert len(rooms_presence) == 0
    await rooms_wait(lambda: rooms_sim.members(21) == [])  # with no pings, the API purges
    assert len(rooms_lost.calls) == 1


async def test_purged_member_is_reported_lost(rooms_key, rooms_lost):
    # Pings slower than the purge window: the API forgets the member between pings and
    # every later ping is refused.
    async with (
        RoomsSimulator(key=rooms_key, purge_after=0.1) as sim,
        RoomsClient(sim.url, rooms_key, timeout=1.0, retry_base=0.01) as client,
        PresenceManager(client, ping_interval=0.3, max_failures=2, on_lost=rooms_lost) as mgr,
    ):
        await mgr.join(join(), owner="dc:9")

        presence, error = await rooms_lost.wait()

        assert presence.owner == "dc:9"
        assert isinstance(error, RoomsRefused)
        assert error.api_message == "Customer is not in this room."
        assert [c.success for c in sim.calls_of("pingRoom")] == [False, False]
        assert mgr.presences() == []


async def test_a_transient_ping_failure_is_not_a_loss(
    rooms_presence, rooms_sim, rooms_lost, rooms_wait, caplog
):
    caplog.set_level(logging.INFO, logger="bot_plugins.rooms.presence")
    presence = await rooms_presence.join(join(), owner="tg:1")
    # 3 failures = one whole ping call (1 try + 2 retries); the limit is 2 calls in a row.
    rooms_sim.fail("http_error", times=3, functions={"pingRoom"})

    # The failed call is seen in the log, not by polling `failures`: on a loaded machine a
    # poll can miss the 50 ms in which it is 1.
    await rooms_wait(lambda: rooms_sim.members(21)[0].pings >= 2)
    assert [c.fault for c in rooms_sim.calls_of("pingRoom")][:3] == ["http_error"] * 3
    assert "rooms: ping 1/2 for performer 21 failed: 503" in caplog.text
    await rooms_wait(lambda: presence.failures == 0)

    assert rooms_lost.calls == []
    assert rooms_presence.get(21, "tg:1") is presence


async def test_leave_stops_the_pings(rooms_presence, rooms_sim):
    presence = await rooms_presence.join(join(customer=None), owner="tg:1")
    await asyncio.sleep(0.2)

    left = await rooms_presence.leave(21, owner="tg:1")
    pings_at_leave = len(rooms_sim.calls_of("pingRoom"))
    await asyncio.sleep(0.2)

    assert left is presence
    assert rooms_sim.members(21) == []
    assert pings_at_leave >= 1
    assert len(rooms_sim.calls_of("pingRoom")) == pings_at_leave
    assert rooms_sim.calls[-1].function == "leaveRoom"
    assert rooms_sim.calls[-1].fields["nickname"] == presence.display_nickname
    with pytest.raises(RoomsNotPresent):
        await rooms_presence.leave(21, owner="tg:1")


async def test_failed_leave_still_forgets_the_presence(rooms_presence, rooms_sim):
    await rooms_presence.join(join(), owner="tg:1")
    rooms_sim.fail("http_error", times=None, functions={"leaveRoom"})

    with pytest.raises(RoomsHTTPError):
        await rooms_presence.leave(21, owner="tg:1")

    assert rooms_presence.presences() == []


async def test_one_presence_per_performer_and_owner(rooms_presence, rooms_sim):
    first, second = await asyncio.gather(
        rooms_presence.join(join(), owner="tg:1"),
        rooms_presence.join(join(), owner="tg:1"),
        return_exceptions=True,
    )

    outcomes = sorted(type(o).__name__ for o in (first, second))
    assert outcomes == ["Presence", "RoomsAlreadyPresent"]
    assert len(rooms_sim.calls_of("joinRoom")) == 1
    assert len(rooms_sim.members(21)) == 1
    with pytest.raises(RoomsAlreadyPresent) as caught:
        await rooms_presence.join(join(), owner="tg:1")
    assert "already in performer 21's room" in caught.value.message


async def test_presences_per_owner_and_room(rooms_presence, rooms_sim):
    a = await rooms_presence.join(join(performer=21, customer=None), owner="tg:1")
    b = await rooms_presence.join(join(performer=22, customer=None), owner="tg:1")
    c = await rooms_presence.join(join(performer=21, nickname="amy", customer=None), owner="tg:2")

    assert rooms_presence.presences(owner="tg:1") == [a, b]
    assert rooms_presence.presences() == [a, b, c]
    assert a.display_nickname != c.display_nickname  # same nickname, two customers
    assert len(rooms_sim.members(21)) == 2


async def test_failed_join_tracks_nothing(rooms_presence, rooms_sim):
    rooms_sim.fail("malformed", times=1)

    with pytest.raises(RoomsError):
        await rooms_presence.join(join(), owner="tg:1")

    assert rooms_presence.presences() == []
    await rooms_presence.join(join(), owner="tg:1")  # and the key is free again
    assert len(rooms_presence) == 1


async def test_a_failing_lost_callback_does_not_stop_other_presences(rooms_client, rooms_sim):
    def explode(presence: Presence, error: RoomsError) -> None:
        raise RuntimeError("callback bug")

    async with PresenceManager(
        rooms_client, ping_interval=0.05, max_failures=1, on_lost=explode
    ) as manager:
        doomed = await manager.join(join(performer=21), owner="a")
        kept = await manager.join(join(performer=22), owner="b")
        await rooms_client.leave_room(doomed.leave_request())  # behind the manager's back
        await asyncio.sleep(0.3)

        assert manager.presences() == [kept]
        pings = rooms_sim.members(22)[0].pings
        await asyncio.sleep(0.2)
        assert rooms_sim.members(22)[0].pings > pings


# -- restart --------------------------------------------------------------------------------


async def test_record_round_trip():
    presence = Presence(
        performer_id=3,
        owner="tg:5",
        nickname="zoe",
        display_nickname="zoe_0042",
        customer_id=None,
        registered=False,
        credits=0,
        joined_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )

    assert Presence.from_record(presence.to_record()) == presence


@pytest.mark.parametrize(
    "damage",
    [{"performer_id": "x"}, {"owner": ""}, {"joined_at": "yesterday"}, {"display_nickname": None}],
)
async def test_damaged_record_is_refused(damage):
    record = {
        "performer_id": 3,
        "owner": "tg:5",
        "nickname": "zoe",
        "display_nickname": "zoe_0042",
        "customer_id": 9,
        "registered": True,
        "credits": 4,
        "joined_at": "2024-05-01T12:00:00+00:00",
    }

    with pytest.raises(RoomsInvalidRequest):
        Presence.from_record(record | damage)


async def _stored_presence(client: RoomsClient, owner: str) -> dict[str, object]:
    """A presence as a previous run of the bot would have stored it before it stopped."""
    request = join()
    result = await client.join_room(request)
    return Presence(
        performer_id=request.performer_id,
        owner=owner,
        nickname=request.nickname,
        display_nickname=result.nickname,
        customer_id=request.customer_id,
        registered=request.registered,
        credits=request.credits,
        joined_at=datetime.now(UTC),
    ).to_record()


async def test_restore_resumes_pinging_a_live_presence(rooms_client, rooms_sim, rooms_presence):
    record = await _stored_presence(rooms_client, "tg:1")

    presence = await rooms_presence.restore(Presence.from_record(record))
    await asyncio.sleep(rooms_sim.purge_after * 2)

    assert rooms_presence.get(21, "tg:1") is presence
    assert rooms_sim.members(21)[0].pings >= 5
    assert presence.joined_at.isoformat() == record["joined_at"]


async def test_restore_of_a_purged_presence_fails_cleanly(
    rooms_client, rooms_sim, rooms_presence, rooms_wait
):
    record = await _stored_presence(rooms_client, "tg:1")
    await rooms_wait(lambda: rooms_sim.members(21) == [])  # the bot was down too long

    with pytest.raises(RoomsRefused):
        await rooms_presence.restore(Presence.from_record(record))

    assert rooms_presence.presences() == []
    again = await rooms_presence.join(join(), owner="tg:1")  # the caller may join anew
    assert rooms_sim.members(21)[0].display_nickname == again.display_nickname


async def test_leave_records_leaves_stored_presences(rooms_client, rooms_sim, rooms_presence):
    live = Presence.from_record(await _stored_presence(rooms_client, "tg:1"))
    gone = Presence.from_record(
        {**live.to_record(), "performer_id": 99, "owner": "tg:2", "display_nickname": "x_1"}
    )

    results = await rooms_presence.leave_records([live, gone])

    assert results[0] == (live, None)
    assert results[1][0] is gone and isinstance(results[1][1], RoomsRefused)
    assert rooms_sim.rooms() == {}
    assert rooms_presence.presences() == []


# -- shutdown -------------------------------------------------------------------------------


async def test_close_leaves_every_presence(rooms_client, rooms_sim):
    manager = PresenceManager(rooms_client, ping_interval=0.05)
    for performer, owner in [(21, "a"), (21, "b"), (22, "a")]:
        await manager.join(join(performer=performer, customer=None), owner=owner)
    assert sum(len(m) for m in rooms_sim.rooms().values()) == 3

    results = await manager.close()

    assert [error for _, error in results] == [None, None, None]
    assert rooms_sim.rooms() == {}
    assert len(rooms_sim.calls_of("leaveRoom")) == 3
    assert await manager.close() == []
    with pytest.raises(RoomsUnavailable):
        await manager.join(join(), owner="c")
    pings = len(rooms_sim.calls_of("pingRoom"))
    await asyncio.sleep(0.15)
    assert len(rooms_sim.calls_of("pingRoom")) == pings


async def test_close_when_the_api_is_down_reports_and_returns(rooms_key):
    async with (
        RoomsSimulator(key=rooms_key) as sim,
        RoomsClient(sim.url, rooms_key, timeout=0.3, retry_base=0.01) as client,
    ):
        manager = PresenceManager(client, ping_interval=0.05)
        await manager.join(join(), owner="a")
        sim.fail("hang", times=None, hang=5.0)

        results = await manager.close(within=0.5)

        [(presence, error)] = results
        assert presence.owner == "a"
        assert isinstance(error, RoomsError)
        assert manager.presences() == []


def test_bad_manager_settings_are_refused():
    client = RoomsClient("http://127.0.0.1:9", "k")
    with pytest.raises(RoomsInvalidRequest):
        PresenceManager(client, ping_interval=0)
    with pytest.raises(RoomsInvalidRequest):
        PresenceManager(client, max_failures=0)


async def test_longest_nickname_keeps_working_with_the_api_suffix(rooms_presence, rooms_sim):
    presence = await rooms_presence.join(join(nickname="n" * 64), owner="tg:1")
    await asyncio.sleep(0.2)

    assert len(presence.display_nickname) == 69
    assert rooms_sim.members(21)[0].pings >= 1
    assert Presence.from_record(presence.to_record()).display_nickname == presence.display_nickname
    await rooms_presence.leave(21, owner="tg:1")
    assert rooms_sim.members(21) == []
