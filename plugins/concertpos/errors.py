"""Errors the ConcertPOS client raises, one class per thing a caller can do about it.

Every class is a :class:`~bot.errors.ServiceError`, so the dispatcher shows its message as is:
messages are plain sentences written for a chat user and never contain the api key or any
other value the server sent us verbatim (only error names we have checked are quoted). The
API's own error name travels in ``code`` so callers can branch without parsing text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from bot.errors import NotConnected, ServiceError, ServiceTimeout

SERVICE = "concertpos"

#: an error name we are willing to quote back to a user: short and plain
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,48}$")


def safe_name(value: object) -> str:
    """The server's error name if it is harmless to show, else ``"unknown"``."""
    text = str(value) if value is not None else ""
    return text if _SAFE_NAME.match(text) else "unknown"


def seconds_text(seconds: float) -> str:
    """Whole seconds, rounded up, so "try again in N s" is never too early."""
    return str(max(1, math.ceil(seconds)))


class ConcertPOSError(ServiceError):
    """Base of every ConcertPOS failure; ``code`` is the API's error name or one of ours."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, service=SERVICE, code=code)


class ConcertPOSAuthError(ConcertPOSError):
    """The instance refused our credentials: retrying cannot help, an admin must fix config."""


class ConcertPOSInstanceError(ConcertPOSError):
    """The instance slug does not exist on the server."""


class ConcertPOSRequestError(ConcertPOSError):
    """The server could not read or accept a request we built: a bug on our side."""


class ConcertPOSRefused(ConcertPOSError):
    """The server refused the request with an error name we have no special meaning for."""


class ConcertPOSLicenseError(ConcertPOSError):
    """The instance's license is missing or invalid (the server names the error after
    ``getlicense``)."""


class RateLimited(ConcertPOSError):
    """Too many rate points spent: ``retry_after`` says (in seconds) when to try again.

    Raised both when the server answers ``ratelimit`` and, as :class:`BudgetExhausted`, when our
    own budget refuses to send because waiting would take longer than the call may.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        command: str,
        code: str = "ratelimit",
        asked: float | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.command = command
        #: what the server asked for, when the cap made ``retry_after`` shorter
        self.asked = asked


class BudgetExhausted(RateLimited):
    """Our side refused before sending: the request would have tripped the server's limit."""

    def __init__(self, *, retry_after: float, command: str) -> None:
        super().__init__(
            f"ConcertPOS is busy right now; try again in {seconds_text(retry_after)} s.",
            retry_after=retry_after,
            command=command,
            code="budget",
        )


class ConcertPOSNotConnected(ConcertPOSError, NotConnected):
    """No live connection (or it dropped before the request went out): nothing was sent."""

    def __init__(self, message: str = "ConcertPOS is not connected right now; try again shortly."):
        super().__init__(message, code="not_connected")


class ConcertPOSTimeout(ConcertPOSError, ServiceTimeout):
    """The request went out but no reply came in time."""

    def __init__(self, command: str, timeout: float) -> None:
        super().__init__(
            f"ConcertPOS did not answer {command} within {timeout:g} s; try again later.",
            code="timeout",
        )
        self.command = command


