"""The ConcertPOS client against a flaky or hostile gateway (issue 14), over real websockets.

Replies lost once and then retried, stray error frames, a huge ``retry_after``, deeply nested
and oversized frames: each test would fail on the client before the fix it names.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from concertpos_support import ClientFactory

from bot_plugins.concertpos.client import ConcertPOSClient
from bot_plugins.concertpos.errors import ConcertPOSTimeout, OutcomeUnknown, RateLimited
from bot_plugins.concertpos.models import SaleItem
from bot_plugins.concertpos.simulator import ConcertPOSSimulator

STRAY_ERROR = '{"type":"error","result":{"error":"invalid_parameter","code":0}}'


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (up to 5 s, generous for a loaded machine) until ``condition()`` holds."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"timed out waiting until {what}")


async def arrived(sim: ConcertPOSSimulator, command: str, count: int) -> None:
    """Wait until the simulator has received ``count`` requests of ``command``."""
    await until(lambda: sim.command_counts[command] >= count, f"{command} #{count} arrived")


def bad_frame_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if "ignoring" in r.getMessage() and r.name.endswith("connection")
    ]


async def test_retries_after_an_unanswered_request_get_their_own_answers(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    """Item 2: the reply to a retry used to go to the abandoned request's placeholder, so
    every retry timed out and every sale read "may or may not be booked"."""
    client = await concertpos_client_factory(
        timeout=0.5, late_reply_grace=30.0, status_ttl=0, fetch_license=False
    )
    await client.list_products()
    await client.list_payment_methods()
    for round_ in range(4):
        concertpos_sim.skip_next["getstatus"] = 1
        with pytest.raises(ConcertPOSTimeout):
            await client.get_status(refresh=True)
        concertpos_sim.status = {"status": "success", "message": f"round {round_}"}
        assert (await client.get_status(refresh=True)).message == f"round {round_}"

        booked = len(concertpos_sim.transactions)
        concertpos_sim.skip_next["payitems"] = 1
        with pytest.raises(OutcomeUnknown):
            await client.pay_items([SaleItem(4, 1)], 1)
        assert len(concertpos_sim.transactions) == booked + 1  # booked; the reply was lost
        sale = await client.pay_items([SaleItem(5, round_ + 1)], 1)
        assert sale.items_booked == round_ + 1  # its own answer, not the lost one's
        assert len(concertpos_sim.transactions) == booked + 2
    assert concertpos_sim.command_counts["payitems"] == 8  # each sent once, never resent


async def test_a_placeholder_with_no_reply_is_recycled_after_the_grace(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    """The resynchronisation check still fires on its own when nobody retries."""
    client = await concertpos_client_factory(timeout=0.3, late_reply_grace=0.3)
    concertpos_sim.skip_next["version"] = 1
    with pytest.raises(ConcertPOSTimeout):
        await client.version()
    for _ in range(100):
        if client.state().reconnects == 1 and client.connected:
            break
        await asyncio.sleep(0.02)
    assert client.state().reconnects == 1
    assert await client.version(refresh=True) == "1.0.1"


async def test_a_retry_never_waits_behind_a_request_in_flight_elsewhere(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    """A recycle drains: a slow request of another event still gets its reply."""
    client = await concertpos_client_factory(timeout=1.5, late_reply_grace=30.0, status_ttl=0)
    concertpos_sim.skip_next["getstatus"] = 1
    with pytest.raises(ConcertPOSTimeout):
        await client.get_status()
    concertpos_sim.delays["listtransactions"] = 0.3
    listing = asyncio.create_task(client.list_transactions(limit=2))
    await arrived(concertpos_sim, "listtransactions", 1)
    status = await client.get_status(refresh=True)  # waits for the drain, then a new socket
    assert status.ok
    assert len((await listing).transactions) == 2
    assert client.state().reconnects == 1


async def test_a_stray_error_during_a_sale_leaves_it_unknown_not_refused(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    """Item 4: an error naming no request used to fail the waiting sale as refused."""
    client = await concertpos_client_factory(timeout=2.0)
    await client.list_products()
    await client.list_payment_methods()
    booked = len(concertpos_sim.transactions)
    concertpos_sim.delays["payitems"] = 0.4
    sale = asyncio.create_task(client.pay_items([SaleItem(4, 1)], 1))
    await arrived(concertpos_sim, "payitems", 1)
    await concertpos_sim.send_raw(STRAY_ERROR)
    with pytest.raises(OutcomeUnknown, match=r"error \(invalid_parameter\) that may not be"):
        await sale
    await asyncio.sleep(0.5)  # the booked sale's own reply arrives and answers nobody
    assert len(concertpos_sim.transactions) == booked + 1
    concertpos_sim.delays.clear()
    assert (await client.get_status(refresh=True)).ok
    assert (await client.pay_items([SaleItem(5, 1)], 1)).items_booked == 1


async def test_a_stray_error_with_several_requests_in_flight_fails_none(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    client = await concertpos_client_factory(timeout=2.0)
    concertpos_sim.delays.update({"listtransactions": 0.3, "getconfig": 0.3})
    calls = asyncio.gather(client.list_transactions(limit=1), client.get_config())
    await arrived(concertpos_sim, "listtransactions", 1)
    # both are out and waiting (the simulator reads getconfig only after answering the first)
    await until(lambda: len(client._connection._in_order) == 2, "both requests are in flight")
    await concertpos_sim.send_raw(STRAY_ERROR)
    listing, config = await calls
    assert len(listing.transactions) == 1 and config.values["currency"] == "EUR"
    assert client._connection.stray_errors == 1


async def test_a_huge_retry_after_is_capped_and_logged(
    concertpos_client_factory: ClientFactory,
    concertpos_sim: ConcertPOSSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 5: 86,400,000 ms used to block the plugin for a day, 1e308 ms for ever."""
    client = await concertpos_client_factory(timeout=3.0, max_retry_after=0.5, status_ttl=0)
    for asked in ("86400000", "1e308", "1e999"):
        concertpos_sim.delays["getstatus"] = 0.3
        asked_before = concertpos_sim.command_counts["getstatus"]
        status = asyncio.create_task(client.get_status(refresh=True))
        await arrived(concertpos_sim, "getstatus", asked_before + 1)
        await concertpos_sim.send_raw(
            '{"type":"error","result":{"error":"ratelimit",'
            f'"code":{{"command":"getstatus","retry_after":{asked}}}}}}}'
        )
        with pytest.raises(RateLimited, match=r"try again in 1 s") as caught:
            await status
        assert caught.value.retry_after == 0.5
        await asyncio.sleep(0.4)  # the status reply of the old request arrives: set aside
        concertpos_sim.delays.clear()
        started = time.monotonic()
        assert (await client.get_status(refresh=True)).ok  # after the capped pause only
        assert time.monotonic() - started < 2.5
    logged = [r.getMessage() for r in caplog.records if "asked for" in r.getMessage()]
    assert any("asked for 86400 s" in m for m in logged), logged
    assert any("asked for ever" in m for m in logged), logged


