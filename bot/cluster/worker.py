"""A worker process: ingress partitions in, dispatch and plugins, replies out.

Every worker consumes every ingress partition and every plugin queue, as a single active
consumer (see :mod:`.lease`): it is active on some and stands by on the rest. A command of a
plugin this worker does not own is forwarded to the plugin's queue, whose owner runs it and
answers the gateway directly; the forwarding worker waits for the owner's word before it
acknowledges the command, so a crash anywhere leaves the command in a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..messages import Message, Reply
from ..plugin_info import declared_commands, plugin_for_words
from ..plugins import CORE_PLUGIN
from .broker import Broker, process_id, publish
from .envelope import (
    ASKED,
    CONFIRMED,
    DONE,
    REPLY,
    decode_args,
    decode_event,
    decode_message,
    encode_event,
)
from .lanes import Lanes
from .lease import Lease
from .members import Members
from .remote import Confirms, Outbox, RemoteResponder, RemoteTransport

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

    from ..app import Bot

log = logging.getLogger(__name__)

#: a structured command's name and arguments (see :func:`.envelope.encode_args`), or None
Slash = tuple[str, dict[str, Any]] | None

#: a partition given up to balance the cluster is consumed again (as a standby) after this
_STANDBY_AGAIN = 3.0


class Worker:
    def __init__(self, bot: Bot, role: str = "worker") -> None:
        self.bot = bot
        cfg = bot.settings.bot.cluster
        self.config = cfg
        self.broker = Broker(cfg)
        self.names = self.broker.names
        self.id = process_id(role)
        self.members = Members(bot.store, self.id, role, cfg.heartbeat)
        self.channel: AbstractChannel | None = None
        self.outbox: Outbox | None = None
        self.confirms = Confirms(self.names.inbox(self.id))
        self.lanes = Lanes()
        self.partitions: dict[int, Lease] = {}
        self.plugin_leases: dict[str, Lease] = {}
        #: commands of plugins owned elsewhere: plugin -> command names
        self.remote_commands: dict[str, tuple[str, ...]] = {}
        #: (platform, chat, user) -> (plugin, command id) of a question asked at an owner
        self.remote_asks: dict[tuple[str, str, str], tuple[str, str]] = {}
        #: forwarded message id -> what its owner's first word resolves
        self._forwarded: dict[str, asyncio.Future[str]] = {}
        #: forwarded command id -> finish it (acknowledge) when the owner says it is done
        self._completions: dict[str, asyncio.Future[None]] = {}
        #: commands this worker runs as an owner: id -> inboxes of the workers waiting
        self._owner_inflight: dict[str, set[str]] = {}
        #: the command id a key's pending question belongs to
        self._asking: dict[tuple[str, str, str], str] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._subscriptions_seen: tuple[Any, ...] | None = None
        #: id of an ingress message being handled -> the partition it came from
        self._lease_of: dict[int, Lease] = {}
        #: bot.cluster.concurrency: commands running here at once (see _run_here)
        self._slots = asyncio.Semaphore(cfg.concurrency)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Connect, learn the plugins' commands, then take partitions and plugins."""
        bot = self.bot
        await self.broker.connect()
        self.channel = await self.broker.channel(prefetch=256)
        self.outbox = Outbox(self.channel)
        self._reload_subscriptions_if_changed()
        inbox = await self.channel.declare_queue(
            self.names.inbox(self.id), exclusive=True, auto_delete=True
        )
        await inbox.consume(self._inbox, no_ack=True)
        for platform in ("console", "discord", "telegram"):
            if getattr(bot.settings.transports, platform).enabled:
                remote = RemoteTransport(platform, self.names.outbound(platform), self.members)
                remote.channel = self.channel
                bot.transports[platform] = remote
        for name, section in bot.settings.plugins.items():
            if section.get("enabled", True) is False or name == CORE_PLUGIN:
                continue
            info = bot.plugins.available.get(name)
            if info is None:
                bot.plugins.failures[name] = f"no plugin named {name!r} is installed"
                continue
            if section.get("run_on") == "every_worker":
                await bot.plugins.try_enable(name)  # nothing unique: it runs right here
                continue
            self.remote_commands[name] = await _declared_commands(info)
            lease = Lease(
                self.broker,
                self.names.plugin(name),
                lambda amsg, n=name: self._owner_message(n, amsg),
                on_acquire=lambda n=name: self._own_plugin(n),
                on_release=lambda n=name: self._disown_plugin(n),
            )
            self.plugin_leases[name] = lease
            await lease.start()
        self.members.beat(self.owns())
        for p in range(self.config.partitions):
            await self._consume_partition(p)
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        self._tasks.append(asyncio.create_task(self._watch_broker()))

    async def _consume_partition(self, p: int) -> None:
        lease = Lease(
            self.broker,
            self.names.ingress(p),
            lambda amsg: self._ingress_message(lease, amsg),
            prefetch=64,
        )
        self.partitions[p] = lease
        await lease.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for lease in list(self.partitions.values()) + list(self.plugin_leases.values()):
            await lease.release(drain=10)
        await self.lanes.idle()
        with contextlib.suppress(Exception):
            self.members.leave()
        await self.broker.close()

    async def _watch_broker(self) -> None:
        await self.broker.lost.wait()
        self.bot.exit_code = 1
        self.bot.request_stop()

    def owns(self) -> list[str]:
        held = [p for p, lease in self.partitions.items() if lease.held]
        owned = [f"plugin {n}" for n, lease in self.plugin_leases.items() if lease.held]
        return owned + ([f"partitions {_ranges(held)}"] if held else [])

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat)
            try:
                self.members.beat(self.owns(), await self._health())
                self._reload_subscriptions_if_changed()
                await self._balance()
            except Exception:
                log.exception("cluster heartbeat failed")

    def _reload_subscriptions_if_changed(self) -> None:
        """Another worker's ``alerts on`` reaches this worker's router within a heartbeat.

        The router keeps its index in memory; in a cluster the subscriptions table is
        written by every worker, so a cheap fingerprint of it is compared each heartbeat.
        """
        seen = self._subscriptions_fingerprint()
        if seen != self._subscriptions_seen:
            self._subscriptions_seen = seen
            self.bot.alerts.load()

    def _subscriptions_fingerprint(self) -> tuple[Any, ...]:
        row = self.bot.store.db.execute(
            "select count(*), max(rowid), total(rowid) from subscriptions"
        ).fetchone()
        return tuple(row)

    async def _health(self) -> dict[str, tuple[str, str]]:
        out = {}
        for name, lease in self.plugin_leases.items():
            if lease.held:
                health = await self.bot.plugins.health(name)
                out[name] = (health.state, self.bot.scrub(health.reason))
        return out

    async def _balance(self) -> None:
        """Give up idle partitions while holding more than a fair share.

        The broker then makes the next standby consumer active; this worker consumes those
        partitions again a little later, as a standby itself. Busy partitions are kept until
        a later round, so nothing in flight changes hands.
        """
        workers = max(1, len(self.members.workers()))
        fair = math.ceil(self.config.partitions / workers)
        held = [p for p, lease in self.partitions.items() if lease.held]
        if len(held) <= fair:
            return
        spare = [p for p in reversed(held) if not self.partitions[p].busy][: len(held) - fair]
        if not spare:
            return
        for p in spare:
            await self.partitions.pop(p).release()
        await asyncio.sleep(_STANDBY_AGAIN)
        for p in spare:
            await self._consume_partition(p)

    # ------------------------------------------------------------------ plugins

    async def _own_plugin(self, name: str) -> None:
        self._reload_subscriptions_if_changed()  # what the last owner's chats follow
        self.bot.plugins.failures.pop(name, None)
        await self.bot.plugins.try_enable(name)
        self.members.beat(self.owns(), await self._health())

    async def _disown_plugin(self, name: str) -> None:
        if name in self.bot.plugins.runtimes:
            await self.bot.plugins.disable(name)

    def _remote_plugin_for(self, message: Message) -> str | None:
        """The plugin owned elsewhere whose command ``message`` is, if any."""
        prefix = self.bot.settings.bot.prefix
        text = message.text.strip()
        if not text.startswith(prefix):
            return None
        body = text[len(prefix) :]
        cmd, _, _ = self.bot.registry.resolve(body)
        if cmd is not None:
            return None
        elsewhere = {
            plugin: names
            for plugin, names in self.remote_commands.items()
            if not ((lease := self.plugin_leases.get(plugin)) is not None and lease.held)
        }
        return plugin_for_words(body.lower().split(), elsewhere)

    # ------------------------------------------------------------------ ingress

    async def _ack(self, amsg: AbstractIncomingMessage) -> None:
        """Acknowledge an ingress message and tell its partition it is settled."""
        await amsg.ack()
        lease = self._lease_of.pop(id(amsg), None)
        if lease is not None:
            lease.settled(amsg)

    async def _ingress_message(self, lease: Lease, amsg: AbstractIncomingMessage) -> None:
        self._lease_of[id(amsg)] = lease
        assert self.channel is not None
        try:
            message, reply_to, slash = decode_message(amsg.body, _Unset())
        except ValueError as exc:
            log.warning("dropped a message from the cluster: %s", exc)
            await self._ack(amsg)
            return
        message.responder = RemoteResponder(self.outbox, reply_to, message.id, self.confirms)
        self.lanes.submit(
            ("in", message.platform, message.chat_id),
            lambda: self._handle_ingress(amsg, message, reply_to, slash),
        )

    async def _handle_ingress(
        self, amsg: AbstractIncomingMessage, message: Message, reply_to: str, slash: Slash
    ) -> None:
        if self.members.answered(message.id):
            await self._event(reply_to, DONE, message.id)
            await self._ack(amsg)
            return
        key = self.bot.dispatcher.key(message)
        if slash is not None:  # never an answer: its own command, here or at its owner
            here = self.bot.registry.find(slash[0]) is not None
            plugin = None if here else self._remote_plugin_for(message)
        elif self.bot.dispatcher.expects_answer(key):  # the answer to a question asked here
            self.remote_asks.pop(key, None)
            plugin = None
        else:
            asked = self.remote_asks.pop(key, None)
            plugin = asked[0] if asked else self._remote_plugin_for(message)
        if plugin is not None:
            await self._forward(plugin, amsg, message, reply_to)
            return
        await self._run_here(
            message, reply_to, lambda: self._finish(amsg, message, reply_to), slash=slash
        )

    async def _run_here(
        self, message: Message, reply_to: str, finish: Any, tell: Any = None, slash: Slash = None
    ) -> None:
        """Dispatch in this process; ``finish`` once the message's own command is over.

        When the command asks (or, after an answer, asks again), ``tell(command_id)`` says so
        (by default to the gateway), so the next message of the sender can be the answer.
        """
        dispatcher = self.bot.dispatcher
        key = dispatcher.key(message)
        if tell is None:

            async def tell(command_id: str) -> None:
                await self._event(reply_to, ASKED, command_id)

        # A slot is a command running here (bot.cluster.concurrency), not its bookkeeping:
        # sending its replies and acknowledging it (a broker round trip, 2-10 ms) happen
        # after the slot is given back, as does the wait for a question's answer.
        async with self._slots:
            if slash is not None:
                run = functools.partial(self._run_slash, message, *slash)
                task = await dispatcher.process(message, run=run)
            else:
                task = await dispatcher.process(message)
        if task is not None and not task.done():  # it asked: the next message may answer
            self._asking[key] = message.id
            await tell(message.id)

            def done(_: Any) -> None:
                if self._asking.get(key) == message.id:
                    del self._asking[key]
                self._spawn(finish())

            task.add_done_callback(done)
            return
        if task is None and dispatcher.expects_answer(key) and key in self._asking:
            await tell(self._asking[key])  # the command it answered asked again
        await finish()

    async def _run_slash(self, message: Message, name: str, args: dict[str, Any]) -> None:
        """A structured command, its arguments converted back (see envelope.encode_args)."""
        bot = self.bot
        cmd = bot.registry.find(name)
        if cmd is None:
            text = "This command is not available right now (it may have been removed)."
            await message.responder.send(Reply(text, private=True, error=True))
            return
        try:
            kwargs = decode_args(cmd, args, message.platform)
        except UsageError as exc:
            usage = cmd.usage(bot.settings.bot.prefix)
            await message.responder.send(
                Reply(f"{exc.message}\nUsage: {usage}", private=True, error=True)
            )
            return
        await bot.dispatcher.run(cmd, message, kwargs=kwargs)

    async def _finish(self, amsg: AbstractIncomingMessage, message: Message, reply_to: str) -> None:
        """Replies and the end confirmed, the id recorded as answered, then the ack."""
        responder = message.responder
        if isinstance(responder, RemoteResponder):
            await responder.finished()
        else:
            await self._event(reply_to, DONE, message.id)
        # Only once the replies are in the broker: a run again after a crash before this
        # line repeats them (the gateway shows each once); after it, it repeats nothing.
        await self.members.mark_answered(message.id)
        await self._ack(amsg)

    async def _event(self, queue: str, kind: str, command_id: str, **fields: Any) -> None:
        """Publish an event after every reply made before it (see :class:`.remote.Outbox`)."""
        if queue and self.outbox is not None:
            await self.outbox.publish(queue, encode_event(kind, command_id, **fields))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    # ------------------------------------------------------------------ forwarding

    async def _forward(
        self, plugin: str, amsg: AbstractIncomingMessage, message: Message, reply_to: str
    ) -> None:
        """Hand a command to its plugin's owner; acknowledge it when the owner is done."""
        assert self.channel is not None
        loop = asyncio.get_running_loop()
        first: asyncio.Future[str] = loop.create_future()
        completion: asyncio.Future[None] = loop.create_future()
        self._forwarded[message.id] = first
        self._completions[message.id] = completion
        await publish(
            self.channel,
            self.names.plugin(plugin),
            amsg.body,
            reply_to=self.names.inbox(self.id),
            correlation_id=message.id,
        )
        try:
            word = await asyncio.wait_for(first, self.config.forward_timeout)
        except TimeoutError:
            await self._event(
                reply_to,
                REPLY,
                message.id,
                seq=10_000,
                text=f"The {plugin} plugin did not answer in time; it may still run the command.",
                private=True,
                error=True,
            )
            self._completions.pop(message.id, None)
            await self._finish(amsg, message, reply_to)
            return
        finally:
            self._forwarded.pop(message.id, None)
        if word == ASKED:  # _inbox noted whose question it is, for the next message

            async def later() -> None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(completion, self.config.forward_timeout)
                self._completions.pop(message.id, None)
                await self._ack(amsg)

            self._spawn(later())
            return
        self._completions.pop(message.id, None)
        await self._ack(amsg)

    async def _inbox(self, amsg: AbstractIncomingMessage) -> None:
        """The owners' word on forwarded commands (asked, or done), and gateways' answers to
        yes/no questions."""
        try:
            event = decode_event(amsg.body)
        except ValueError:
            return
        if event["kind"] == CONFIRMED:
            self.confirms.answered(event)
            return
        about = str(event.get("about", event["id"]))
        first = self._forwarded.get(about)
        if first is not None and not first.done():
            first.set_result(str(event["kind"]))
        if event["kind"] == DONE:
            completion = self._completions.get(str(event["id"]))
            if completion is not None and not completion.done():
                completion.set_result(None)
            for key, (_, cid) in list(self.remote_asks.items()):
                if cid == event["id"]:
                    del self.remote_asks[key]
        elif event["kind"] == ASKED:
            key = tuple(event.get("key") or ())
            plugin = str(event.get("plugin", ""))
            if len(key) == 3 and plugin:
                self.remote_asks[key] = (plugin, str(event["id"]))  # type: ignore[index]

    # ------------------------------------------------------------------ owning a plugin

    async def _owner_message(self, plugin: str, amsg: AbstractIncomingMessage) -> None:
        assert self.channel is not None
        try:
            message, reply_to, slash = decode_message(amsg.body, _Unset())
        except ValueError as exc:
            log.warning("dropped a forwarded message: %s", exc)
            await amsg.ack()
            return
        message.responder = RemoteResponder(self.outbox, reply_to, message.id, self.confirms)
        inbox = amsg.reply_to or ""
        if self.members.answered(message.id):
            await self._event(inbox, DONE, message.id, about=message.id)
            await self._event(reply_to, DONE, message.id)
            await amsg.ack()
            return
        waiting = self._owner_inflight.get(message.id)
        if waiting is not None:  # forwarded again by another worker while it runs here
            waiting.add(inbox)
            await amsg.ack()
            return
        self._owner_inflight[message.id] = {inbox}
        self.lanes.submit(
            ("own", message.platform, message.chat_id, message.user_id),
            lambda: self._run_owned(plugin, amsg, message, reply_to, inbox, slash),
        )

    async def _run_owned(
        self,
        plugin: str,
        amsg: AbstractIncomingMessage,
        message: Message,
        reply_to: str,
        inbox: str,
        slash: Slash,
    ) -> None:
        key = self.bot.dispatcher.key(message)

        async def finish() -> None:
            responder = message.responder
            assert isinstance(responder, RemoteResponder)
            await responder.finished()
            await self.members.mark_answered(message.id)  # after the replies: see _finish
            for box in self._owner_inflight.pop(message.id, {inbox}):
                await self._event(box, DONE, message.id, about=message.id)
            await amsg.ack()

        async def tell(command_id: str) -> None:
            # The forwarding worker hears of a question before the gateway does, so the
            # answer the gateway then sends finds it expecting one.
            await self._event(
                inbox, ASKED, command_id, about=message.id, key=list(key), plugin=plugin
            )
            await self._event(reply_to, ASKED, command_id)

        await self._run_here(message, reply_to, finish, tell, slash)


class _Unset:
    """The responder of a message before the worker knows where its replies go."""

    async def send(self, reply: Any) -> None:  # pragma: no cover - replaced at once
        raise RuntimeError("no responder")

    async def confirm(self, question: str, timeout: float) -> bool | None:  # pragma: no cover
        return None


async def _declared_commands(info: Any) -> tuple[str, ...]:
    """The command names a plugin declares, read without starting it."""
    try:
        return tuple(c.name for c in await declared_commands(info))
    except Exception as exc:
        log.error("plugin %s: its commands cannot be read: %s", info.name, exc)
        return ()


def _ranges(numbers: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5``"""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
