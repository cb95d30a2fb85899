"""Helpers for tests of the games plugin (used by tests/plugins/games and later phases).

An :class:`EventRecorder` is an ordinary client listener that keeps every event and lets a
test wait for the one it expects, with a short deadline instead of sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .client import GamesClient
from .events import GameEvent

E = TypeVar("E", bound=GameEvent)

# Client settings for tests: short enough that a lost reply or a reconnect shows within a
# second, long enough for a loaded two-core machine.
FAST_CLIENT: dict[str, Any] = {
    "timeout": 2.0,
    "connect_timeout": 3.0,
    "ping_interval": 5.0,
    "close_settle": 0.2,
    "reconnect_base": 0.02,
    "reconnect_cap": 0.2,
}

# The ``make_games_client`` fixture: ``await make(session_key, **client_overrides)``.
MakeClient = Callable[..., Awaitable[GamesClient]]


class EventRecorder:
    """Records the events one client publishes."""

    def __init__(self, client: GamesClient) -> None:
        self.events: list[GameEvent] = []
        self._changed = asyncio.Event()
        self.remove = client.add_listener(self._record)

    def _record(self, event: GameEvent) -> None:
        # Synchronous on purpose: events are kept in the order the client published them.
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type[E], game_id: str | None = None) -> list[E]:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (game_id is None or e.game_id == game_id)
        ]

    async def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] = lambda _e: True,
        *,
        within: float = 3.0,
    ) -> E:
        """The first recorded event of ``kind`` matching ``predicate``, waiting if need be."""

        def found() -> E | None:
            return next((e for e in self.of(kind) if predicate(e)), None)

        async with asyncio.timeout(within):
            while (event := found()) is None:
                self._changed.clear()
                await self._changed.wait()
        return event


async def eventually(predicate: Callable[[], bool], *, within: float = 3.0) -> None:
    """Wait until ``predicate()`` holds, for state no event announces (connection counts)."""
    step = 0.01
    for _ in range(max(1, int(within / step))):
        if predicate():
            return
        await asyncio.sleep(step)
    raise TimeoutError(f"condition not met within {within} s")
