"""Typed requests and results of the Rooms customer API.

Each request validates its own fields when built, so bad input from chat or config is refused
with a plain sentence before anything is sent, and ``form()`` yields the exact form fields the
API documents, in its order (``function`` first, ``customerId`` omitted when unknown). The
limits checked here that the document does not state (nickname length, the integer range) are
our own guards, chosen to fit a 32-bit integer column and any chat platform's display name.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import RoomsInvalidRequest

MAX_INT = 2**31 - 1
"""Largest id or credit amount we send; the API's integers are most likely 32-bit."""

MAX_NICKNAME = 64
"""Longest nickname we send to joinRoom (before the API appends its ``_####``)."""

MAX_DISPLAY_NICKNAME = MAX_NICKNAME + 16
"""Longest nickname accepted back from the API and sent in later calls (room for a suffix)."""


def check_id(name: str, value: object) -> int:
    """A positive integer id; bools are refused because ``True`` would be sent as ``1``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RoomsInvalidRequest(f"The {name} must be a whole number, not {value!r}.")
    if not 1 <= value <= MAX_INT:
        raise RoomsInvalidRequest(f"The {name} must be between 1 and {MAX_INT}.")
    return value


def check_credits(value: object) -> int:
    """A credit balance: a whole number from 0 up; the API cannot hold fractions or debt."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RoomsInvalidRequest(f"Credits must be a whole number, not {value!r}.")
    if not 0 <= value <= MAX_INT:
        raise RoomsInvalidRequest(f"Credits must be between 0 and {MAX_INT}.")
    return value


def check_nickname(value: object, limit: int = MAX_NICKNAME) -> str:
    """A display name, trimmed; control characters would garble the performer's room list."""
    if not isinstance(value, str):
        raise RoomsInvalidRequest("The nickname must be text.")
    nickname = value.strip()
    if not nickname:
        raise RoomsInvalidRequest("The nickname must not be empty.")
    if len(nickname) > limit:
        raise RoomsInvalidRequest(f"The nickname must be at most {limit} characters.")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in nickname):
        raise RoomsInvalidRequest("The nickname must not contain control characters.")
    return nickname


def check_ip(value: object) -> str:
    """An IPv4 or IPv6 address in its canonical spelling."""
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise RoomsInvalidRequest(f"{value!r} is not an IPv4 or IPv6 address.") from None


def _optional_id(value: object) -> int | None:
    return None if value is None else check_id("customer id", value)


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """joinRoom: a customer enters a performer's room.

    ``ip_address`` is required by the API, but a chat has no client address: callers pass the
    configured one (the bot's), the same for every chat user.
    """

    function: ClassVar[str] = "joinRoom"
    idempotent: ClassVar[bool] = False

    performer_id: int
    nickname: str
    ip_address: str
    registered: bool
    credits: int
    customer_id: int | None = None

    def __post_init__(self) -> None:
        check_id("performer id", self.performer_id)
        object.__setattr__(self, "nickname", check_nickname(self.nickname))
        object.__setattr__(self, "ip_address", check_ip(self.ip_address))
        if not isinstance(self.registered, bool):
            raise RoomsInvalidRequest("'registered' must be true or false.")
        check_credits(self.credits)
        _optional_id(self.customer_id)
        if self.registered and self.customer_id is None:
            raise RoomsInvalidRequest("A registered customer needs a customer id.")

    def form(self) -> dict[str, str]:
        fields = {
            "function": self.function,
            "performerId": str(self.performer_id),
            "nickname": self.nickname,
        }
        if self.customer_id is not None:
            fields["customerId"] = str(self.customer_id)
        fields["ipAddress"] = self.ip_address
        fields["registered"] = "1" if self.registered else "0"
        fields["credits"] = str(self.credits)
        return fields


@dataclass(frozen=True, slots=True)
class _InRoomRequest:
    """Fields shared by leaveRoom and pingRoom: who, in whose room.

    ``nickname`` may be the one we sent or the one the API displays (with ``_####``); the API
    accepts either, and we send the displayed one when we have it.
    """

    function: ClassVar[str] = ""
    idempotent: ClassVar[bool] = True

    performer_id: int
    nickname: str
    customer_id: int | None = None

    def __post_init__(self) -> None:
        check_id("performer id", self.performer_id)
        nickname = check_nickname(self.nickname, MAX_DISPLAY_NICKNAME)
        object.__setattr__(self, "nickname", nickname)
        _optional_id(self.customer_id)

    def form(self) -> dict[str, str]:
        fields = {"function": self.function, "performerId": str(self.performer_id)}
        if self.customer_id is not None:
            fields["customerId"] = str(self.customer_id)
        fields["nickname"] = self.nickname
        return fields


@dataclass(frozen=True, slots=True)
class LeaveRequest(_InRoomRequest):
    """leaveRoom: idempotent in effect, so the client retries it on transient failures."""

    function: ClassVar[str] = "leaveRoom"


@dataclass(frozen=True, slots=True)
class PingRequest(_InRoomRequest):
    """pingRoom: the keep-alive; without one every 10 s the API purges the customer."""

    function: ClassVar[str] = "pingRoom"


@dataclass(frozen=True, slots=True)
class UpdateCreditsRequest:
    """updateCredits: sets (not adds to) a registered customer's balance.

    Not retried on ambiguous failures even though it sets an absolute value: a late retry
    could overwrite a newer balance sent in between.
    """

    function: ClassVar[str] = "updateCredits"
    idempotent: ClassVar[bool] = False

    customer_id: int
    credits: int

    def __post_init__(self) -> None:
        check_id("customer id", self.customer_id)
        check_credits(self.credits)

    def form(self) -> dict[str, str]:
        return {
            "function": self.function,
            "customerId": str(self.customer_id),
            "credits": str(self.credits),
        }


RoomsRequest = JoinRequest | LeaveRequest | PingRequest | UpdateCreditsRequest


@dataclass(frozen=True, slots=True)
class RoomsReply:
    """A parsed answer: ``success``, ``message`` and every other field as the API sent it."""

    success: bool
    message: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JoinResult:
    """What joinRoom gives back: the nickname as the performer's room will display it."""

    nickname: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A successful leaveRoom, pingRoom or updateCredits (they return nothing else)."""

    function: str
    message: str = ""
