"""How DeepBot's data reads in chat: balances, VIP status, profiles.

Kept apart from the command handlers so the wording is in one place and can be checked
without a chat: balances always show two decimals like DeepBot's own chat output, amounts a
user typed are echoed as typed (``5``, ``12.5``), and dates are shown as the day in
DeepBot's own offset (an expiry of ``2014-12-09T00:00:00+08:00`` is "2014-12-09").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from .models import DeepBotUser, ModLevel
from .protocol import format_decimal


def balance(points: Decimal) -> str:
    """A balance as DeepBot shows it: ``1,234.50``."""
    return f"{points:,.2f}"


def points_phrase(amount: Decimal) -> str:
    """An amount someone typed, with the right noun: ``1 point``, ``12.5 points``."""
    text = format_decimal(amount)
    return f"{text} point" if amount == 1 else f"{text} points"


def day(moment: datetime) -> str:
    return moment.date().isoformat()


def _time_left(expiry: datetime, now: datetime) -> str:
    # Rounded, not floored: "30 days" just after 30 were added, not "29".
    days = round((expiry - now).total_seconds() / 86400)
    if days < 1:
        return "less than a day left"
    return "1 day left" if days == 1 else f"{days} days left"


def vip_status(user: DeepBotUser, now: datetime) -> str:
    """The VIP part of a sentence: "a Gold VIP until 2025-01-01 (30 days left)"."""
    level = user.vip_level
    if level is None:
        return f"on VIP level {user.vip}, which the bot does not know"
    if not level.is_vip:
        return "not a VIP"
    expiry = user.vip_expiry
    if expiry is None:
        return f"a {level.label} VIP with no expiry date"
    if expiry <= now:
        return f"a {level.label} VIP whose VIP time ended on {day(expiry)}"
    return f"a {level.label} VIP until {day(expiry)} ({_time_left(expiry, now)})"


def describe_vip(user: DeepBotUser, now: datetime) -> str:
    return f"{user.name} is {vip_status(user, now)}."


_ROLES = {
    ModLevel.USER: "viewer",
    ModLevel.CHANNEL_MOD: "channel moderator",
    ModLevel.BOT_MOD: "bot moderator",
    ModLevel.BOT: "bot",
    ModLevel.STREAMER: "streamer",
}


def role(user: DeepBotUser) -> str:
    level = user.mod_level
    return _ROLES[level] if level is not None else f"moderator level {user.mod}"


def describe_profile(user: DeepBotUser, rank: str, now: datetime) -> str:
    """Everything DeepBot knows about a viewer, in three short lines."""
    dates = []
    if user.join_date is not None:
        dates.append(f"joined {day(user.join_date)}")
    if user.last_seen is not None:
        dates.append(f"last seen {day(user.last_seen)}")
    lines = [
        f"{user.name} ({role(user)}): {balance(user.points)} points, "
        f"{balance(user.hours)} hours watched",
        f"Rank: {rank}. VIP: {vip_status(user, now)}.",
    ]
    if dates:
        lines.append(", ".join(dates).capitalize() + ".")
    return "\n".join(lines)
