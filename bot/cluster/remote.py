"""The worker's stand-ins for what lives in another process: a command's chat, a transport."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from ..messages import Reply
from ..transports.base import Transport
from .broker import publish
from .envelope import REPLY, encode_event

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel

    from ..app import Bot
    from .members import Members

log = logging.getLogger(__name__)


class RemoteResponder:
    """Answers a command through the gateway that received it.

    Replies are numbered: a command that runs again (its worker died before acknowledging
    it) says the same things in the same order, and the gateway shows each number once.
    """

    def __init__(self, channel: AbstractChannel, reply_to: str, command_id: str) -> None:
        self.channel = channel
        self.reply_to = reply_to
        self.command_id = command_id
        self.seq = 0
        self._pending: list[asyncio.Task[None]] = []

    async def send(self, reply: Reply) -> None:
        """Publish without waiting for the broker's confirm: :meth:`confirmed` waits for all
        of them before the command is acknowledged. Publishes leave in the order they were
        made (one channel, its lock taken in order), so replies keep their order."""
        self.seq += 1
        if not self.reply_to:
            return
        body = encode_event(
            REPLY,
            self.command_id,
            self.seq,
            text=reply.text,
            private=reply.private,
            error=reply.error,
        )
        self.later(publish(self.channel, self.reply_to, body))

    def later(self, coro: Any) -> None:
        """Publish in order, confirmed by :meth:`confirmed`."""
        self._pending.append(asyncio.ensure_future(coro))

    async def confirmed(self) -> None:
        """Every publish of this command is in the broker (raises if one failed)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)

    async def confirm(self, question: str, timeout: float) -> bool | None:
        return None  # buttons live in the gateway; the question is asked in text


class RemoteTransport(Transport):
    """A platform that a gateway runs: alerts for its chats go to that platform's queue."""

    max_length = 1_000_000  # the gateway splits to the platform's real limit

    def __init__(self, platform: str, queue: str, members: Members) -> None:
        super().__init__()
        self.platform = platform
        self.queue = queue
        self.members = members
        self.channel: AbstractChannel | None = None

    async def start(self, bot: Bot) -> None:
        self.state = "up"

    async def stop(self) -> None:
        self.state = "stopped"

    async def send(self, chat_id: str, text: str) -> None:
        if self.channel is None:
            raise RuntimeError("the cluster is not connected")
        body = json.dumps({"chat_id": chat_id, "text": text}).encode()
        await publish(self.channel, self.queue, body)

    def status(self) -> tuple[str, str]:
        if self.members.gateways_running(self.platform):
            return "up", ""
        return "down", f"no gateway of the cluster runs {self.platform}"
