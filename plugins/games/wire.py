"""The games API's op contract, numeric codes and the small conversions both ends share.

Kept apart from the client and the simulator so the two agree on the codes by construction,
while each keeps its own logic (the simulator must not inherit the client's mistakes). The
:data:`OPS` table holds only facts from the API's documents: which replies answer each op,
whether it needs a session, whether it concerns one game. The client reads its expected
replies from it, the simulator its session exemption and its ``get_opcodes`` answer.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

# Operation codes (requests).
OP_PING = 1
OP_GET_OPCODES = 2
OP_LOGON = 100
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
RES_LOGON_OK = 100
RES_LOGON_FAILED = 110
RES_LOGON_ALREADY = 112
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


@dataclass(frozen=True, slots=True)
class Op:
    """One request of the API as its documents describe it.

    ``replies`` are the codes that answer the request (any one of them ends the call);
    ``publishes`` are codes the server may send the caller while handling it (a close's 362 and
    368); ``needs_session`` is False for the calls any connection may make; ``per_game`` says
    the request names a ``game_id`` and its replies carry it back.
    """

    name: str
    replies: frozenset[int]
    needs_session: bool = True
    per_game: bool = False
    publishes: frozenset[int] = frozenset()


def _op(name: str, *replies: int, **facts: Any) -> Op:
    return Op(name, frozenset(replies), **facts)


OPS: Mapping[int, Op] = {
    # ping, get_opcodes and logon: the vendor's docs repository (Instamrkt/slate, "General").
    OP_PING: _op("ping", RES_PONG, needs_session=False),
    OP_GET_OPCODES: _op("get_opcodes", RES_OPCODES, needs_session=False),
    OP_LOGON: _op("logon", RES_LOGON_OK, RES_LOGON_FAILED, RES_LOGON_ALREADY, needs_session=False),
    OP_CREATE_AND_OPEN: _op("create_and_open_game", RES_CREATED_AND_OPENED),
    OP_CREATE: _op("create_game", RES_CREATED),
    # The doc's table says 3402, its example 340: both answer.
    OP_OPEN: _op("open_game", RES_OPENED, RES_CREATED_AND_OPENED, per_game=True),
    OP_BECOME_ADMIN: _op(
        "become_an_admin_for_game", RES_ADMIN_OK, RES_ADMIN_REFUSED, per_game=True
    ),
    OP_GET_DETAILS: _op("get_game_details", RES_DETAILS, per_game=True),
    OP_UPDATE: _op("update_game_details", RES_UPDATED, per_game=True),
    OP_JOIN: _op("join_game", RES_JOINED, per_game=True),
    OP_LEAVE: _op("leave_game", RES_LEFT, per_game=True),
    # 341 only once no manual pool is left; 362/368 are "published to all game subscribers".
    OP_CLOSE: _op(
        "close_game",
        RES_CLOSED,
        per_game=True,
        publishes=frozenset({RES_POOL_RESOLVED, RES_BETTING_BLOCKED}),
    ),
    OP_LIST: _op("list_games_for_source", RES_LIST),
}

OP_NAMES: Mapping[int, str] = {code: op.name for code, op in OPS.items()}

RES_NAMES: dict[int, str] = {
    RES_PONG: "pong",
    RES_OPCODES: "opcodes",
    RES_LOGON_OK: "logon_success",
    RES_LOGON_FAILED: "logon_fail",
    RES_LOGON_ALREADY: "logon_fail_already_logged_in",
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

# Bounds on what the server may send us. The largest documented frame (a game's details) is a
# few kilobytes; a megabyte leaves room for a game with thousands of targets. A target tree of
# ten levels nests about twenty JSON levels deep.
MAX_FRAME_BYTES = 2**20
MAX_JSON_DEPTH = 64

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


# An id from the server longer than this, or with spaces or control characters, is not an id:
# it is treated as absent (a reply that needs one is then unusable, an event is dropped).
MAX_ID_LENGTH = 100


def read_id(value: Any) -> str | None:
    """Read an id that may come as a string or a number; None when absent, empty or not a
    plausible id (too long, spaces, control characters)."""
    if value is None or isinstance(value, bool) or isinstance(value, dict | list):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_ID_LENGTH or not text.isprintable() or " " in text:
        return None
    return text


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


# ---------------------------------------------------------------- frames


class BadFrame(ValueError):
    """A frame that cannot be a message: ``reason`` is a few words fit for one log line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when a parsed frame nests lists/objects more than ``limit`` deep.

    Walked without recursion, so the check itself cannot overflow; the readers that walk a
    frame (the target tree) recurse per level and rely on it.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        nested = [child for child in children if isinstance(child, dict | list)]
        if nested and depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in nested if child)
    return False


def decode_frame(raw: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """A server frame as a JSON object, or :class:`BadFrame` saying why it is none.

    Nesting is bounded twice: the C parser stops a frame of thousands of levels with a
    RecursionError (caught here, so it costs one refusal, never a traceback), and anything
    deeper than ``max_depth`` is refused before any reader walks it. Counting brackets first
    is C-fast and spares the walk for every normal frame.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadFrame("not UTF-8") from None
    try:
        message = json.loads(text)
    except RecursionError:
        raise BadFrame("JSON nested too deeply to parse") from None
    except ValueError:
        raise BadFrame("not JSON") from None
    if not isinstance(message, dict):
        raise BadFrame(f"a JSON {type(message).__name__}, not an object")
    if text.count("[") + text.count("{") > max_depth and too_deep(message, max_depth):
        raise BadFrame(f"JSON nested deeper than {max_depth} levels")
    return message


# ---------------------------------------------------------------- the vendor's login


def new_nonce() -> str:
    """A fresh nonce for one connection: the vendor suggests a timestamp; random bytes are
    added so two connections in the same millisecond never share one."""
    return f"{now_ms()}{secrets.token_hex(8)}"


def login_digest(user_id: str, nonce: str, session_key: str) -> str:
    """sha256(user id + nonce + session key), hex: the vendor's connection digest."""
    return hashlib.sha256(f"{user_id}{nonce}{session_key}".encode()).hexdigest()


def login_url(url: str, user_id: str, session_key: str, nonce: str | None = None) -> str:
    """``url`` with the vendor's ``?id=&n=&h=`` login query (a fresh nonce unless given).

    The session key itself never goes into the URL, only its digest; other query parameters
    of the configured URL are kept.
    """
    nonce = nonce or new_nonce()
    parts = urlsplit(url)
    login = urlencode({"id": user_id, "n": nonce, "h": login_digest(user_id, nonce, session_key)})
    query = f"{parts.query}&{login}" if parts.query else login
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, parts.fragment))
