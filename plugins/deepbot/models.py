"""Typed DeepBot results and the tolerant readers that build them.

DeepBot installs disagree on how they write values: points come as ``720.0``, ``"720.00"``
or, on some locales, ``"13,37"``; timestamps carry 7-digit fractions and mix ``Z`` with
``+08:00``. The readers here accept all of those so the rest of the plugin sees one shape:
``Decimal`` for amounts (never a float, so sums are exact) and aware ``datetime`` values.
"""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any


class VipLevel(enum.IntEnum):
    """DeepBot's VIP levels; 0 and 10 both mean a normal viewer."""

    NONE = 0
    BRONZE = 1
    SILVER = 2
    GOLD = 3
    NORMAL = 10

    @property
    def label(self) -> str:
        return _VIP_LABELS[self]

    @property
    def is_vip(self) -> bool:
        return self in (VipLevel.BRONZE, VipLevel.SILVER, VipLevel.GOLD)


_VIP_LABELS = {
    VipLevel.NONE: "Normal",
    VipLevel.BRONZE: "Bronze",
    VipLevel.SILVER: "Silver",
    VipLevel.GOLD: "Gold",
    VipLevel.NORMAL: "Normal",
}


class ModLevel(enum.IntEnum):
    """DeepBot's moderator levels, from the public API notes."""

    USER = 0
    CHANNEL_MOD = 1
    BOT_MOD = 2
    BOT = 4
    STREAMER = 5

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


@dataclass(frozen=True, slots=True)
class DeepBotUser:
    """A viewer as ``get_user`` returns it.

    ``vip`` and ``mod`` stay plain ints because an install may report a level this client
    does not know; ``vip_level``/``mod_level`` give the enum when it is a known one.
    Timestamps are ``None`` when DeepBot has none (it writes ``0001-01-01`` for "never").
    """

    name: str
    points: Decimal
    watch_minutes: Decimal
    vip: int
    mod: int
    join_date: datetime | None
    last_seen: datetime | None
    vip_expiry: datetime | None

    @property
    def hours(self) -> Decimal:
        """Watch time in hours, as ``get_hours`` reports it (watch_time is minutes)."""
        return self.watch_minutes / 60

    @property
    def vip_level(self) -> VipLevel | None:
        try:
            return VipLevel(self.vip)
        except ValueError:
            return None

    @property
    def mod_level(self) -> ModLevel | None:
        try:
            return ModLevel(self.mod)
        except ValueError:
            return None

    @property
    def is_vip(self) -> bool:
        level = self.vip_level
        return level is not None and level.is_vip


# --- readers -------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_GROUPED_COMMA = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_GROUPED_DOT = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?")


def parse_number(value: object) -> Decimal | None:
    """Read an amount DeepBot sent; ``None`` if it is not a finite number.

    ``"13,37"`` is a comma decimal. With both separators the one that groups thousands is
    dropped (``"1,234.50"`` and ``"1.234,50"``). A lone comma followed by exactly three digits
    (``"1,234"``) stays ambiguous; DeepBot always writes two decimals, so it is read as a
    decimal comma like every other comma from those installs.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "").replace("\u00a0", "")
    if _NUMBER.fullmatch(text):
        normal = text
    elif "," in text and "." not in text and text.count(",") == 1:
        normal = text.replace(",", ".")
    elif _GROUPED_COMMA.fullmatch(text) and ("." in text or text.count(",") > 1):
        normal = text.replace(",", "")
    elif _GROUPED_DOT.fullmatch(text) and ("," in text or text.count(".") > 1):
        normal = text.replace(".", "").replace(",", ".")
    else:
        return None
    try:
        number = Decimal(normal)
    except InvalidOperation:  # pragma: no cover - the patterns above only pass numbers
        return None
    return number if number.is_finite() else None


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_timestamp(value: object) -> datetime | None:
    """Read a DeepBot timestamp as an aware datetime; ``None`` for "never" or unreadable.

    Naive times are taken as UTC (DeepBot writes UTC with ``Z`` everywhere it says).
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.year <= 1:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _level(value: object, default: int) -> int | None:
    if value is None:
        return default
    number = parse_number(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


#: A name from DeepBot longer than this, or holding control characters or ``|``, is not a
#: viewer's name: it is never echoed to chat nor sent back in a request.
MAX_NAME = 100


def valid_name(name: object) -> bool:
    """Whether a name DeepBot sent can be shown in chat and used in a later request."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_NAME
        and name.strip() == name
        and "|" not in name
        and name.isprintable()
    )


def parse_user(msg: Any, *, requested: str | None) -> DeepBotUser | None:
    """Build a :class:`DeepBotUser` from ``get_user``'s ``msg``; ``None`` if it is not one.

    Some installs send the object as a JSON string, so that is accepted too. ``points`` and
    ``watch_time`` are required; the levels default to a plain viewer. A name that is not a
    plausible viewer name (:func:`valid_name`) is replaced by ``requested``, or makes the
    record unreadable when there is no requested name (list pages).
    """
    if isinstance(msg, str) and msg.lstrip().startswith("{"):
        try:
            msg = json.loads(msg)
        except ValueError:
            return None
    if not isinstance(msg, dict):
        return None
    points = parse_number(msg.get("points"))
    minutes = parse_number(msg.get("watch_time"))
    vip = _level(msg.get("vip"), int(VipLevel.NORMAL))
    mod = _level(msg.get("mod"), int(ModLevel.USER))
    if points is None or minutes is None or vip is None or mod is None:
        return None
    name = msg.get("user")
    if not valid_name(name):
        if requested is None:
            return None
        name = requested
    if points < 0 or minutes < 0:
        return None
    return DeepBotUser(
        name=name,
        points=points,
        watch_minutes=minutes,
        vip=vip,
        mod=mod,
        join_date=parse_timestamp(msg.get("join_date")),
        last_seen=parse_timestamp(msg.get("last_seen")),
        vip_expiry=parse_timestamp(msg.get("vip_expiry")),
    )


def parse_users(msg: Any, *, limit: int) -> list[DeepBotUser] | None:
    """Read a ``get_users``/``get_top_users`` page: a list of user objects (or that list as
    a JSON string). Unreadable entries are skipped; ``None`` if ``msg`` is not a list or
    holds more than ``limit`` entries (a page never does)."""
    if isinstance(msg, str) and msg.lstrip().startswith("["):
        try:
            msg = json.loads(msg)
        except (ValueError, RecursionError):
            return None
    if not isinstance(msg, list) or len(msg) > limit:
        return None
    users = [parse_user(item, requested=None) for item in msg]
    return [user for user in users if user is not None]
