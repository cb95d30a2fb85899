"""The ParcelTrack client against its simulator, over a real websocket."""

from __future__ import annotations

import asyncio

import pytest
from bot_ext_parcels.client import MAX_WATCHES, MESSAGES, Parcel, ParcelClient, ParcelError
from bot_ext_parcels.simulator import ParcelSimulator

from bot import ServiceTimeout, UserError


async def test_track_returns_a_typed_parcel(parcel_client: ParcelClient) -> None:
    assert await parcel_client.track(" px-1001 ") == Parcel("PX-1001", "in_transit", "Leeds depot")


async def test_refusals_carry_the_api_code_and_a_plain_sentence(
    parcel_client: ParcelClient,
) -> None:
    with pytest.raises(ParcelError) as caught:
        await parcel_client.track("PX-9999")
    assert caught.value.code == "unknown_parcel"
    assert caught.value.message == MESSAGES["unknown_parcel"]


async def test_bad_ids_are_refused_before_anything_is_sent(
    parcel_client: ParcelClient, parcel_sim: ParcelSimulator
) -> None:
    for bad in ("", "1001", "PX1001", "PX-12", "PX-1001|watch", "PX-1001\nPX-1002"):
        with pytest.raises(UserError):
            await parcel_client.track(bad)
    assert parcel_sim.requests == [{"id": 0, "op": "hello", "key": "***"}]


async def test_pushes_arrive_for_watched_parcels_only(
    parcel_client: ParcelClient, parcel_sim: ParcelSimulator
) -> None:
    assert (await parcel_client.watch("PX-1003")).status == "label_created"
    assert await parcel_sim.move("PX-1003", "in_transit", "Hub A") == 1
    assert await parcel_sim.move("PX-1001", "delivered", "porch") == 0
    await parcel_client.track("PX-1001")  # a round trip: the push came before its reply
    assert parcel_client.moves == [Parcel("PX-1003", "in_transit", "Hub A")]  # type: ignore[attr-defined]


async def test_watches_are_sent_again_after_a_reconnect(
    parcel_client: ParcelClient, parcel_sim: ParcelSimulator
) -> None:
    await parcel_client.watch("PX-1003")
    await parcel_sim.drop_connections()
    await parcel_client.wait_connected(2.0)
    await parcel_client.track("PX-1001")  # now surely on the new connection, watches re-sent
    assert await parcel_sim.move("PX-1003", "delivered", "front door") == 1


async def test_the_watch_limit_is_enforced_on_our_side(
    parcel_client: ParcelClient, parcel_sim: ParcelSimulator
) -> None:
    parcel_client.watched.update(f"PX-{2000 + n}" for n in range(MAX_WATCHES))
    sent = len(parcel_sim.requests)
    with pytest.raises(ParcelError) as caught:
        await parcel_client.watch("PX-1001")
    assert caught.value.code == "too_many_watches"
    assert len(parcel_sim.requests) == sent


async def test_a_silent_api_times_out(
    parcel_client: ParcelClient, parcel_sim: ParcelSimulator
) -> None:
    parcel_sim.silent = True
    parcel_client.timeout = 0.2
    with pytest.raises(ServiceTimeout):
        await parcel_client.track("PX-1001")


async def test_a_wrong_key_is_reported_but_never_shown(parcel_sim: ParcelSimulator) -> None:
    client = ParcelClient(parcel_sim.url, "wrong-key-123", timeout=1.0, reconnect_base=0.02)
    task = asyncio.create_task(client.run())
    try:
        with pytest.raises(ServiceTimeout):
            await client.wait_connected(0.3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert client.last_error == MESSAGES["bad_key"]
    assert "wrong-key-123" not in client.last_error
