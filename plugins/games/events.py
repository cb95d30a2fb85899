"""Events the games API pushes to a game's subscribers, as typed values.

The alert layer turns these into chat messages; the client only decides which frames are
events and drops the duplicates the API is known to send (see ``client.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BadReply
from .models import GameDetails, PoolInfo, api_text, read_details, read_pool, require_game_id
from .wire import (
    RES_BETTING_BLOCKED,
    RES_CLOSED,
    RES_DETAILS,
    RES_POOL_RESOLVED,
    RES_USER_JOINED,
    RES_USER_LEFT,
    read_id,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GameEvent:
    """Base of every event: all of them concern one game."""

    game_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserJoined(GameEvent):
    """Someone joined the game (470)."""

    user_id: str
    user_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserLeft(GameEvent):
    """Someone left the game (480)."""

    user_id: str
    user_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DetailsChanged(GameEvent):
    """The game's details were published again (342), normally after an update."""

    details: GameDetails


@dataclass(frozen=True, slots=True, kw_only=True)
class GameClosed(GameEvent):
    """The game closed for good (341); it can no longer be joined."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolResolved(GameEvent):
    """A betting pool of the game was resolved (362)."""

    pool: PoolInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class BettingBlocked(GameEvent):
    """Betting in a pool was blocked; it waits for manual resolution (368)."""

    pool: PoolInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class RejoinFailed(GameEvent):
    """Not from the API: after a reconnect the game could not be joined again, so its alerts
    stopped. Raised as an event because no caller is waiting when it happens."""

    reason: str


def read_event(res: int, message: Mapping[str, Any]) -> GameEvent | None:
    """The event a pushed frame carries, or None when it is no event or is unreadable."""
    try:
        game_id = require_game_id(message)
        if res in (RES_USER_JOINED, RES_USER_LEFT):
            user_id = read_id(message.get("user_id")) or ""
            user_name = api_text(message.get("user_name"), 100) or user_id or "someone"
            kind = UserJoined if res == RES_USER_JOINED else UserLeft
            return kind(game_id=game_id, user_id=user_id, user_name=user_name)
        if res == RES_DETAILS:
            return DetailsChanged(game_id=game_id, details=read_details(message))
        if res == RES_CLOSED:
            return GameClosed(game_id=game_id)
        if res == RES_POOL_RESOLVED:
            return PoolResolved(game_id=game_id, pool=read_pool(message))
        if res == RES_BETTING_BLOCKED:
            return BettingBlocked(game_id=game_id, pool=read_pool(message))
    except BadReply:
        return None
    return None