class OutcomeUnknown(ConcertPOSError):
    """A sale went out but its confirmation never came back: it may or may not be booked.

    Never retried automatically (money moves once); the caller should look at the latest
    transactions before selling again.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The sale was sent to ConcertPOS but {reason}, so it may or may not be booked. "
            "Check the latest transactions before selling again.",
            code="outcome_unknown",
        )


class ProtocolError(ConcertPOSError):
    """The server answered with something we cannot read as the documented reply."""

    def __init__(self, what: str) -> None:
        super().__init__(f"ConcertPOS sent a reply the bot cannot read ({what}).", code="bad_reply")
        self.what = what


class InvalidRequest(ConcertPOSError):
    """Our own check refused the request before anything was sent."""

    def __init__(self, message: str, *, code: str = "invalid_request") -> None:
        super().__init__(message, code=code)


def _quoted(query: int | str) -> str:
    """User text quoted back in a message, cut short so a pasted essay stays out of chat."""
    text = str(query)
    return text if len(text) <= 40 else text[:39] + "…"


class UnknownProduct(InvalidRequest):
    """No product with that id or name is sold at this point of sale."""

    def __init__(self, query: int | str) -> None:
        super().__init__(
            f"There is no product {_quoted(query)!r} at this point of sale.",
            code="unknown_product",
        )
        self.query = query


class UnknownPaymentMethod(InvalidRequest):
    """No payment method with that id or name is offered at this point of sale."""

    def __init__(self, query: int | str) -> None:
        super().__init__(
            f"There is no payment method {_quoted(query)!r} at this point of sale.",
            code="unknown_payment_method",
        )
        self.query = query


class UnknownPointOfSale(InvalidRequest):
    """No point of sale (that may be picked) with that id or name."""

    def __init__(self, query: int | str) -> None:
        super().__init__(
            f"There is no point of sale {_quoted(query)!r} to pick; see pos list.",
            code="unknown_pos",
        )
        self.query = query


class AmbiguousName(InvalidRequest):
    """A name prefix matches more than one product or payment method."""

    def __init__(self, query: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:5]) + (", …" if len(candidates) > 5 else "")
        super().__init__(
            f"{_quoted(query)!r} could mean {shown}; type more of the name or use the id.",
            code="ambiguous_name",
        )
        self.query = query
        self.candidates = candidates


_AUTH_MESSAGES = {
    "api_key_mismatch": "ConcertPOS rejected the configured api key for this instance.",
    "no_api_key": "This ConcertPOS instance has no api key set up; an admin must create one.",
    "invalid_password": "ConcertPOS rejected the password of this point of sale.",
}

_REQUEST_MESSAGES = {
    "invalid_json": "ConcertPOS could not read our request (invalid_json); this is a bot bug.",
    "invalid_json5": "ConcertPOS could not read our request (invalid_json5); this is a bot bug.",
}


def error_from_reply(
    error: object, code: object, *, command: str | None, max_wait: float = math.inf
) -> ConcertPOSError:
    """Turn an error model (``result.error`` and ``result.code``) into the matching exception.

    ``command`` is the request the error was routed to, used in messages when the error
    itself does not name one. A ``ratelimit``'s ``retry_after`` is capped at ``max_wait``
    seconds (the server's wish is kept in ``asked``): a server asking for a day, or for
    1e308 ms, must not stop the plugin for that long.
    """
    name = safe_name(error)
    if name == "ratelimit":
        retry_ms: float = 0.0
        limited = command or "a request"
        if isinstance(code, Mapping):
            retry_ms = _number(code.get("retry_after"))
            if code.get("command") is not None:
                limited = safe_name(code.get("command"))
        else:
            retry_ms = _number(code)
        asked = max(0.0, retry_ms / 1000.0)
        retry_after = min(asked, max(0.0, max_wait))
        return RateLimited(
            f"ConcertPOS is rate limiting {limited}; try again in {seconds_text(retry_after)} s.",
            retry_after=retry_after,
            command=limited,
            asked=asked if asked > retry_after else None,
        )
    if name in _AUTH_MESSAGES:
        return ConcertPOSAuthError(_AUTH_MESSAGES[name], code=name)
    if name == "invalid_instance":
        return ConcertPOSInstanceError(
            "This ConcertPOS instance does not exist; check the configured instance.", code=name
        )
    if name in _REQUEST_MESSAGES:
        return ConcertPOSRequestError(_REQUEST_MESSAGES[name], code=name)
    if name.startswith("missing_parameter"):
        return ConcertPOSRequestError(
            f"ConcertPOS says our request lacks a parameter ({name}); this is a bot bug.",
            code=name,
        )
    if name == "getlicense":
        return ConcertPOSLicenseError(
            "ConcertPOS reports this instance's license as invalid; check its license key.",
            code=name,
        )
    what = f" {command}" if command else ""
    return ConcertPOSRefused(f"ConcertPOS refused the{what} request ({name}).", code=name)


def _number(value: Any) -> float:
    """Tolerate numbers sent as strings; anything unreadable counts as zero, and infinity
    as the longest wait there is (the cap then applies)."""
    if isinstance(value, bool):
        return 0.0
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if math.isnan(result):
        return 0.0
    return result
