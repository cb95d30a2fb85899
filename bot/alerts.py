"""Pushed events -> subscribed chats, within the platforms' rate limits.

Plugins publish events on topics; the ``subscriptions`` table says which chats want which
topics (optionally filtered). Delivery is where chat bots usually go wrong: a busy feed sends
one message per event, hits the platform's flood limit, and events are dropped or the bot is
muted. Here each chat gets a buffer: events arriving within ``alert_window`` seconds, or while
the chat is at its per-minute limit, are coalesced into one message; a global rate caps the
whole bot. Nothing is dropped silently: if a buffer overflows, the message says how many
events were left out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from . import metrics
from .commands import Command, Permission, Rest, command
from .store import Subscription

if TYPE_CHECKING:
    from .app import Bot
    from .context import Context

log = logging.getLogger(__name__)

Matcher = Callable[[str, str, dict[str, Any]], bool]

#: lines kept per chat between two deliveries; beyond it the message counts what was left out
MAX_BUFFERED = 200


def words_match(filter: str, text: str, data: dict[str, Any]) -> bool:
    """The default filter: every word of the filter appears in the event text."""
    low = text.lower()
    return all(w in low for w in filter.lower().split())


@dataclass
class Topic:
    """An alert topic a plugin publishes; ``matches(filter, text, data)`` applies filters.

    A busy feed with many filtered subscriptions should also give ``filter_key`` (the key a
    filter selects, e.g. the item name in "pelt 20", or None when it selects no single key)
    and ``event_keys`` (the keys an event carries): the router then checks only the
    subscriptions whose key the event has, instead of every subscription of the topic.
    ``matches`` still decides among those.
    """

    name: str
    description: str = ""
    matches: Matcher = words_match
    owner: str = ""
    filter_key: Callable[[str], str | None] | None = None
    event_keys: Callable[[str, dict[str, Any]], Iterable[str]] | None = None


class _TopicIndex:
    """One topic's subscriptions: unfiltered, keyed by their filter's key, and the rest."""

    __slots__ = ("by_key", "other", "unfiltered")

    def __init__(self) -> None:
        self.unfiltered: list[Subscription] = []
        self.by_key: dict[str, list[Subscription]] = {}
        self.other: list[Subscription] = []

    def add(self, sub: Subscription, topic: Topic | None) -> None:
        if not sub.filter:
            self.unfiltered.append(sub)
            return
        key = topic.filter_key(sub.filter) if topic and topic.filter_key else None
        if key is None:
            self.other.append(sub)
        else:
            self.by_key.setdefault(key, []).append(sub)

    def candidates(
        self, topic: Topic | None, text: str, data: dict[str, Any]
    ) -> list[Subscription]:
        if not self.by_key:
            return self.unfiltered + self.other
        keyed: list[Subscription] = []
        if topic is not None and topic.event_keys is not None:
            for key in topic.event_keys(text, data):
                keyed.extend(self.by_key.get(key, ()))
        else:
            for subs in self.by_key.values():
                keyed.extend(subs)
        return self.unfiltered + self.other + keyed

    def __len__(self) -> int:
        return len(self.unfiltered) + len(self.other) + sum(map(len, self.by_key.values()))


@dataclass
class _ChatBuffer:
    platform: str
    chat_id: str
    lines: list[str] = field(default_factory=list)
    dropped: int = 0
    sent_times: deque[float] = field(default_factory=deque)
    scheduled: bool = False


@dataclass
class Delivered:
    """A delivered alert message: the last thousand are kept, to see what went where."""

    platform: str
    chat_id: str
    text: str
    events: int


class AlertRouter:
    """Matches published events to subscriptions and delivers them, coalesced and paced."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        settings = bot.settings.bot
        self.window = settings.alert_window
        self.chat_per_minute = max(1, settings.alert_chat_per_minute)
        self.global_interval = 1.0 / max(0.1, settings.alert_global_per_second)
        self.topics: dict[str, Topic] = {}
        self._subs: dict[str, _TopicIndex] = {}
        self._all: dict[str, list[Subscription]] = {}
        self._buffers: dict[tuple[str, str], _ChatBuffer] = {}
        self._ready: asyncio.Queue[_ChatBuffer] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._next_global = 0.0
        self.delivered: deque[Delivered] = deque(maxlen=1000)
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------------ life cycle

    def load(self) -> None:
        """(Re)build the in-memory index from the store."""
        self._all.clear()
        for sub in self.bot.store.subscriptions():
            self._all.setdefault(sub.topic, []).append(sub)
        self._reindex()

    def _reindex(self, only: str | None = None) -> None:
        names = [only] if only is not None else list(self._all)
        for name in names:
            index = _TopicIndex()
            for sub in self._all.get(name, ()):
                index.add(sub, self.topics.get(name))
            self._subs[name] = index

    async def start(self) -> None:
        self.load()
        self._ready = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_loop(), name="alerts:sender")

    async def stop(self) -> None:
        await self.flush()
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        if self._sender:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
            self._sender = None

    # ------------------------------------------------------------------ topics

    def add_topic(self, topic: Topic, owner: str) -> None:
        topic.owner = owner
        self.topics[topic.name] = topic
        self._reindex(topic.name)  # its filter keys may differ from the previous owner's

    def remove_topics(self, owner: str) -> None:
        for name in [n for n, t in self.topics.items() if t.owner == owner]:
            del self.topics[name]

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, platform: str, chat_id: str, topic: str, filter: str | None = None) -> bool:
        new = self.bot.store.subscribe(platform, chat_id, topic, filter)
        if new:
            sub = self.bot.store.subscriptions(topic, platform, chat_id)
            added = [x for x in sub if (x.filter or None) == (filter or None)]
            self._all.setdefault(topic, []).extend(added)
            index = self._subs.setdefault(topic, _TopicIndex())
            for x in added:
                index.add(x, self.topics.get(topic))
        return new

    def unsubscribe(
        self, platform: str, chat_id: str, topic: str, filter: str | None = None
    ) -> int:
        n = self.bot.store.unsubscribe(platform, chat_id, topic, filter)
        if n:
            self._all[topic] = [
                x
                for x in self._all.get(topic, ())
                if not (
                    x.platform == platform
                    and x.chat_id == str(chat_id)
                    and (filter is None or (x.filter or None) == (filter or None))
                )
            ]
            self._reindex(topic)
        return n

    def subscribers(self, topic: str) -> list[Subscription]:
        return list(self._all.get(topic, ()))

    # ------------------------------------------------------------------ publishing

    def publish(self, topic: str, text: str, data: dict[str, Any] | None = None) -> int:
        """Queue ``text`` for every chat whose subscription to ``topic`` matches."""
        metrics.alerts("published")
        index = self._subs.get(topic)
        if not index:
            return 0
        t = self.topics.get(topic)
        matcher = t.matches if t else words_match
        payload = data or {}
        matched = 0
        seen: set[tuple[str, str]] = set()
        #: many chats share a filter ("pelt"): each distinct filter is checked once per event
        verdicts: dict[str, bool] = {}
        for sub in index.candidates(t, text, payload):
            key = (sub.platform, sub.chat_id)
            if key in seen:
                continue
            if sub.filter:
                verdict = verdicts.get(sub.filter)
                if verdict is None:
                    verdict = verdicts[sub.filter] = matcher(sub.filter, text, payload)
                if not verdict:
                    continue
            if not self.bot.chat_allows(sub.platform, sub.chat_id, t.owner if t else "", None):
                continue
            seen.add(key)
            matched += 1
            self._enqueue(key, text)
        return matched

    def _enqueue(self, key: tuple[str, str], text: str) -> None:
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = _ChatBuffer(*key)
        if len(buf.lines) >= MAX_BUFFERED:
            buf.dropped += 1
            metrics.alerts("dropped")
        else:
            buf.lines.append(text)
        if not buf.scheduled:
            self._schedule(buf)

    def _schedule(self, buf: _ChatBuffer) -> None:
        buf.scheduled = True
        self._idle.clear()
        delay = max(self.window, self._chat_wait(buf, time.monotonic()))
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            self._timers.discard(handle)  # type: ignore[arg-type]
            self._make_ready(buf)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    def _chat_wait(self, buf: _ChatBuffer, now: float) -> float:
        while buf.sent_times and now - buf.sent_times[0] >= 60.0:
            buf.sent_times.popleft()
        if len(buf.sent_times) < self.chat_per_minute:
            return 0.0
        return 60.0 - (now - buf.sent_times[0])

    def _make_ready(self, buf: _ChatBuffer) -> None:
        if self._ready is not None:
            self._ready.put_nowait(buf)

    async def flush(self) -> None:
        """Deliver every buffered alert now (tests, shutdown); rate limits still apply."""
        for h in list(self._timers):
            h.cancel()
        self._timers.clear()
        for buf in self._buffers.values():
            if buf.lines or buf.dropped:
                await self._deliver(buf)
            buf.scheduled = False
        self._idle.set()

    async def _send_loop(self) -> None:
        assert self._ready is not None
        while True:
            buf = await self._ready.get()
            wait = self._chat_wait(buf, time.monotonic())
            if wait > 0:
                # The chat is at its limit: keep gathering, deliver when a slot frees up.
                loop = asyncio.get_running_loop()
                h = loop.call_later(wait, self._make_ready, buf)
                self._timers.add(h)
                continue
            now = time.monotonic()
            if self._next_global > now:
                await asyncio.sleep(self._next_global - now)
            self._next_global = max(now, self._next_global) + self.global_interval
            try:
                await self._deliver(buf)
            except Exception:
                log.exception("alert delivery to %s:%s failed", buf.platform, buf.chat_id)
            buf.scheduled = False
            if buf.lines or buf.dropped:
                self._schedule(buf)
            if self._ready.empty() and not any(b.scheduled for b in self._buffers.values()):
                self._idle.set()

    async def _deliver(self, buf: _ChatBuffer) -> None:
        lines, dropped = buf.lines, buf.dropped
        buf.lines, buf.dropped = [], 0
        if not lines and not dropped:
            return
        text = "\n".join(lines)
        if dropped:
            text += f"\n(+{dropped} more alerts not shown: too many at once)"
        buf.sent_times.append(time.monotonic())
        self.delivered.append(Delivered(buf.platform, buf.chat_id, text, len(lines) + dropped))
        try:
            await self.bot.send(buf.platform, buf.chat_id, text)
        except Exception:
            metrics.alerts("dropped", len(lines))  # the send failed: these events are lost
            raise
        if buf.platform in self.bot.transports:
            metrics.alerts("delivered")
            metrics.alerts("coalesced", len(lines) - 1)
        else:
            metrics.alerts("dropped", len(lines))  # no transport runs for that platform

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every queued alert has been delivered (used by tests and benchmarks)."""
        await asyncio.wait_for(self._idle.wait(), timeout)


def subscription_command(
    name: str,
    topic: str,
    *,
    help: str | None = None,
    permission: Permission = Permission.EVERYONE,
) -> Command:
    """The reusable ``<name> on|off [filter]`` command for one topic.

    ``subscription_command("pos alerts", "concertpos.updates")`` gives ``pos alerts on`` /
    ``pos alerts off`` for the chat it is typed in.
    """

    async def handler(
        ctx: Context, switch: Literal["on", "off"], filter: Rest | None = None
    ) -> str:
        """Turn this chat's alerts on or off.

        Args:
            switch: on to subscribe this chat, off to unsubscribe it
            filter: only events containing these words (optional)
        """
        if switch == "on":
            new = ctx.bot.alerts.subscribe(ctx.platform, ctx.chat_id, topic, filter)
            what = f" matching {filter!r}" if filter else ""
            return (
                f"This chat now receives {topic} alerts{what}."
                if new
                else (f"This chat already receives {topic} alerts{what}.")
            )
        n = ctx.bot.alerts.unsubscribe(ctx.platform, ctx.chat_id, topic, filter)
        return (
            f"{topic} alerts turned off for this chat."
            if n
            else (f"This chat was not subscribed to {topic} alerts.")
        )

    handler.__name__ = name.replace(" ", "_")
    return command(
        name, help=help or f"Turn {topic} alerts on or off in this chat", permission=permission
    )(handler)
