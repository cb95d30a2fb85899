"""From the client's events to chat alerts: the topic, and bursts gathered per game.

A close can publish a 362 or 368 for every pool of a game within milliseconds, and a busy game
sees several joins at once. The core's router already merges what reaches one chat in its
window into one message, but as a list of lines; gathering per game first lets one line say
"3 pools resolved: A, B and C" instead of three lines saying almost the same thing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from bot import Topic

from .events import GameEvent

log = logging.getLogger(__name__)

TOPIC = "games.events"


def matches_game(filter: str, text: str, data: dict[str, Any]) -> bool:
    """A subscription's filter is the id of the game the chat joined."""
    return str(data.get("game_id", "")).lower() == filter.strip().lower()


def games_topic() -> Topic:
    return Topic(
        TOPIC,
        "Live events of the games this chat joined with game join <id>: joins and leaves, "
        "changed details, resolved or blocked pools, the game closing.",
        matches=matches_game,
    )


Deliver = Callable[[str, list[GameEvent]], None]


class EventBatcher:
    """Gathers each game's events for ``window`` seconds, then hands them on together.

    ``deliver(game_id, events)`` is called once per burst, in arrival order; with a window of
    0 every event is handed on at once. Synchronous on purpose: the client calls listeners from
    its frame reader, and events must keep their order.
    """

    def __init__(self, window: float, deliver: Deliver) -> None:
        self.window = window
        self._deliver = deliver
        self._pending: dict[str, list[GameEvent]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def add(self, event: GameEvent) -> None:
        self._pending.setdefault(event.game_id, []).append(event)
        if self.window <= 0:
            self.flush(event.game_id)
        elif event.game_id not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[event.game_id] = loop.call_later(self.window, self.flush, event.game_id)

    def flush(self, game_id: str) -> None:
        timer = self._timers.pop(game_id, None)
        if timer is not None:
            timer.cancel()
        events = self._pending.pop(game_id, [])
        if not events:
            return
        try:
            self._deliver(game_id, events)
        except Exception:
            log.exception("games: could not deliver the alerts of a game")

    def flush_all(self) -> None:
        for game_id in list(self._pending):
            self.flush(game_id)

    def close(self) -> None:
        """Forget what is pending (used at shutdown, when nothing can be delivered)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending.clear()

    @property
    def pending(self) -> int:
        return sum(len(events) for events in self._pending.values())
