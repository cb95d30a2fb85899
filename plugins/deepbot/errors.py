"""Typed errors for every way DeepBot can refuse or fail a call.

DeepBot answers refusals with free text ("Not enough points", "User not found", ...). Turning
each into its own exception lets the chat commands branch on the kind of failure (a refusal
such as :class:`NotEnoughPoints` changed nothing; after a :class:`ConnectionLost` the change
may or may not have happened) without parsing text. Every message is a plain sentence safe to
show in chat; ``code`` keeps DeepBot's own words for logs and branching.
"""

from __future__ import annotations

from bot.errors import NotConnected, ServiceError, ServiceTimeout

SERVICE = "deepbot"


class DeepBotError(ServiceError):
    """Base of everything the DeepBot client raises, so a command can catch one type."""

    def __init__(
        self, message: str, *, code: str | None = None, function: str = "", user: str = ""
    ) -> None:
        super().__init__(message, service=SERVICE, code=code)
        self.function = function
        self.user = user


class InvalidArgument(DeepBotError, ValueError):
    """We refused a call before sending it: the value would break or inject into the frame."""


class DeepBotNotConnected(NotConnected, DeepBotError):
    """No registered connection right now; raised at once so commands never hang."""


class ConnectionLost(DeepBotNotConnected):
    """The connection dropped while the call was in flight.

    A change may or may not have been applied by DeepBot; callers that move points must treat
    this as "unknown" and reconcile (the ``give`` command cancels its escrow).
    """


class DeepBotTimeout(ServiceTimeout, DeepBotError):
    """DeepBot did not answer in time; it stays silent on requests it does not understand."""


class AuthenticationFailed(DeepBotError):
    """DeepBot refused our API secret; retrying with the same secret cannot help."""


class RegistrationRefused(DeepBotError):
    """DeepBot answered the registration with something other than success or its documented
    "incorrect api secret" (``null``, "Server busy", ...): retried with backoff."""


class NotAuthorized(DeepBotError):
    """DeepBot says this connection is not registered (it forgot us); we re-register."""


class UserNotFound(DeepBotError):
    """DeepBot has no viewer by that name."""


class NotEnoughPoints(DeepBotError):
    """The viewer's balance is below the amount to move into escrow."""


class NoPointsInEscrow(DeepBotError):
    """Commit or cancel found nothing held in escrow for that viewer."""


class InvalidPoints(DeepBotError):
    """DeepBot refused the amount ("points should be a positive number")."""


class OperationFailed(DeepBotError):
    """DeepBot's bare "failed" for set/add/del points: unknown viewer or a value it refused."""


class InvalidVipLevel(DeepBotError):
    """DeepBot refused the VIP level."""


class InvalidVipLength(DeepBotError):
    """DeepBot refused the number of VIP days."""


class UnexpectedReply(DeepBotError):
    """DeepBot answered something this client does not know how to read."""
