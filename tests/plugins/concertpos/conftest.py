"""Fixtures for ConcertPOS tests: a two-shard simulator on free ports and connected clients.

Later phases (the chat commands) reuse these, so every name starts with ``concertpos_``.
The rate window is shortened to tenths of a second so tests can run the budget through
several windows quickly, and timeouts and reconnects are fast; the points per command stay
the documented ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from concertpos_support import CONCERTPOS_API_KEY, CONCERTPOS_INSTANCE, FAST, WINDOW, ClientFactory

from bot_plugins.concertpos.client import ConcertPOSClient
from bot_plugins.concertpos.simulator import ConcertPOSSimulator


@pytest.fixture
async def concertpos_sim() -> AsyncIterator[ConcertPOSSimulator]:
    """A running simulator with shards ``exon`` and ``cyton`` on 127.0.0.1 (free ports)."""
    async with ConcertPOSSimulator(
        instance=CONCERTPOS_INSTANCE,
        api_key=CONCERTPOS_API_KEY,
        shards=("exon", "cyton"),
        rate_window=WINDOW,
    ) as sim:
        yield sim


@pytest.fixture
async def concertpos_client_factory(
    concertpos_sim: ConcertPOSSimulator,
) -> AsyncIterator[ClientFactory]:
    """``await factory(urls=None, api_key=None, start=True, **overrides)``: a client for the
    simulator (its first shard by default), closed when the test ends."""
    clients: list[ConcertPOSClient] = []

    async def make(
        urls: list[str] | None = None,
        api_key: str | None = None,
        start: bool = True,
        **overrides: Any,
    ) -> ConcertPOSClient:
        client = ConcertPOSClient(
            urls or [concertpos_sim.url],
            api_key or CONCERTPOS_API_KEY,
            **{**FAST, **overrides},
        )
        clients.append(client)
        if start:
            assert await client.start(), "the client did not connect to the simulator"
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def concertpos_client(concertpos_client_factory: ClientFactory) -> ConcertPOSClient:
    """A client connected to the simulator's first shard, license already fetched."""
    return await concertpos_client_factory()
