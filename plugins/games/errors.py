"""Errors the games client raises.

Every refusal or failure of the API is a :class:`bot.errors.ServiceError` so the dispatcher
shows its message in chat as is; the messages are therefore plain sentences and never carry
the session key. ``code`` holds the API's own result code (``"645"``, ``"666"``) so callers can
branch without parsing text. The tree::

    ServiceError (bot.errors)
    +-- GamesError               everything the games client raises: catch this one
        +-- GamesRefused         666, with the API's text
        +-- AdminRefused         645
        +-- BadReply             a reply we cannot read
        +-- GamesNotConnected    also a bot.errors.NotConnected
        +-- GamesTimeout         also a bot.errors.ServiceTimeout
    UserError (bot.errors)
    +-- GamesInputError          refused before sending: the API never saw it
"""

from __future__ import annotations

from bot import clip
from bot.errors import NotConnected, ServiceError, ServiceTimeout, UserError

# API text quoted in an error message is cut to this many characters.
MAX_QUOTED = 200

SERVICE = "games"


class GamesError(ServiceError):
    """Base of the games API's refusals and failures."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, service=SERVICE, code=code)


class GamesRefused(GamesError):
    """The API answered with its generic error (res 666); ``text`` is the API's own words."""

    def __init__(self, text: str) -> None:
        shown = clip(text.strip(), MAX_QUOTED) or "no reason given"
        super().__init__(f"The games service refused the request: {shown}", code="666")
        self.text = shown


class AdminRefused(GamesError):
    """Becoming a game admin was refused (res 645): no privileges, or enough admins already."""

    def __init__(self, game_id: str, reason: str) -> None:
        shown = clip(reason.strip(), MAX_QUOTED) or "no reason given"
        super().__init__(f"Could not become an admin of game {game_id}: {shown}", code="645")
        self.game_id = game_id
        self.reason = shown


class BadReply(GamesError):
    """The API answered with something we cannot read; nothing was changed on our side."""


class GamesNotConnected(NotConnected, GamesError):
    """No live connection (or it dropped while a call waited); raised at once, never a hang."""


class GamesTimeout(ServiceTimeout, GamesError):
    """The API did not answer a call in time (it may still have carried it out)."""


class GamesInputError(UserError, ValueError):
    """A request was refused on our side before anything was sent (bad id, name, list...).

    Not a :class:`ServiceError`: the API never saw it. It is a ``ValueError`` too, so code that
    builds requests from untrusted text can catch the usual exception.
    """