async def test_a_reconnect_does_not_keep_a_long_pause(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    client = await concertpos_client_factory(timeout=2.0, max_retry_after=120.0, status_ttl=0)
    concertpos_sim.delays["getstatus"] = 0.3
    status = asyncio.create_task(client.get_status(refresh=True))
    await arrived(concertpos_sim, "getstatus", 1)
    await concertpos_sim.send_raw(
        '{"type":"error","result":{"error":"ratelimit",'
        '"code":{"command":"getstatus","retry_after":100000}}}'
    )
    with pytest.raises(RateLimited):
        await status
    await concertpos_sim.drop_connections()
    for _ in range(100):
        if client.state().reconnects == 1 and client.connected:
            break
        await asyncio.sleep(0.02)
    concertpos_sim.delays.clear()
    assert (await client.get_status(refresh=True)).ok  # one window (0.6 s), not 100 s


async def test_bad_frames_cost_one_log_line_each_and_no_traceback(
    concertpos_client: ConcertPOSClient,
    concertpos_sim: ConcertPOSSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 7: a deeply nested frame used to log a traceback per frame."""
    caplog.set_level(logging.INFO, logger="bot_plugins.concertpos")
    frames = [
        "[" * 100_000 + "]" * 100_000,
        '{"type":"event","result":' + '{"a":' * 5000 + "1" + "}" * 5000 + "}",
        "not json",
        "[1, 2]",
        '{"type":"event","result":"flat"}',
        '{"type":"mystery","result":{}}',
    ]
    for frame in frames:
        await concertpos_sim.send_raw(frame)
    assert (await concertpos_client.get_status()).ok
    lines = bad_frame_lines(caplog)
    assert len(lines) == len(frames), [r.getMessage() for r in lines]
    assert all(r.exc_info is None and r.levelno == logging.WARNING for r in lines)
    assert "nested deeper than 32 levels" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert concertpos_client.state().reconnects == 0
    assert concertpos_client.state().bad_frames == len(frames)


async def test_an_oversized_frame_drops_only_the_connection(
    concertpos_client_factory: ClientFactory, concertpos_sim: ConcertPOSSimulator
) -> None:
    client = await concertpos_client_factory(max_frame=64 * 1024)
    await concertpos_sim.send_raw(
        '{"type":"broadcast","result":{"message":"' + "x" * 100_000 + '"}}'
    )
    for _ in range(100):
        if client.state().reconnects == 1 and client.connected:
            break
        await asyncio.sleep(0.02)
    assert client.state().reconnects == 1
    assert client._connection.bad_frames == 1
    assert (await client.get_deposit()).price == Decimal(2)
