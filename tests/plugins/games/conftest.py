"""Fixtures for the games plugin: a simulator on a free port and clients connected to it.

Intervals are short so a whole file runs in a few seconds; later phases (chat commands) reuse
``games_sim``, ``make_games_client`` and ``games_client``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot_plugins.games.client import GamesClient
from bot_plugins.games.models import Game, NewGame
from bot_plugins.games.simulator import DEFAULT_ADMIN_KEY, DEFAULT_PLAYER_KEY, GamesSimulator
from bot_plugins.games.testing import FAST_CLIENT, MakeClient


@pytest.fixture
async def games_sim() -> AsyncIterator[GamesSimulator]:
    async with GamesSimulator(seed=7) as sim:
        yield sim


@pytest.fixture
async def make_games_client(games_sim: GamesSimulator) -> AsyncIterator[MakeClient]:
    """Connect further clients (another bot, a third party) to ``games_sim``."""
    clients: list[GamesClient] = []

    async def make(session_key: str = DEFAULT_ADMIN_KEY, **overrides: Any) -> GamesClient:
        client = GamesClient(
            games_sim.url, session_key, games_sim.source_id, **{**FAST_CLIENT, **overrides}
        )
        clients.append(client)
        await client.connect()
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def games_client(make_games_client: MakeClient) -> GamesClient:
    """A connected client whose session is a source admin."""
    return await make_games_client(DEFAULT_ADMIN_KEY)


@pytest.fixture
async def games_player(make_games_client: MakeClient) -> GamesClient:
    """A connected client whose session is an ordinary player (a third party)."""
    return await make_games_client(DEFAULT_PLAYER_KEY)


@pytest.fixture
async def open_game(games_client: GamesClient) -> Game:
    """An open football game on which ``games_client`` is a game admin."""
    game = await games_client.create_and_open_game(
        NewGame(
            name="Argentina - Brazil",
            type="football",
            actions=["Goal", "Offside"],
            targets=["Argentina", "Brazil", "Argentina:1", "Argentina:2", "Brazil:7"],
            currency="EUR",
        )
    )
    await games_client.become_admin(game.game_id)
    return game
