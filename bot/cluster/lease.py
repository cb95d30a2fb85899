"""Owning a queue: who is the single active consumer right now, and knowing it.

AMQP 0-9-1 does not tell a consumer that the broker made it the active one. So each owned
queue also carries a *token* message: the active consumer receives it and keeps it
unacknowledged, and holding the token is being the owner. When the owner's connection dies
the broker requeues the token (with every unacknowledged message, in order) and hands it to
the next consumer. A duplicate token (two processes started at once each put one in) reaches
the same active consumer, which acknowledges the spare: duplicates are harmless.

Work that arrives before the token is held back until it does, so a new owner never runs a
command while the old one may still be finishing an earlier one of the same queue. The token
is renewed every few minutes (a new one published, the old one acknowledged): the broker
closes a channel that keeps a message unacknowledged past its ``consumer_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .broker import Broker, publish

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

log = logging.getLogger(__name__)

TOKEN = "token"
#: seconds between token renewals (well under RabbitMQ's default consumer_timeout of 30 min)
RENEW_EVERY = 300.0
#: work held back this long without a token: the token was lost (never published, or its
#: queue purged), so the active consumer puts a new one in
MINT_AFTER = 10.0

Handler = Callable[["AbstractIncomingMessage"], Awaitable[None]]


class Lease:
    """One owned queue: ``on_acquire`` when this process becomes its owner, then ``handle``
    for each work message in delivery order (the handler acknowledges it)."""

    def __init__(
        self,
        broker: Broker,
        queue: str,
        handle: Handler,
        *,
        prefetch: int = 32,
        on_acquire: Callable[[], Awaitable[None]] | None = None,
        on_release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.broker = broker
        self.queue_name = queue
        self.handle = handle
        self.prefetch = prefetch
        self.on_acquire = on_acquire
        self.on_release = on_release
        self.held = False
        self._token: AbstractIncomingMessage | None = None
        self._renewal: str | None = None
        self._held_back: list[AbstractIncomingMessage] = []
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: ids of work messages handed to ``handle`` and not yet ``settled``
        self._open: set[int] = set()
        self._timers: list[asyncio.Task[None]] = []
        self._acquiring: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._channel = await self.broker.channel(self.prefetch)
        self._queue = await self.broker.durable(self._channel, self.queue_name, single=True)
        await publish(self._channel, self.queue_name, b"", headers={"kind": TOKEN})
        self._tag = await self._queue.consume(self._deliver)
        self._timers.append(asyncio.create_task(self._renew_loop()))

    # ------------------------------------------------------------------ deliveries

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        if (message.headers or {}).get("kind") == TOKEN:
            await self._got_token(message)
            return
        if not self.held:
            self._held_back.append(message)
            if len(self._held_back) == 1:
                self._timers.append(asyncio.create_task(self._mint_if_still_waiting()))
            return
        self._run(message)

    async def _got_token(self, message: AbstractIncomingMessage) -> None:
        renewal = (message.headers or {}).get("renewal")
        if self._token is None:
            self._token = message
            if self._acquiring is None:
                self._acquiring = asyncio.create_task(self._acquire())
            return
        if renewal is not None and renewal == self._renewal:
            old, self._token, self._renewal = self._token, message, None
            await old.ack()
            return
        await message.ack()  # a spare token: one is enough

    async def _acquire(self) -> None:
        if self.on_acquire is not None:
            try:
                await self.on_acquire()
            except Exception:
                log.exception("taking over %s failed", self.queue_name)
        self.held = True
        log.info("this process now owns %s", self.queue_name)
        waiting, self._held_back = self._held_back, []
        for message in waiting:
            self._run(message)

    def _run(self, message: AbstractIncomingMessage) -> None:
        self._open.add(id(message))
        task = asyncio.create_task(self._guarded(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, message: AbstractIncomingMessage) -> None:
        try:
            await self.handle(message)
        except Exception:
            # A handler bug must not lose the message for ever: it goes back to the queue.
            log.exception("handling a message of %s failed", self.queue_name)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)

    async def _mint_if_still_waiting(self) -> None:
        await asyncio.sleep(MINT_AFTER)
        if self._acquiring is None and self._held_back and self._channel:
            # Receiving work at all means the broker made this the active consumer; the
            # token only proves the last owner finished. Lost, or stuck behind a full
            # prefetch of held-back work: take over, and put a new token in.
            log.warning(
                "%s had no owner token; taking over and putting in a new one", self.queue_name
            )
            self._acquiring = asyncio.create_task(self._acquire())
            await publish(self._channel, self.queue_name, b"", headers={"kind": TOKEN})

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            if self._token is not None and self._channel is not None and self._renewal is None:
                self._renewal = uuid.uuid4().hex
                headers = {"kind": TOKEN, "renewal": self._renewal}
                with contextlib.suppress(Exception):
                    await publish(self._channel, self.queue_name, b"", headers=headers)

    # ------------------------------------------------------------------ leaving

    def settled(self, message: AbstractIncomingMessage) -> None:
        """The handler acknowledged ``message`` (its work is over, wherever it ran)."""
        self._open.discard(id(message))

    @property
    def busy(self) -> bool:
        """Work was handed out and is not settled: giving the queue away now would let the
        next owner run it a second time, or overtake it."""
        return bool(self._tasks) or bool(self._open)

    async def release(self, *, drain: float = 30.0) -> None:
        """Stop taking work, let what runs finish, then give the queue back to the broker.

        Closing the channel requeues the token and whatever was held back, in order, so the
        next consumer takes over exactly where this one stopped.
        """
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
            self._tag = None
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=drain)
        deadline = asyncio.get_running_loop().time() + drain
        while self._open and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # handed on (to a lane): wait for its acknowledgement
        was_held, self.held = self.held, False
        for timer in self._timers:
            timer.cancel()
        if self._acquiring is not None:
            await asyncio.gather(self._acquiring, return_exceptions=True)
        if was_held and self.on_release is not None:
            try:
                await self.on_release()
            except Exception:
                log.exception("giving up %s failed", self.queue_name)
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
        self._channel = self._queue = None
        self._token, self._held_back, self._timers = None, [], []
        self._open = set()
        self._acquiring = None
