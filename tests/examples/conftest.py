"""Fixtures for the tutorial's plugin, ``examples/parcels``.

The plugin lives in a plugin directory, so it is imported the way ``bot.plugin_dirs`` imports
it (as ``bot_ext_parcels``); the simulator listens on a real socket on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.testing import import_plugin_directory

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
import_plugin_directory(EXAMPLES / "parcels")

from bot_ext_parcels.client import ParcelClient  # noqa: E402
from bot_ext_parcels.simulator import ParcelSimulator  # noqa: E402

if TYPE_CHECKING:
    from bot.testing import BotHarness

KEY = "test-key"
#: client options for tests: a silent API or a reconnect costs tenths of a second
FAST: dict[str, Any] = {"timeout": 1.0, "reconnect_base": 0.02, "reconnect_cap": 0.1}


@pytest.fixture
async def parcel_sim() -> AsyncIterator[ParcelSimulator]:
    async with ParcelSimulator(key=KEY) as sim:
        yield sim


@pytest.fixture
async def parcel_client(parcel_sim: ParcelSimulator) -> AsyncIterator[ParcelClient]:
    """A logged-in client that records the pushes it receives in ``client.moves``."""
    client = ParcelClient(parcel_sim.url, KEY, **FAST)
    client.moves = []  # type: ignore[attr-defined]
    client.on_moved = client.moves.append  # type: ignore[attr-defined]
    task = asyncio.create_task(client.run())
    await client.wait_connected(2.0)
    yield client
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def parcels_bot(bot_harness: Callable[..., BotHarness]) -> Callable[..., BotHarness]:
    """``parcels_bot(url=..., key=...)``: a test bot running only the parcels plugin."""

    def make(**section: Any) -> BotHarness:
        return bot_harness(
            plugins={"parcels": section}, config={"bot": {"plugin_dirs": [str(EXAMPLES)]}}
        )

    return make
