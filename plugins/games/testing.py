"""Helpers for tests of the games plugin (used by tests/plugins/games).

An :class:`EventRecorder` is an ordinary client listener that keeps every event and lets a
test wait for the one it expects, with a short deadline instead of sleeps. :func:`games_bot`
runs the whole bot (the core's test harness) with the plugin pointed at a simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from .client import GamesClient
from .events import GameEvent
from .simulator import DEFAULT_ADMIN_KEY, GamesSimulator

if TYPE_CHECKING:
    from bot.testing import BotHarness, SentAlert

E = TypeVar("E", bound=GameEvent)

# Client settings for tests: short enough that a lost reply or a reconnect shows within a
# second, long enough for a loaded two-core machine.
FAST_CLIENT: dict[str, Any] = {
    "timeout": 2.0,
    "connect_timeout": 3.0,
    "ping_interval": 5.0,
    "close_settle": 0.2,
    "error_grace": 0.05,
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


# ---------------------------------------------------------------- the whole bot

#: the admin user id :func:`games_bot` configures on the console and Telegram platforms
ADMIN = "boss"


def games_section(sim: GamesSimulator, **extra: Any) -> dict[str, Any]:
    """The plugin's config section for ``sim``, with intervals short enough for tests."""
    return {
        "url": sim.url,
        "source_id": sim.source_id,
        "session_key": DEFAULT_ADMIN_KEY,
        "timeout": 2.0,
        "connect_timeout": 3.0,
        "close_settle": 0.2,
        "error_grace": 0.05,
        "alert_coalesce": 0.05,
        **extra,
    }


@asynccontextmanager
async def games_bot(
    bot_harness: Callable[..., BotHarness],
    sim: GamesSimulator,
    section: dict[str, Any] | None = None,
    **harness: Any,
) -> AsyncIterator[BotHarness]:
    """A running bot whose games client is connected: start-up itself does not wait for it,
    so a test would otherwise race the first connection."""
    harness.setdefault("admins", {"console": [ADMIN], "telegram": [ADMIN]})
    plugins = {"games": games_section(sim, **(section or {}))}
    async with bot_harness(plugins=plugins, **harness) as bot:
        await bot.client("games").wait_ready()
        yield bot


def alert_lines(bot: BotHarness, chat_id: str, platform: str = "console") -> list[str]:
    """Every alert line delivered to one chat (the router joins a burst into one message)."""
    return [
        line
        for alert in bot.alerts_sent
        if (alert.platform, alert.chat_id) == (platform, chat_id)
        for line in alert.text.splitlines()
    ]


async def alert_in(
    bot: BotHarness, chat_id: str, needle: str, platform: str = "console", within: float = 3.0
) -> SentAlert:
    """The first alert to this chat containing ``needle``, waiting for it if need be."""

    def wanted(alert: SentAlert) -> bool:
        return (alert.platform, alert.chat_id) == (platform, chat_id) and needle in alert.text

    return await bot.wait_for_alert(wanted, timeout=within)


async def settle(bot: BotHarness, seconds: float = 0.25) -> None:
    """Give late or duplicate frames time to arrive, then deliver what was gathered."""
    await asyncio.sleep(seconds)
    await bot.flush_alerts()
