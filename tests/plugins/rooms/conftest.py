"""Fixtures for the rooms plugin: a simulator on a free port and clients connected to it.

Later phases (chat commands) reuse these; the intervals are short so keep-alive and purging
show up within a fraction of a second instead of the API's 10 seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.errors import ServiceError
from bot_plugins.rooms.client import RoomsClient
from bot_plugins.rooms.presence import Presence, PresenceManager
from bot_plugins.rooms.simulator import RoomsSimulator

ROOMS_KEY = "test-key-Zx9!q"
PURGE_AFTER = 0.5
PING_INTERVAL = 0.05


class LostRecorder:
    """An ``on_lost`` callback that remembers each call and lets a test await the first."""

    def __init__(self) -> None:
        self.calls: list[tuple[Presence, ServiceError]] = []
        self.event = asyncio.Event()

    async def __call__(self, presence: Presence, error: ServiceError) -> None:
        self.calls.append((presence, error))
        self.event.set()

    async def wait(self, within: float = 5.0) -> tuple[Presence, ServiceError]:
        async with asyncio.timeout(within):
            await self.event.wait()
        return self.calls[0]


WaitUntil = Callable[..., Awaitable[None]]


async def _wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    # Polling is the point: the state lives in the simulator, which has no events to await.
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.fixture
def rooms_key() -> str:
    return ROOMS_KEY


@pytest.fixture
def rooms_wait() -> WaitUntil:
    """``await rooms_wait(lambda: cond, within=5.0)``: poll until true, else TimeoutError."""
    return _wait_until


@pytest.fixture
async def rooms_sim() -> AsyncIterator[RoomsSimulator]:
    async with RoomsSimulator(key=ROOMS_KEY, purge_after=PURGE_AFTER, seed=7) as sim:
        yield sim


@pytest.fixture
async def rooms_client(rooms_sim: RoomsSimulator) -> AsyncIterator[RoomsClient]:
    client = RoomsClient(
        rooms_sim.url, ROOMS_KEY, timeout=1.0, retries=2, retry_base=0.01, retry_cap=0.05
    )
    async with client:
        yield client


@pytest.fixture
def rooms_lost() -> LostRecorder:
    return LostRecorder()


@pytest.fixture
async def rooms_presence(
    rooms_client: RoomsClient, rooms_lost: LostRecorder
) -> AsyncIterator[PresenceManager]:
    manager = PresenceManager(
        rooms_client,
        ping_interval=PING_INTERVAL,
        max_failures=2,
        ping_timeout=1.0,
        on_lost=rooms_lost,
    )
    async with manager:
        yield manager
