"""Exceptions that cross the boundary between plugins, protocol clients and chat.

The dispatcher turns a :class:`UserError` into a plain reply (its message is written for the
chat user and must never contain a secret); anything else is a bug, logged with a traceback
and answered with a short apology and an error id.
"""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the framework raises on purpose."""


class UserError(BotError):
    """An error whose message is meant for the chat user, shown as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(UserError):
    """The user typed a command wrongly; the dispatcher adds the usage line."""


class PermissionDenied(UserError):
    """The caller may not run this command here."""


class ServiceError(UserError):
    """An outside API refused a request or failed.

    ``service`` names the API ("deepbot", "chatwars", ...) and ``code`` carries the API's own
    result code where it has one, so callers can branch on it without parsing text.
    """

    def __init__(self, message: str, *, service: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.code = code


class NotConnected(ServiceError):
    """The client has no live connection; raised at once instead of hanging."""


class ServiceTimeout(ServiceError):
    """The API did not answer in time (several of ours may not answer at all)."""


class ConfigError(BotError):
    """The configuration is invalid; the message lists every problem with its dotted path."""
