"""Errors the Rooms client raises, all :class:`~bot.errors.ServiceError` subclasses.

The API has no result codes: a refusal is ``success: false`` with a free-text ``message``. The
classes below let callers branch on *what kind* of failure happened (refused, unreachable,
garbled, too slow, our own bad input) without reading that text, and every message is a
sentence that can go to chat as is. Nothing here ever carries the API key.
"""

from __future__ import annotations

from bot.errors import NotConnected, ServiceError, ServiceTimeout
from bot.text import clip

SERVICE = "rooms"

API_TEXT_LIMIT = 200
"""Characters of the API's own text (a refusal's message) shown in chat."""


class RoomsError(ServiceError):
    """Base of every Rooms failure; ``code`` is one of the short codes documented per class."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, service=SERVICE, code=code)


class RoomsRefused(RoomsError):
    """The API answered ``success: false``.

    ``api_message`` is the API's own explanation (key redacted); as the API has no codes, it
    is also the ``code``, falling back to ``"refused"`` when the API gave no message.
    """

    def __init__(self, function: str, api_message: str) -> None:
        reason = api_message.strip()
        text = f"The rooms service refused {_ACTIONS.get(function, function)}"
        # The API's text goes to chat: bounded, control characters blanked (bot.clip).
        shown = clip(reason, API_TEXT_LIMIT)
        super().__init__(f"{text}: {shown}" if reason else f"{text}.", code=reason or "refused")
        self.function = function
        self.api_message = reason


class RoomsAuthError(RoomsError):
    """HTTP 401/403: the key is wrong or revoked; retrying cannot help."""

    def __init__(self, status: int) -> None:
        super().__init__(
            "The rooms service rejected the bot's API key; an admin must check the config.",
            code=str(status),
        )
        self.status = status


class RoomsHTTPError(RoomsError):
    """Any other non-2xx HTTP status; ``code`` is the status number as text."""

    def __init__(self, status: int) -> None:
        super().__init__(
            f"The rooms service failed with HTTP status {status}; please try again later.",
            code=str(status),
        )
        self.status = status


class RoomsBadResponse(RoomsError):
    """The body was neither JSON nor the documented relaxed literal, or lacked ``success``."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "The rooms service sent an answer the bot could not understand.", code="malformed"
        )
        self.detail = detail


class RoomsTimeout(RoomsError, ServiceTimeout):
    """No complete answer within the call's timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The rooms service did not answer within {seconds:g} seconds.", code="timeout"
        )
        self.seconds = seconds


class RoomsUnavailable(RoomsError, NotConnected):
    """The service could not be reached at all (or the client is closed)."""

    def __init__(self, message: str = "The rooms service cannot be reached right now.") -> None:
        super().__init__(message, code="unreachable")


class RoomsInvalidRequest(RoomsError, ValueError):
    """Our own side refused to send a request with bad fields; nothing reached the API."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid")


class RoomsAlreadyPresent(RoomsError):
    """A presence for this (performer, customer) is already kept alive."""

    def __init__(self, performer_id: int) -> None:
        super().__init__(f"You are already in performer {performer_id}'s room.", code="present")
        self.performer_id = performer_id


class RoomsNotPresent(RoomsError):
    """No presence is kept for this (performer, customer)."""

    def __init__(self, performer_id: int | None = None) -> None:
        where = f"performer {performer_id}'s room" if performer_id is not None else "any room"
        super().__init__(f"You are not in {where}.", code="not_present")
        self.performer_id = performer_id


_ACTIONS = {
    "joinRoom": "to join the room",
    "leaveRoom": "to leave the room",
    "pingRoom": "the keep-alive ping",
    "updateCredits": "to update the credits",
}
