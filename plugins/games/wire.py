"""The games API's numeric codes and the small conversions both ends of the wire share.

Kept apart from the client and the simulator so the two agree on the codes by construction,
while each keeps its own logic (the simulator must not inherit the client's mistakes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

# Operation codes (requests).
OP_PING = 1
OP_GET_OPCODES = 2
OP_CREATE_AND_OPEN = 370
OP_CREATE = 3701
OP_OPEN = 3702
OP_BECOME_ADMIN = 616
OP_GET_DETAILS = 372
OP_UPDATE = 373
OP_JOIN = 363
OP_LEAVE = 364
OP_CLOSE = 375
OP_LIST = 380

# Response codes (replies and published events).
RES_PONG = 1
RES_OPCODES = 2
RES_CREATED_AND_OPENED = 340
RES_CREATED = 3401
RES_OPENED = 3402
RES_ADMIN_OK = 640
RES_ADMIN_REFUSED = 645
RES_DETAILS = 342
RES_UPDATED = 343
RES_JOINED = 333
RES_LEFT = 334
RES_CLOSED = 341
RES_LIST = 345
RES_USER_JOINED = 470
RES_USER_LEFT = 480
RES_POOL_RESOLVED = 362
RES_BETTING_BLOCKED = 368
RES_ERROR = 666

OP_NAMES: dict[int, str] = {
    OP_PING: "ping",
    OP_GET_OPCODES: "get_opcodes",
    OP_CREATE_AND_OPEN: "create_and_open_game",
    OP_CREATE: "create_game",
    OP_OPEN: "open_game",
    OP_BECOME_ADMIN: "become_an_admin_for_game",
    OP_GET_DETAILS: "get_game_details",
    OP_UPDATE: "update_game_details",
    OP_JOIN: "join_game",
    OP_LEAVE: "leave_game",
    OP_CLOSE: "close_game",
    OP_LIST: "list_games_for_source",
}

RES_NAMES: dict[int, str] = {
    RES_PONG: "pong",
    RES_OPCODES: "opcodes",
    RES_CREATED_AND_OPENED: "game_created_and_opened",
    RES_CREATED: "game_created",
    RES_OPENED: "game_opened",
    RES_ADMIN_OK: "become_an_admin_for_game_success",
    RES_ADMIN_REFUSED: "become_an_admin_for_game_fail",
    RES_DETAILS: "game_details",
    RES_UPDATED: "game_details_updated",
    RES_JOINED: "game_joined",
    RES_LEFT: "game_left",
    RES_CLOSED: "game_closed",
    RES_LIST: "games_list_for_source",
    RES_USER_JOINED: "user_joined_game",
    RES_USER_LEFT: "user_left_game",
    RES_POOL_RESOLVED: "bet_pool_resolved",
    RES_BETTING_BLOCKED: "betting_in_pool_blocked",
    RES_ERROR: "error",
}

# Codes the server pushes to a game's subscribers (some are also replies to our own calls).
EVENT_CODES = frozenset(
    {
        RES_USER_JOINED,
        RES_USER_LEFT,
        RES_DETAILS,
        RES_CLOSED,
        RES_POOL_RESOLVED,
        RES_BETTING_BLOCKED,
    }
)

# Game statuses the doc lists; the API may add more, so statuses stay plain strings.
STATUS_NOT_YET_ACTIVE = "betting_not_yet_active"
STATUS_PRE_GAME = "pre_game_betting_active"
STATUS_IN_PROGRESS = "game_in_progress_betting_active"
STATUS_BETTING_CLOSED = "game_in_progress_betting_closed"
STATUS_CLOSED = "game_closed"

API_VERSION = 1.0

# Epoch values at or above this are milliseconds: 1e11 seconds is the year 5138, while 1e11
# milliseconds is 1973, so no real date of either unit falls on the wrong side.
_MILLIS_THRESHOLD = 100_000_000_000


def now_ms() -> int:
    """Wall-clock epoch milliseconds: the unit the doc's text asks for in every request."""
    return int(time.time() * 1000)


def parse_time(value: Any) -> datetime | None:
    """Read an API time: seconds or milliseconds, number or numeric string; None if absent.

    The doc says epoch millis but its examples use seconds, and the game list sends strings, so
    the unit is told by magnitude. Anything unreadable is treated as absent rather than fatal:
    a time is informative and must never make a whole reply unusable.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() in {"null", "none"}:
            return None
        try:
            number = float(text)
        except ValueError:
            return _parse_iso(text)
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    seconds = number / 1000 if number >= _MILLIS_THRESHOLD else number
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_iso(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_epoch_ms(value: datetime | int | float) -> int:
    """Turn a request time into epoch millis; bare numbers are read like :func:`parse_time`."""
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(stamp.timestamp() * 1000)
    number = float(value)
    return int(number if number >= _MILLIS_THRESHOLD else number * 1000)


def read_code(value: Any) -> int | None:
    """Read an op or res code sent as a number or a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def read_id(value: Any) -> str | None:
    """Read an id that may come as a string or a number; None when absent or empty."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def split_names(value: Any) -> list[str]:
    """Read an actions/targets list sent as an array or a comma-separated string."""
    if value is None:
        return []
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        return []
    return [str(item).strip() for item in items if str(item).strip()]


def header(session_key: str) -> dict[str, Any]:
    """The request header the real API expects: session key, send time, API version."""
    return {"session_key": session_key, "t": now_ms(), "api_version": API_VERSION}


def response_header() -> dict[str, Any]:
    """The header every server message carries (a send time, not a request id)."""
    return {"t": now_ms()}


def check_ws_url(url: str) -> str:
    """Accept only ws:// and wss:// URLs with a host; the message is meant for a config error."""
    text = url.strip() if isinstance(url, str) else ""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("not a ws:// or wss:// URL (bad port)") from None
    if parts.scheme.lower() not in {"ws", "wss"} or not parts.hostname:
        raise ValueError("not a ws:// or wss:// URL")
    return text


def safe_url(url: str) -> str:
    """The URL without user info or query, which may carry credentials: fit for logs and chat."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
