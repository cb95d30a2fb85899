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

#: VIP levels DeepBot accepts: 0 or 10 normal, 1 bronze, 2 silver, 3 gold.
VIP_LEVELS: Final = frozenset({0, 1, 2, 3, 10})

#: Our own guards, not DeepBot's: a user name longer than this is a typo or an attack, and
#: amounts or day counts beyond these overflow DeepBot's doubles and dates long before
#: they mean anything in a stream's economy.
MAX_NAME_LENGTH: Final = 100
MAX_POINTS: Final = Decimal(10) ** 12
MAX_VIP_DAYS: Final = 36_500


@dataclass(frozen=True, slots=True)
class Reply:
    """One JSON reply; ``msg`` is a string or an object exactly as DeepBot sent it."""

    function: str
    param: str
    msg: Any

    @property
    def key(self) -> tuple[str, str]:
        """The (function, lower-cased param) pair that matches this reply to its request."""
        return (self.function, self.param.lower())


def request_key(function: str, user: str) -> tuple[str, str]:
    """The key a request's reply will carry; DeepBot may echo the name in another case."""
    return (function, user.lower())


def encode_request(function: str, *args: str) -> str:
    """Join an already validated request into one frame."""
    return SEPARATOR.join((PREFIX, function, *args))


def parse_reply(frame: str | bytes) -> Reply | None:
    """Read a reply frame; ``None`` for pushes, binary frames and anything malformed."""
    if not isinstance(frame, str) or not frame.startswith("{"):
        return None
    try:
        data = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    function = data.get("function")
    if not isinstance(function, str) or not function:
        return None
    param = data.get("param", "")
    if param is None:
        param = ""
    elif not isinstance(param, str):
        param = str(param)
    return Reply(function=function, param=param, msg=data.get("msg"))


# --- arguments -----------------------------------------------------------------------------


def _has_unsafe_character(text: str) -> bool:
    # Besides the separator, refuse every control, format and line/paragraph separator
    # character: they split frames on some installs and spoof names in chat on others.
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


def check_points(value: object, *, allow_zero: bool = False, function: str = "") -> str:
    """Return the amount as DeepBot expects it (plain decimal text), or refuse it.

    Accepts ``int``, ``Decimal``, ``float`` and decimal text; never ``bool`` (a ``True``
    amount is a bug upstream, not one point).
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
    if amount > MAX_POINTS:
        raise InvalidArgument(f"Points cannot be more than {MAX_POINTS:,.0f}.", function=function)
    return format_decimal(amount)


def format_decimal(amount: Decimal) -> str:
    """Plain positional notation without exponent or needless zeros: ``100``, ``12.5``."""
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


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
