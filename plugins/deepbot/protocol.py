"""DeepBot's wire format: request frames out, reply frames in, and its reply vocabulary.

Requests are text frames ``api|<function>|<arg>|<arg>...``; DeepBot splits them on ``|``,
so an argument holding ``|`` or a line break would smuggle in arguments of its own. Every
argument is checked here before a frame is built, and nothing is sent if one is refused.

Replies are JSON objects ``{"function", "param", "msg"}`` with no request id; DeepBot also
pushes frames that are not JSON at all (``music|...``). :func:`parse_reply` turns the first
into :class:`Reply` and everything else into ``None`` so a reader can simply skip it.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from .errors import (
    AuthenticationFailed,
    DeepBotError,
    InvalidArgument,
    InvalidPoints,
    InvalidVipLength,
    InvalidVipLevel,
    NoPointsInEscrow,
    NotAuthorized,
    NotEnoughPoints,
    OperationFailed,
    UnexpectedReply,
    UserNotFound,
)

PREFIX: Final = "api"
SEPARATOR: Final = "|"

# Function names, exactly as DeepBot spells them on the wire.
REGISTER: Final = "register"
GET_USER: Final = "get_user"
GET_POINTS: Final = "get_points"
GET_HOURS: Final = "get_hours"
GET_RANK: Final = "get_rank"
SET_POINTS: Final = "set_points"
ADD_POINTS: Final = "add_points"
DEL_POINTS: Final = "del_points"
ADD_TO_ESCROW: Final = "add_to_escrow"
COMMIT_USER_ESCROW: Final = "commit_user_escrow"
CANCEL_ESCROW: Final = "cancel_escrow"
SET_VIP: Final = "set_vip"
# Beyond the document, used by both public clients (ekimekim/pylibs deepclient.py and
# djkaty/DeepBot DeepBot.cs): pages of viewers, their count, and an absolute VIP expiry.
GET_USERS: Final = "get_users"
GET_TOP_USERS: Final = "get_top_users"
GET_USERS_COUNT: Final = "get_users_count"
SET_VIP_EXPIRY: Final = "set_vip_expiry"

#: Replies to these carry no user name to match on (``param`` is the offset or nothing), so
#: they are matched on the function alone: the reader keys them with an empty param.
UNKEYED_FUNCTIONS: Final = frozenset({GET_USERS, GET_TOP_USERS, GET_USERS_COUNT})

#: DeepBot answers at most this many viewers per ``get_users``/``get_top_users`` page.
PAGE_LIMIT: Final = 100

#: ``cancel_escrow``'s special user meaning "every viewer".
ALL_USERS: Final = "all"

# Replies, as the doc and observed installs spell them.
MSG_SUCCESS: Final = "success"
MSG_BAD_SECRET: Final = "incorrect api secret"
MSG_NOT_AUTHORIZED: Final = "not authorized"
MSG_USER_NOT_FOUND: Final = "User not found"
MSG_USER_NOT_FOUND_OLD: Final = "user not found"
MSG_NOT_ENOUGH_POINTS: Final = "Not enough points"
MSG_NO_ESCROW: Final = "No points in escrow"
MSG_POINTS_NOT_POSITIVE: Final = "points should be a positive number"
MSG_FAILED: Final = "failed"
MSG_BAD_VIP_LEVEL: Final = "Failed. Incorrect VIP level."
MSG_BAD_VIP_LENGTH: Final = "Failed. Incorrect VIP length."
MSG_LIST_EMPTY: Final = "List empty"

#: VIP levels DeepBot accepts: 0 or 10 normal, 1 bronze, 2 silver, 3 gold.
VIP_LEVELS: Final = frozenset({0, 1, 2, 3, 10})

#: Our own guards, not DeepBot's: a user name longer than this is a typo or an attack, and
#: amounts or day counts beyond these overflow DeepBot's doubles and dates long before
#: they mean anything in a stream's economy.
MAX_NAME_LENGTH: Final = 100
MAX_POINTS: Final = Decimal(10) ** 12
MAX_VIP_DAYS: Final = 36_500
#: Both public clients hold points in a C# ``Int32`` (deepclient.py checks ``< 2**31``): an
#: install that counts whole points cannot take more than this in one call.
MAX_WHOLE_POINTS: Final = Decimal(2**31 - 1)

#: Frames are bounded before they are read: a reply is a few hundred bytes, a page of 100
#: viewers a few tens of KB; anything larger is refused by the websocket layer.
MAX_FRAME_BYTES: Final = 1 << 20
#: JSON nesting deeper than this is not a DeepBot reply (the deepest real one, a page of
#: viewers, is 3 levels); checked before ``json.loads`` so a hostile frame cannot recurse.
MAX_DEPTH: Final = 8


class BadFrame(ValueError):
    """A frame that claims to be a reply (starts with ``{``) but cannot be one; the reader
    logs one line for it and goes on."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One JSON reply; ``msg`` is a string or an object exactly as DeepBot sent it."""

    function: str
    param: str
    msg: Any

    @property
    def key(self) -> tuple[str, str]:
        """The (function, lower-cased param) pair that matches this reply to its request."""
        return request_key(self.function, self.param)


def request_key(function: str, user: str) -> tuple[str, str]:
    """The key a request's reply will carry; DeepBot may echo the name in another case."""
    return (function, "" if function in UNKEYED_FUNCTIONS else user.lower())


def encode_request(function: str, *args: str) -> str:
    """Join an already validated request into one frame."""
    return SEPARATOR.join((PREFIX, function, *args))


def json_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether ``text`` nests brackets deeper than ``limit``; strings are skipped.

    A linear scan, so a frame of a million ``[`` costs a loop, not a recursion.
    """
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case, counted in C: too few brackets to nest that deep
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def parse_reply(frame: str | bytes) -> Reply | None:
    """Read a reply frame; ``None`` for pushes (``music|...``) and binary frames.

    Raises :class:`BadFrame` for a frame that starts like a reply but is not one (invalid
    JSON, nested too deep, no function name), so the reader can log it once.
    """
    if not isinstance(frame, str) or not frame.lstrip().startswith("{"):
        return None
    if json_depth_exceeds(frame):
        raise BadFrame(f"nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError) as exc:
        raise BadFrame(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise BadFrame("not a JSON object")
    function = data.get("function")
    if not isinstance(function, str) or not function or len(function) > 64:
        raise BadFrame("no function name")
    param = data.get("param", "")
    if param is None:
        param = ""
    elif not isinstance(param, str):
        param = str(param) if isinstance(param, int | float) else ""
    msg = data.get("msg")
    if isinstance(msg, str) and msg[:1] in ("{", "[", '"'):
        # DeepBot.cs decodes ``msg`` as JSON when it can: some installs send the object (or
        # the list) as a JSON-encoded string. Anything that does not decode stays text.
        msg = decode_json_text(msg)
    return Reply(function=function, param=param, msg=msg)


def decode_json_text(text: str) -> Any:
    """``text`` decoded as JSON if it is an encoded object, list or string; else ``text``."""
    if json_depth_exceeds(text):
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return value if isinstance(value, dict | list | str) else text


# --- arguments -----------------------------------------------------------------------------


def _has_unsafe_character(text: str) -> bool:
    # Besides the separator, refuse every control, format and line/paragraph separator
    # character: they split frames on some installs and spoof names in chat on others.
    if SEPARATOR not in text and text.isprintable():
        return False  # the common case in one C call: isprintable() is False for Cc, Cf, Z*
    for char in text:
        if char == SEPARATOR:
            return True
        if char != " " and not char.isprintable():
            return True
        if unicodedata.category(char) in ("Zl", "Zp"):
            return True
    return False


def check_user(user: object, *, function: str = "") -> str:
    """Return the name to send (surrounding spaces dropped), or refuse it saying why.

    A line break is refused even at the end: quietly trimming it would hide a caller that
    passes raw input straight through.
    """
    if not isinstance(user, str):
        raise InvalidArgument("A DeepBot user name must be text.", function=function)
    if _has_unsafe_character(user):
        raise InvalidArgument(
            "A DeepBot user name cannot contain '|', line breaks or control characters.",
            function=function,
        )
    name = user.strip(" ")
    if not name:
        raise InvalidArgument("A DeepBot user name cannot be empty.", function=function)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"A DeepBot user name can be at most {MAX_NAME_LENGTH} characters long.",
            function=function,
        )
    return name


def check_points(
    value: object, *, allow_zero: bool = False, function: str = "", whole: bool = False
) -> str:
    """Return the amount as DeepBot expects it (plain decimal text), or refuse it.

    Accepts ``int``, ``Decimal``, ``float`` and decimal text; never ``bool`` (a ``True``
    amount is a bug upstream, not one point). ``whole`` refuses fractions and anything past
    ``Int32``, as installs that count whole points need. ``-0`` is sent as ``0``.
    """
    amount: Decimal
    if isinstance(value, bool):
        raise InvalidArgument("Points must be a number.", function=function)
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument("Points must be a finite number.", function=function)
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        if _has_unsafe_character(value):
            raise InvalidArgument("Points must be a number.", function=function)
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidArgument("Points must be a number.", function=function) from None
    else:
        raise InvalidArgument("Points must be a number.", function=function)
    if not amount.is_finite():
        raise InvalidArgument("Points must be a finite number.", function=function)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidArgument(
            "Points cannot be negative." if allow_zero else "Points must be more than zero.",
            function=function,
        )
    if amount == 0:
        amount = Decimal(0)  # never "-0" on the wire
    limit = MAX_WHOLE_POINTS if whole else MAX_POINTS
    if amount > limit:
        raise InvalidArgument(f"Points cannot be more than {limit:,.0f}.", function=function)
    if whole and amount != amount.to_integral_value():
        raise InvalidArgument("Points must be a whole number.", function=function)
    return format_decimal(amount)


def format_decimal(amount: Decimal) -> str:
    """Plain positional notation without exponent or needless zeros: ``100``, ``12.5``."""
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def check_vip_level(level: object, *, function: str = SET_VIP) -> str:
    """Return the level as text, or refuse anything DeepBot would answer "Failed." to."""
    if isinstance(level, bool) or not isinstance(level, int) or level not in VIP_LEVELS:
        raise InvalidArgument(
            "The VIP level must be 0 or 10 (normal), 1 (bronze), 2 (silver) or 3 (gold).",
            function=function,
        )
    return str(int(level))


def check_vip_days(days: object, *, function: str = SET_VIP) -> str:
    """Return the day count as text, or refuse anything but a whole non-negative number."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InvalidArgument(
            "The number of VIP days must be a whole number, zero or more.", function=function
        )
    if days > MAX_VIP_DAYS:
        raise InvalidArgument(
            f"The number of VIP days can be at most {MAX_VIP_DAYS}.", function=function
        )
    return str(int(days))


# --- reply vocabulary ----------------------------------------------------------------------


def _normalise(msg: str) -> str:
    return msg.strip().rstrip(".").strip().lower()


def is_success(msg: object) -> bool:
    return isinstance(msg, str) and _normalise(msg) == MSG_SUCCESS


def _describe(user: str) -> str:
    return "every viewer" if user.lower() == ALL_USERS else user


def error_for(msg: object, *, function: str, user: str) -> DeepBotError | None:
    """The typed error for one of DeepBot's known refusals, or ``None`` if ``msg`` is not one.

    ``user`` is the name we sent (validated, so safe to echo in chat).
    """
    if not isinstance(msg, str):
        return None
    code = msg.strip()
    kind = _normalise(msg)
    common = {"code": code, "function": function, "user": user}
    if kind == "user not found":
        return UserNotFound(f"DeepBot has no user named {user}.", **common)
    if kind == "not enough points":
        return NotEnoughPoints(f"{user} does not have enough points for that.", **common)
    if kind == "no points in escrow":
        return NoPointsInEscrow(f"{_describe(user)} has no points held in escrow.", **common)
    if kind == MSG_POINTS_NOT_POSITIVE:
        return InvalidPoints("DeepBot only accepts a positive number of points.", **common)
    if kind == "failed. incorrect vip level":
        return InvalidVipLevel("DeepBot refused that VIP level.", **common)
    if kind == "failed. incorrect vip length":
        return InvalidVipLength("DeepBot refused that number of VIP days.", **common)
    if kind == MSG_FAILED:
        return OperationFailed(
            f"DeepBot refused to change the points of {user} "
            "(unknown user or an amount it does not accept).",
            **common,
        )
    if kind == MSG_NOT_AUTHORIZED:
        return NotAuthorized(
            "DeepBot no longer accepts this connection; the bot is registering again.",
            **common,
        )
    if kind == MSG_BAD_SECRET:
        return AuthenticationFailed(
            "DeepBot refused the API secret; check the deepbot secret in the bot's config.",
            **common,
        )
    return None


def unexpected(msg: object, *, function: str, user: str) -> UnexpectedReply:
    """The error for a reply that is neither a known refusal nor the expected shape."""
    text = msg if isinstance(msg, str) else json.dumps(msg, default=str)
    return UnexpectedReply(
        f"DeepBot gave an answer to {function} that the bot could not read.",
        code=text[:200],
        function=function,
        user=user,
    )
