"""A gateway process: the platform connections, and nothing else.

Each incoming message is published to the ingress partition of its chat; the replies, the
question a command asks and its end come back on this process's own inbox. Alerts for the
platforms this gateway runs come from a queue per platform that every gateway running that
platform shares. The gateway keeps the transports' view of the bot: ``bot.dispatcher`` is a
:class:`GatewayDispatcher`, and the registry holds every plugin's declared commands, so
Telegram's menu and Discord's slash commands list them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import shlex
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..commands import UserRef
from ..messages import Message, Reply
from ..plugin_info import declared_commands
from ..plugins import CORE_PLUGIN
from .broker import Broker, process_id, publish
from .envelope import (
    ASKED,
    BATCH,
    CONFIRM,
    CONFIRMED,
    DONE,
    REPLY,
    decode_event,
    encode_event,
    encode_message,
    new_id,
    partition_of,
)
from .lease import Lease
from .members import Members

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

    from ..app import Bot
    from ..commands import Command

log = logging.getLogger(__name__)

#: how many (command, reply number) pairs are remembered to show each reply once
_SEEN = 100_000


class GatewayDispatcher:
    """What transports call on ``bot.dispatcher``, answered by the cluster's workers."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._tasks: set[asyncio.Future[Any]] = set()

    @staticmethod
    def key(message: Message) -> tuple[str, str, str]:
        return (message.platform, message.chat_id, message.user_id)

    def submit(self, message: Message) -> asyncio.Future[None]:
        task = asyncio.get_running_loop().create_task(self.gateway.publish(message))
        self.track(task)
        return task

    def track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def process(self, message: Message) -> None:
        """Publish and wait until the command is done or asks (the console's pipe contract)."""
        await self.gateway.publish_and_wait(message)

    async def run(self, cmd: Command, message: Message, *, kwargs: dict[str, Any]) -> None:
        """A structured command (a Discord slash command) travels with its arguments.

        Each argument goes as the token its converter reads back (see
        :func:`.envelope.encode_args`), so a user picked from the platform's list reaches the
        worker as that user's id. Rebuilt into typed text it became a bare name (a payout to
        the picked member could reach whoever else answers to it), and a stray apostrophe in
        a free-text option changed how every other word split. The message's text still
        says what was run (routing to a plugin's owner, logs).
        """
        prefix = self.gateway.bot.settings.bot.prefix
        words = [prefix + cmd.name]
        for p in cmd.params:
            value = kwargs.get(p.name)
            if value is None:
                continue
            if p.flag:
                words += [f"--{p.name}"] if value else []
            elif isinstance(value, UserRef):
                words.append(f"<@{value.id}>" if value.id is not None else f"@{value.name}")
            elif p.greedy:
                words.append(str(value))
            else:
                words.append(shlex.quote(str(getattr(value, "value", value))))
        message.text = " ".join(words)
        await self.gateway.publish_and_wait(message, slash=(cmd, kwargs))

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.gateway.settled()

    def abandon_asks(self) -> None:
        """Questions are asked and waited for by the workers; nothing waits here."""


