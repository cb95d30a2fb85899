"""Fixtures for DeepBot tests: a simulator on a free port and clients connected to it.

Later phases (the chat commands) reuse these, so they are named ``deepbot_*`` to stay clear
of other plugins' fixtures. Timings are short so a silent server or a reconnect costs tenths
of a second, not the production defaults of seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from bot_plugins.deepbot.client import DeepBotClient
from bot_plugins.deepbot.simulator import DeepBotSimulator, SimUser

DEEPBOT_SECRET = "test-secret-7f3a9c"

#: Client timings for tests: fast timeouts and reconnects.
FAST: dict[str, Any] = {
    "timeout": 1.0,
    "late_reply_grace": 0.3,
    "reconnect_base": 0.02,
    "reconnect_cap": 0.1,
    "ping_interval": None,
}


def viewers() -> list[SimUser]:
    """Alice (a regular), Bob (a few points) and Carol (none), besides the doc's example."""
    return [
        SimUser("Alice", points=Decimal(500), watch_minutes=Decimal(6000)),
        SimUser("Bob", points=Decimal(100), watch_minutes=Decimal(90)),
        SimUser("Carol", points=Decimal(0), watch_minutes=Decimal(0)),
    ]


@pytest.fixture
def deepbot_secret() -> str:
    return DEEPBOT_SECRET


@pytest.fixture
async def deepbot_sim(deepbot_secret: str) -> AsyncIterator[DeepBotSimulator]:
    """A running simulator on 127.0.0.1 and a free port, seeded with :func:`viewers`."""
    async with DeepBotSimulator(secret=deepbot_secret, users=viewers()) as sim:
        yield sim


@pytest.fixture
async def deepbot_client_factory(
    deepbot_sim: DeepBotSimulator, deepbot_secret: str
) -> AsyncIterator[Callable[..., Awaitable[DeepBotClient]]]:
    """Make connected clients with test timings (overridable); all closed afterwards."""
    clients: list[DeepBotClient] = []

    async def make(*, secret: str | None = None, connect: bool = True, **options: Any):
        client = DeepBotClient(deepbot_sim.url, secret or deepbot_secret, **{**FAST, **options})
        clients.append(client)
        if connect:
            await client.connect()
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def deepbot_client(
    deepbot_client_factory: Callable[..., Awaitable[DeepBotClient]],
) -> DeepBotClient:
    """A client registered with :func:`deepbot_sim`."""
    return await deepbot_client_factory()
