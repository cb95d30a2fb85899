"""What a command handler gets as ``ctx``: who called, where, and the plugin's tools."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from . import metrics
from .errors import NotConnected, UserError
from .links import ClaimOutcome, claim, link_hint
from .messages import Message, Reply

if TYPE_CHECKING:
    from .access import Caller
    from .app import Bot
    from .commands import Command
    from .plugins import PluginRuntime
    from .store import Link, Proof, Store


#: uuid5 namespace of ledger ids derived from command ids
_LEDGER_NAMESPACE = uuid.UUID("6f1f4d1e-5a8b-4c6e-9a51-2d0b7c3e8f40")


class Context:
    """The caller, the chat, the plugin's client and config, the store, and reply helpers."""

    __slots__ = (
        "_links",
        "bot",
        "caller",
        "command",
        "is_admin",
        "is_owner",
        "message",
        "plugin",
        "replies_sent",
    )

    def __init__(
        self,
        bot: Bot,
        message: Message,
        command: Command | None,
        plugin: PluginRuntime | None,
        caller: Caller,
    ) -> None:
        self.bot = bot
        self.message = message
        self.command = command
        self.plugin = plugin
        #: who sent the message and what the config makes them (see :mod:`bot.access`)
        self.caller = caller
        self.is_admin = caller.is_admin
        self.is_owner = caller.is_owner
        self.replies_sent = 0
        #: links looked up during this command (the permission check and the handler share one)
        self._links: dict[str, Link | None] = {}

    # ------------------------------------------------------------------ who and where

    @property
    def platform(self) -> str:
        return self.message.platform

    @property
    def user_id(self) -> str:
        return self.message.user_id

    @property
    def user_name(self) -> str:
        return self.message.user_name

    @property
    def chat_id(self) -> str:
        return self.message.chat_id

    @property
    def role(self) -> str:
        return self.caller.role

    # ------------------------------------------------------------------ the plugin's tools

    @property
    def client(self) -> Any:
        """The plugin's protocol client, as its ``bot_startup`` set it."""
        client = self.plugin.client if self.plugin else None
        if client is None:
            name = self.plugin.name if self.plugin else "this plugin"
            raise NotConnected(f"{name} is not running right now.", service=name)
        if metrics.active() and self.plugin is not None:
            return metrics.timed_client(self.plugin.name, client)  # API calls timed by call
        return client

    @property
    def state(self) -> Any:
        """What the plugin keeps between messages (``plugin.state``, set in its
        ``bot_startup``); raises :class:`NotConnected` while the plugin is not running, as
        :attr:`client` does."""
        state = self.plugin.state if self.plugin else None
        if state is None:
            name = self.plugin.name if self.plugin else "this plugin"
            raise NotConnected(f"{name} is not running right now.", service=name)
        return state

    @property
    def config(self) -> Any:
        return self.plugin.config if self.plugin else None

    @property
    def store(self) -> Store:
        return self.bot.store

    @property
    def service(self) -> str:
        if self.command and self.command.service:
            return self.command.service
        return self.plugin.name if self.plugin else ""

    def link(self, service: str | None = None) -> Link | None:
        """The caller's link to ``service`` (default: this command's service), or None."""
        service = service or self.service
        if service not in self._links:
            self._links[service] = self.bot.store.get_link(self.platform, self.user_id, service)
        return self._links[service]

    def forget_link(self, service: str) -> None:
        """Drop the cached link of ``service`` (it was just changed)."""
        self._links.pop(service, None)

    async def claim_link(
        self,
        account: str,
        *,
        service: str | None = None,
        proof: Proof | None = None,
        token: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> ClaimOutcome:
        """Link the caller to ``account`` at the proof this link command declares; a claim
        waits for an admin where ``link_approval`` is ``admins`` (see bot/links.py)."""
        return await claim(self, account, service=service, proof=proof, token=token, data=data)

    async def linked_account(self, service: str | None = None) -> str:
        """The caller's account name on ``service``; a clear message if they have none."""
        service = service or self.service
        link = self.link(service)
        if link is None:
            raise UserError(
                f"You have not linked a {service} account yet. Link it with "
                f"{link_hint(self.bot, service)}, or name one in the command."
            )
        return link.account

    def publish(self, topic: str, text: str, data: dict[str, Any] | None = None) -> int:
        return self.bot.alerts.publish(topic, text, data)

    def transaction_id(self, operation: str) -> str | None:
        """The ledger id for ``operation`` of this command, derived from the command's id.

        A command the broker delivers again (its worker died mid-way) has the same id, so
        its money operation finds the row the first run wrote instead of moving money a
        second time. None when the message has no id (then the ledger makes a fresh one).
        """
        if not self.message.id:
            return None
        return str(uuid.uuid5(_LEDGER_NAMESPACE, f"{self.message.id}\n{operation}"))

    def audit(self, outcome: str, **arguments: Any) -> None:
        """Write an audit row for this caller (admin commands are audited automatically)."""
        name = self.command.name if self.command else "?"
        self.bot.store.audit(self.platform, self.user_id, name, arguments, outcome)

    # ------------------------------------------------------------------ talking back

    async def reply(self, text: str, *, private: bool = False, error: bool = False) -> None:
        self.replies_sent += 1
        await self.message.responder.send(Reply(text, private=private, error=error))

    async def ask(self, question: str, timeout: float | None = None) -> str:
        """Ask the caller and wait for their next message in this chat.

        Used by code-entry flows ("send me the code you received"). Raises a UserError if no
        answer comes within ``timeout`` (default ``bot.ask_timeout``).
        """
        await self.reply(question)
        return await self.bot.dispatcher.wait_for_answer(
            self.message, timeout or self.bot.settings.bot.ask_timeout
        )

    async def confirm(self, question: str, timeout: float | None = None) -> bool:
        """Ask yes/no: buttons where the transport has them, else a typed yes or no."""
        timeout = timeout or self.bot.settings.bot.ask_timeout
        native = await self.message.responder.confirm(question, timeout)
        if native is not None:
            return native
        answer = await self.ask(f"{question} (yes/no)", timeout)
        return answer.strip().lower() in ("yes", "y", "ok", "confirm")