class Gateway:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        cfg = bot.settings.bot.cluster
        self.config = cfg
        self.broker = Broker(cfg)
        self.names = self.broker.names
        self.id = process_id("gateway")
        self.members = Members(bot.store, self.id, "gateway", cfg.heartbeat)
        self.channel: AbstractChannel | None = None
        self.inbox = self.names.inbox(self.id)
        #: command id -> the responder its replies go to
        self._responders: dict[str, Any] = {}
        #: command id -> set when it is done or asks
        self._waiters: dict[str, asyncio.Future[str]] = {}
        #: (platform, chat, user) -> the waiter a question of theirs wakes
        self._by_key: dict[tuple[str, str, str], asyncio.Future[str]] = {}
        self._keys: dict[str, tuple[str, str, str]] = {}
        self._open: set[str] = set()
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._tasks: list[asyncio.Task[Any]] = []
        self._outbound_tags: list[Any] = []
        self._leases: list[Lease] = []
        #: yes/no questions being asked for workers
        self._confirming: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.broker.connect()
        self.channel = await self.broker.channel(prefetch=256)
        for p in range(self.config.partitions):
            await self.broker.durable(self.channel, self.names.ingress(p), single=True)
        inbox = await self.channel.declare_queue(self.inbox, exclusive=True, auto_delete=True)
        await inbox.consume(self._on_event, no_ack=True)
        await self._declare_commands()
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        self._tasks.append(asyncio.create_task(self._watch_broker()))

    async def consume_outbound(self) -> None:
        """Alerts for the platforms this gateway runs (after its transports started)."""
        for platform in list(self.bot.transports):
            await self._consume_outbound(platform)
        self.members.beat(self.owns())

    async def _consume_outbound(self, platform: str) -> None:
        assert self.channel is not None
        queue = await self.broker.durable(self.channel, self.names.outbound(platform), single=False)
        self._outbound_tags.append(
            await queue.consume(lambda m, p=platform: self._on_outbound(p, m))
        )

    def singleton_transports(self, chosen: list[Any]) -> list[Any]:
        """Take out the transports only one process of the cluster may run at a time.

        Telegram's ``getUpdates`` answers a second poller with 409 Conflict: polling has one
        owner per token. Every gateway configured for it stands by on ``<name>.role.telegram``
        and the owner of that queue polls; when it dies the next takes over.
        """
        tg = self.bot.settings.transports.telegram
        if not (tg.enabled and tg.mode == "polling"):
            return chosen
        keep = []
        for transport in chosen:
            if transport.platform == "telegram":
                self._leases.append(self._transport_lease(transport))
            else:
                keep.append(transport)
        return keep

    def _transport_lease(self, transport: Any) -> Lease:
        async def acquire() -> None:
            self.bot.transports[transport.platform] = transport
            try:
                await transport.start(self.bot)
            except Exception as exc:
                transport.state, transport.reason = "failed", str(exc) or type(exc).__name__
                log.error("transport %s failed to start: %s", transport.platform, exc)
            await self._consume_outbound(transport.platform)
            self.members.beat(self.owns())

        async def release() -> None:
            await transport.stop()
            self.bot.transports.pop(transport.platform, None)

        async def ignore(message: Any) -> None:
            await message.ack()  # the queue carries nothing but its owner's token

        return Lease(
            self.broker,
            f"{self.names.prefix}.role.{transport.platform}",
            ignore,
            on_acquire=acquire,
            on_release=release,
        )

    async def identify_turn(self, shard_id: int, max_concurrency: int, window: float) -> None:
        """Wait for this shard's identify bucket, hold it for ``window`` seconds, go on.

        Discord allows one IDENTIFY per bucket (``shard_id % max_concurrency``) per 5 s across
        every process of the bot, and answers more with an invalid session. Each bucket is a
        single-active-consumer queue: the gateway whose turn it is receives its token,
        identifies, and gives the queue back once the window has passed; a gateway that dies
        meanwhile gives it back at once.
        """
        acquired = asyncio.Event()

        async def take() -> None:
            acquired.set()

        async def ignore(message: Any) -> None:
            await message.ack()

        bucket = shard_id % max_concurrency
        lease = Lease(
            self.broker, f"{self.names.prefix}.identify.b{bucket}", ignore, on_acquire=take
        )
        await lease.start()
        await acquired.wait()

        async def give_back() -> None:
            await asyncio.sleep(window)
            await lease.release(drain=0)

        self._tasks.append(asyncio.create_task(give_back()))

    async def start_leases(self) -> None:
        for lease in self._leases:
            await lease.start()

    async def stop(self) -> None:
        for task in [*self._tasks, *self._confirming]:
            task.cancel()
        for lease in self._leases:
            await lease.release(drain=5)
        with contextlib.suppress(Exception):
            self.members.leave()
        await self.broker.close()

    def owns(self) -> list[str]:
        return [f"transport {p}" for p, t in self.bot.transports.items() if t.state == "up"]

    async def _heartbeats(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                self.members.beat(self.owns())
            await asyncio.sleep(self.config.heartbeat)

    async def _watch_broker(self) -> None:
        await self.broker.lost.wait()
        self.bot.exit_code = 1
        self.bot.request_stop()

    async def _declare_commands(self) -> None:
        """Every enabled plugin's commands in the registry, read without starting them."""
        bot = self.bot
        names = [CORE_PLUGIN] + [
            n for n, s in bot.settings.plugins.items() if s.get("enabled", True) is not False
        ]
        for name in names:
            info = bot.plugins.available.get(name)
            if info is None:
                continue
            try:
                for cmd in await declared_commands(info):
                    cmd.plugin = name
                    if cmd.service is None and name != CORE_PLUGIN:
                        cmd.service = name
                    with contextlib.suppress(ValueError):
                        bot.registry.add(cmd)
            except Exception as exc:
                log.warning("plugin %s: commands not listed on this gateway: %s", name, exc)

    # ------------------------------------------------------------------ in

    async def publish(
        self, message: Message, slash: tuple[Command, dict[str, Any]] | None = None
    ) -> str:
        assert self.channel is not None
        if not message.id:
            message.id = new_id(message.platform)
        self._responders[message.id] = message.responder
        self._keys[message.id] = (message.platform, message.chat_id, message.user_id)
        self._open.add(message.id)
        p = partition_of(message.platform, message.chat_id, self.config.partitions)
        await publish(
            self.channel, self.names.ingress(p), encode_message(message, self.inbox, slash)
        )
        return message.id

    async def publish_and_wait(
        self, message: Message, slash: tuple[Command, dict[str, Any]] | None = None
    ) -> None:
        """Return when this message's command is done, or when a command of the sender asks
        (then the next line is the answer), as the single process's ``process`` does."""
        if not message.id:
            message.id = new_id(message.platform)
        mine: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        key = (message.platform, message.chat_id, message.user_id)
        self._waiters[message.id] = mine
        self._by_key[key] = mine
        await self.publish(message, slash)
        try:
            await mine
        finally:
            if self._by_key.get(key) is mine:
                del self._by_key[key]

    async def settled(self) -> None:
        """Wait (bounded) until every published command is done."""
        for _ in range(600):
            if not self._open:
                return
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ out

    async def _on_event(self, amsg: AbstractIncomingMessage) -> None:
        try:
            event = decode_event(amsg.body)
            if event["kind"] == BATCH:
                events = [e for e in event.get("events") or [] if isinstance(e, dict)]
                if not all("kind" in e and "id" in e for e in events):
                    raise ValueError("malformed batch")
            else:
                events = [event]
        except (ValueError, TypeError):
            log.warning("dropped a malformed event from the cluster")
            return
        for one in events:
            await self._event(one)

    async def _event(self, event: dict[str, Any]) -> None:
        command_id, kind = str(event["id"]), event["kind"]
        if kind == REPLY:
            seen = (command_id, int(event.get("seq", 0)))
            if seen in self._seen:
                return  # the command ran again after a crash: this was shown already
            self._seen[seen] = None
            if len(self._seen) > _SEEN:
                self._seen.popitem(last=False)
            responder = self._responders.get(command_id)
            if responder is None:
                return
            reply = Reply(
                str(event.get("text", "")),
                private=bool(event.get("private")),
                error=bool(event.get("error")),
            )
            try:
                await responder.send(reply)
            except Exception:
                log.exception("could not deliver a reply")
        elif kind == ASKED:
            self._wake(command_id, ASKED)
        elif kind == CONFIRM:
            task = asyncio.create_task(self._confirm(command_id, event))
            self._confirming.add(task)
            task.add_done_callback(self._confirming.discard)
        elif kind == DONE:
            self._open.discard(command_id)
            self._wake(command_id, DONE)
            asyncio.get_running_loop().call_later(30, self._responders.pop, command_id, None)

    async def _confirm(self, command_id: str, event: dict[str, Any]) -> None:
        """Ask a worker's yes/no question with this platform's buttons; send back the answer.

        None (the platform has no buttons) lets the worker ask in text. A question for a
        command this gateway does not know (it restarted since) is answered no: there is
        nobody here to show it to.
        """
        inbox, token = str(event.get("inbox", "")), str(event.get("token", ""))
        if not inbox or not token or self.channel is None:
            return
        responder = self._responders.get(command_id)
        answer: bool | None = False
        if responder is not None:
            try:
                timeout = float(event.get("timeout", 60))
                timeout = min(max(timeout, 1.0), 900.0) if math.isfinite(timeout) else 60.0
                answer = await responder.confirm(str(event.get("question", "")), timeout)
            except Exception:
                log.exception("could not ask a yes/no question")
                answer = False
        with contextlib.suppress(Exception):
            body = encode_event(CONFIRMED, command_id, token=token, answer=answer)
            await publish(self.channel, inbox, body)

    def _wake(self, command_id: str, kind: str) -> None:
        waiters = [self._waiters.pop(command_id, None)]
        if kind == ASKED:  # a command asked, maybe again after an answer: wake its sender
            key = self._keys.get(command_id)
            waiters.append(self._by_key.get(key) if key else None)
        else:
            self._keys.pop(command_id, None)
        for waiter in waiters:
            if waiter is not None and not waiter.done():
                waiter.set_result(kind)

    async def _on_outbound(self, platform: str, amsg: AbstractIncomingMessage) -> None:
        try:
            body = json.loads(amsg.body)
            chat_id, text = str(body["chat_id"]), str(body["text"])
        except (ValueError, KeyError, TypeError):
            log.warning("dropped a malformed alert from the cluster")
            await amsg.ack()
            return
        try:
            await self.bot.send(platform, chat_id, text)
        except Exception:
            log.exception("could not deliver an alert on %s", platform)
        await amsg.ack()
