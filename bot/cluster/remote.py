"""The worker's stand-ins for what lives in another process: a command's chat, a transport."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from ..messages import Reply
from ..transports.base import Transport
from .broker import publish
from .envelope import BATCH, CONFIRM, DONE, REPLY, encode_event

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel

    from ..app import Bot
    from .members import Members

log = logging.getLogger(__name__)


#: replies of a command wait this long for its end, to travel with it in one message
BATCH_WINDOW = 0.02
#: a yes/no question's answer may come this much later than the question's own timeout
#: (the gateway's round trip); after that the gateway is taken for gone and the answer is no
CONFIRM_GRACE = 10.0


class Confirms:
    """Yes/no questions asked through gateways' buttons, waiting for their answers.

    The buttons live where the chat connection is: the gateway asks with its platform's
    native question (Discord buttons, Telegram's inline keyboard) and sends the answer to
    this worker's inbox. A gateway whose platform has no buttons answers None, and the
    command asks in text as it would in one process.
    """

    def __init__(self, inbox: str) -> None:
        self.inbox = inbox
        self._waiting: dict[str, asyncio.Future[bool | None]] = {}

    def answered(self, event: dict[str, Any]) -> None:
        """An answer from a gateway (``kind: confirmed``); a stray or late one is ignored."""
        future = self._waiting.get(str(event.get("token", "")))
        answer = event.get("answer")
        if future is not None and not future.done() and answer in (True, False, None):
            future.set_result(answer)

    async def ask(
        self, outbox: Outbox, reply_to: str, command_id: str, question: str, timeout: float
    ) -> bool | None:
        token = uuid.uuid4().hex
        future: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        body = encode_event(
            CONFIRM, command_id, token=token, question=question, timeout=timeout, inbox=self.inbox
        )
        try:
            await outbox.publish(reply_to, body)  # after the replies made before it
            return await asyncio.wait_for(future, timeout + CONFIRM_GRACE)
        except TimeoutError:
            return False  # no answer is not a yes
        finally:
            self._waiting.pop(token, None)


class Outbox:
    """The worker's channel, and the replies not yet published on it.

    Most commands say one thing and end: their reply and their end go to the gateway as one
    message (``kind: batch``), half the broker's work. A reply that the command does not
    follow with its end within :data:`BATCH_WINDOW` (a progress message of a long command)
    goes out alone. Any other event published through :meth:`publish` first sends every
    waiting reply, so nothing overtakes a reply made before it (a gateway never hears
    "asked" before the question).
    """

    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel
        self._waiting: dict[RemoteResponder, None] = {}

    def flush(self) -> None:
        for responder in list(self._waiting):
            responder.flush()

    async def publish(self, queue: str, body: bytes) -> None:
        """Publish after every reply made before (a task, so it takes the lock after them)."""
        self.flush()
        await asyncio.ensure_future(publish(self.channel, queue, body))


class RemoteResponder:
    """Answers a command through the gateway that received it.

    Replies are numbered: a command that runs again (its worker died before acknowledging
    it) says the same things in the same order, and the gateway shows each number once.
    """

    def __init__(
        self, outbox: Outbox, reply_to: str, command_id: str, confirms: Confirms | None = None
    ) -> None:
        self.outbox = outbox
        self.reply_to = reply_to
        self.command_id = command_id
        self.confirms = confirms
        self.seq = 0
        self._pending: list[asyncio.Task[None]] = []
        self._events: list[dict[str, Any]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def send(self, reply: Reply) -> None:
        """Queue a reply; it leaves with the command's end or after :data:`BATCH_WINDOW`.
        :meth:`finished` waits for the broker's confirm before the command is acknowledged."""
        self.seq += 1
        if not self.reply_to:
            return
        event = {"kind": REPLY, "id": self.command_id, "seq": self.seq, "text": reply.text,
                 "private": reply.private, "error": reply.error}  # fmt: skip
        self._events.append(event)
        self.outbox._waiting[self] = None
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(BATCH_WINDOW, self.flush)

    def flush(self) -> None:
        """Publish what waits (in order: a task, taking the channel's lock in turn)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.outbox._waiting.pop(self, None)
        if not self._events:
            return
        events, self._events = self._events, []
        body = (
            json.dumps(events[0]) if len(events) == 1 else json.dumps({
                "kind": BATCH, "id": self.command_id, "events": events})
        ).encode()  # fmt: skip
        coro = publish(self.outbox.channel, self.reply_to, body)
        self._pending.append(asyncio.ensure_future(coro))

    async def finished(self) -> None:
        """The command is over: its replies and its end to the gateway (one message when
        they fit), confirmed by the broker (raises if a publish failed)."""
        if self.reply_to:
            self._events.append({"kind": DONE, "id": self.command_id, "seq": 0})
        self.flush()
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)

    async def confirm(self, question: str, timeout: float) -> bool | None:
        if not self.reply_to or self.confirms is None:
            return None  # nobody to ask natively: the command asks in text
        return await self.confirms.ask(
            self.outbox, self.reply_to, self.command_id, question, timeout
        )


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
