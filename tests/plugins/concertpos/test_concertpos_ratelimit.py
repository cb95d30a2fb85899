"""The rate budget on its own: strict windows, FIFO reservations, refusals, refunds."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot_plugins.concertpos.errors import BudgetExhausted
from bot_plugins.concertpos.ratelimit import RateBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_wait_time_reads_the_window_strictly() -> None:
    clock = FakeClock()
    budget = RateBudget(100, 30.0, margin=1.0, clock=clock)
    assert budget.wait_time(100) == 0
    await budget.acquire(60, max_wait=0)
    clock.now += 10
    await budget.acquire(40, max_wait=0)
    # full: 25 points fit only once the 60 leave, 31 s (window + margin) after they were spent
    assert budget.wait_time(25) == pytest.approx(21.0)
    # 70 points need the 40 gone as well (both would sit in one 30 s span otherwise)
    assert budget.wait_time(70) == pytest.approx(31.0)
    clock.now += 21.5
    assert budget.wait_time(60) == 0
    assert budget.snapshot().used == 40


async def test_acquire_waits_in_order_and_never_overspends_a_window() -> None:
    budget = RateBudget(100, 0.3, margin=0.0)
    sent: list[tuple[float, int]] = []

    async def spend(points: int) -> None:
        grant = await budget.acquire(points, max_wait=5, command="x")
        sent.append((time.monotonic(), points))
        budget.mark_sent(grant)

    await asyncio.gather(*(spend(p) for p in [50, 40, 30, 20, 60, 10, 45, 35]))
    assert [p for _, p in sent] == [50, 40, 30, 20, 60, 10, 45, 35]  # first come, first served
    for at, _ in sent:
        inside = sum(p for t, p in sent if at - 0.3 < t <= at)
        assert inside <= 100


async def test_refusal_reserves_nothing_and_cancellation_refunds() -> None:
    budget = RateBudget(100, 5.0, margin=0.0)
    await budget.acquire(90, max_wait=0)
    with pytest.raises(BudgetExhausted) as caught:
        await budget.acquire(20, max_wait=0.1, command="getstatus")
    assert caught.value.command == "getstatus" and 4.5 < caught.value.retry_after <= 5
    assert "try again in 5 s" in caught.value.message
    assert budget.snapshot().used == 90
    short = RateBudget(100, 0.4, margin=0.0)
    await short.acquire(100, max_wait=0)
    waiter = asyncio.create_task(short.acquire(50, max_wait=2))
    await asyncio.sleep(0.05)
    assert short.snapshot().used == 150  # reserved while waiting
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert short.snapshot().used == 100


def test_pause_holds_everything_back_and_bad_sizes_are_refused() -> None:
    clock = FakeClock()
    budget = RateBudget(100, 30.0, margin=0.0, clock=clock)
    budget.pause(2.5)
    assert budget.wait_time(1) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="more than the whole budget"):
        asyncio.run(budget.acquire(101, max_wait=1))
    with pytest.raises(ValueError):
        RateBudget(0, 30.0)
