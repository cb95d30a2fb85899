"""The transport-neutral shapes that flow between transports and the dispatcher."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .commands import UserRef


@dataclass(frozen=True)
class Reply:
    """What a handler sends back. ``private`` asks for ephemeral/DM delivery where possible."""

    text: str
    private: bool = False
    #: the reply reports an error (Discord shows these ephemeral)
    error: bool = False


class Responder(Protocol):
    """How a transport answers one incoming message (a text message or a slash command)."""

    async def send(self, reply: Reply) -> None: ...

    async def confirm(self, question: str, timeout: float) -> bool | None:
        """Ask yes/no natively (buttons); None means "not supported, ask in text"."""
        ...


@dataclass
class Message:
    """One incoming chat message, already stripped of platform details."""

    platform: str
    chat_id: str
    user_id: str
    user_name: str
    text: str
    responder: Responder
    #: "private", "group" or "channel"
    chat_kind: str = "private"
    #: the transport knows the user is an admin by platform means (e.g. Telegram chat admin)
    platform_admin: bool = False
    #: mentions resolved by the transport: the token as typed -> the user it names
    mentions: dict[str, UserRef] = field(default_factory=dict)
    #: transport-specific extras (roles on Discord, ...)
    extra: dict[str, Any] = field(default_factory=dict)
    #: the platform's event id (``telegram:<update id>``, ``discord:<message id>``), or one
    #: the cluster gateway made: the same on every redelivery, so a command run twice can
    #: tell (money operations derive their transaction ids from it); "" when not known
    id: str = ""


class CollectingResponder:
    """Keeps replies in a list; used by the console, the harness and transports' fallbacks."""

    def __init__(self, on_reply: Callable[[Reply], Awaitable[None]] | None = None) -> None:
        self.replies: list[Reply] = []
        self._on_reply = on_reply

    async def send(self, reply: Reply) -> None:
        self.replies.append(reply)
        if self._on_reply is not None:
            await self._on_reply(reply)

    async def confirm(self, question: str, timeout: float) -> bool | None:
        return None
