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
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

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


class FilterIndex(Protocol):
    """A topic's own index of its filters, for feeds where even one check per filter is slow.

    The router builds one per topic (``Topic.index()``), hands it every filtered
    subscription once, as the filter and an opaque member standing for the chat, and on each
    event delivers to exactly the members ``matching`` returns, without calling
    ``Topic.matches``: so the index must agree with ``matches`` for every filter. A member
    with several matching filters may be returned once for each (the chat still gets the
    event once), but never twice for one filter. The index is rebuilt from scratch when
    subscriptions are removed, so it only ever has to add.
    """

    def add(self, filter: str, member: Any) -> None:
        """Index ``member``, a chat subscribed with ``filter`` (never empty)."""

    def matching(self, text: str, data: dict[str, Any]) -> Collection[Any]:
        """The members added whose filter matches this event (a list, say)."""


@dataclass
class Topic:
    """An alert topic a plugin publishes; ``matches(filter, text, data)`` applies filters.

    A busy feed with many filtered subscriptions should also say how to find the filters an
    event may match, one of two ways:

    - ``filter_key`` (the key a filter selects, e.g. the item name in "pelt 20", or None when
      it selects no single key) and ``event_keys`` (the keys an event carries): the router
      then checks only the subscriptions whose key the event has; ``matches`` still decides
      among those.
    - ``index``, a factory of a :class:`FilterIndex` that answers which chats' filters match
      without checking them one by one (the ChatWars market topics: by item, then by price).
    """

    name: str
    description: str = ""
    matches: Matcher = words_match
    owner: str = ""
    filter_key: Callable[[str], str | None] | None = None
    event_keys: Callable[[str, dict[str, Any]], Iterable[str]] | None = None
    index: Callable[[], FilterIndex] | None = None


class _ChatBuffer:
    """One chat's alerts gathered since its last message, and when its last messages went."""

    __slots__ = ("chat_id", "dropped", "lines", "platform", "scheduled", "sent_times", "seq")

    def __init__(self, platform: str, chat_id: str) -> None:
        self.platform = platform
        self.chat_id = chat_id
        self.lines: list[str] = []
        self.dropped = 0
        self.sent_times: deque[float] = deque()
        #: waiting in the wheel or the ready queue for its next message
        self.scheduled = False
        #: the last event queued here: a chat with two matching filters gets an event once
        self.seq = 0


class _Group:
    """The chats of one topic that share one filter: the filter is checked once per event.

    A busy feed has thousands of subscriptions but far fewer distinct filters (hundreds of
    chats type "pelt"): matching per group, then appending to each chat's buffer, keeps the
    per-chat work on the hot path to one list append. ``chats`` is a dict used as an ordered
    set (no chat twice, however often it subscribed with the same filter). ``overlaps`` says
    some of its chats are in another group of the topic too: only then must an event that
    matches several groups be kept from reaching a chat twice.
    """

    __slots__ = ("chats", "filter", "overlaps")

    def __init__(self, filter: str) -> None:
        self.filter = filter
        self.chats: dict[_ChatBuffer, None] = {}
        self.overlaps = False

    def __len__(self) -> int:
        return len(self.chats)


class _TopicIndex:
    """One topic's subscriptions grouped by filter: unfiltered, then in the topic's index, or
    keyed by filter key, or the rest."""

    __slots__ = ("by_key", "exact", "first", "groups", "other", "repeats", "topic", "unfiltered")

    def __init__(self, topic: Topic | None) -> None:
        self.topic = topic
        self.unfiltered = _Group("")
        self.groups: dict[str, _Group] = {}
        #: the topic's own index: it holds the chats of every filter, and the groups only
        #: count them
        self.exact = topic.index() if topic is not None and topic.index is not None else None
        self.by_key: dict[str, list[_Group]] = {}
        self.other: list[_Group] = []
        #: each chat's first group: a chat joining a second one marks both as overlapping
        self.first: dict[_ChatBuffer, _Group] = {}
        #: some chat has more than one subscription here (an event may reach it twice)
        self.repeats = False

    def add(self, sub: Subscription, buf: _ChatBuffer) -> None:
        if not sub.filter:
            group = self.unfiltered
        else:
            group = self.groups.get(sub.filter)
            if group is None:
                group = self.groups[sub.filter] = _Group(sub.filter)
                topic = self.topic
                if self.exact is None:
                    if topic and topic.filter_key and (key := topic.filter_key(sub.filter)):
                        self.by_key.setdefault(key, []).append(group)
                    else:
                        self.other.append(group)
            if self.exact is not None and buf not in group.chats:
                self.exact.add(sub.filter, buf)
        group.chats[buf] = None
        first = self.first.setdefault(buf, group)
        if first is not group:
            first.overlaps = group.overlaps = self.repeats = True

    def matching(
        self, text: str, data: dict[str, Any]
    ) -> list[tuple[Collection[_ChatBuffer], bool]]:
        """The chats whose filter passes the event, in runs; each run says whether a chat in
        it may also be in another run (or twice in it), i.e. must be checked for a repeat."""
        runs: list[tuple[Collection[_ChatBuffer], bool]] = []
        if self.unfiltered.chats:
            runs.append((self.unfiltered.chats, self.unfiltered.overlaps))
        if self.exact is not None:
            runs.append((self.exact.matching(text, data), self.repeats))
            return runs
        topic = self.topic
        candidates = list(self.other)
        if topic is not None and topic.event_keys is not None:
            # dict.fromkeys: an event naming a key twice checks its groups once
            for key in dict.fromkeys(topic.event_keys(text, data)):
                candidates.extend(self.by_key.get(key, ()))
        else:
            for keyed in self.by_key.values():
                candidates.extend(keyed)
        matches = topic.matches if topic is not None else words_match
        runs.extend((g.chats, g.overlaps) for g in candidates if matches(g.filter, text, data))
        return runs

    def __bool__(self) -> bool:
        # Checked on every publish: without it, truth would call __len__, a sum over groups.
        return bool(self.unfiltered.chats or self.groups)

    def __len__(self) -> int:
        return len(self.unfiltered) + sum(map(len, self.groups.values()))


@dataclass(slots=True)
class Delivered:
    """A delivered alert message: the last thousand are kept, to see what went where."""

    platform: str
    chat_id: str
    text: str
    events: int


#: the timer wheel's slot: a chat's message goes out at most this much after its window ends
_TICK = 0.005
#: the sender gives the loop a turn after sending for this long without waiting: a transport
#: that never waits (a local one, the harness) would otherwise hold the loop for a whole burst
#: of thousands of chats, and the feed that fills the buffers would stall meanwhile
_SLICE = 0.002


class AlertRouter:
    """Matches published events to subscriptions and delivers them, coalesced and paced.

    Built for feeds that fan one event out to thousands of chats: subscriptions are grouped by
    filter (one check per distinct filter), each chat's buffer is appended to directly, and
    windows are kept in one timer wheel (one loop timer per ``_TICK`` slot that has chats due,
    not one per chat); one sender task delivers the chats whose window ended, paced per chat
    and globally.
    """

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
        #: timer wheel: slot number -> chats due then, and the one loop timer per slot
        self._wheel: dict[int, list[_ChatBuffer]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._ready: deque[_ChatBuffer] = deque()
        self._wake: asyncio.Event | None = None
        self._sender: asyncio.Task[None] | None = None
        #: chats with a message pending (in the wheel, ready, or being sent): idle at zero
        self._scheduled = 0
        self._seq = 0
        self._next_global = 0.0
        #: the lines of the last message and its text: see _text
        self._last: tuple[list[str], str] = ([], "")
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

    def _buffer(self, platform: str, chat_id: str) -> _ChatBuffer:
        key = (platform, str(chat_id))
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = _ChatBuffer(*key)
        return buf

    def _reindex(self, only: str | None = None) -> None:
        names = [only] if only is not None else list(self._all)
        for name in names:
            index = _TopicIndex(self.topics.get(name))
            for sub in self._all.get(name, ()):
                index.add(sub, self._buffer(sub.platform, sub.chat_id))
            self._subs[name] = index

    async def start(self) -> None:
        self.load()
        self._wake = asyncio.Event()
        self._sender = asyncio.create_task(self._send_loop(), name="alerts:sender")

    async def stop(self) -> None:
        await self.flush()
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
            self._reindex(name)  # its index and keys were the owner's: plain words from now

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, platform: str, chat_id: str, topic: str, filter: str | None = None) -> bool:
        new = self.bot.store.subscribe(platform, chat_id, topic, filter)
        if new:
            sub = self.bot.store.subscriptions(topic, platform, chat_id)
            added = [x for x in sub if (x.filter or None) == (filter or None)]
            self._all.setdefault(topic, []).extend(added)
            index = self._subs.get(topic)
            if index is None:
                index = self._subs[topic] = _TopicIndex(self.topics.get(topic))
            for x in added:
                index.add(x, self._buffer(x.platform, x.chat_id))
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

    def _chat_allows(self) -> Callable[[str, str, str, str | None], bool] | None:
        """The per-chat switch check (:mod:`bot.access`), or None when no chat has any.

        Why: the check is per chat and per event; with no switch anywhere (the usual case)
        it always says yes, and skipping it is most of a fan-out's per-chat cost.
        """
        access = self.bot.access
        return access.chat_allows if access.any_chat_controls else None

    def publish(self, topic: str, text: str, data: dict[str, Any] | None = None) -> int:
        """Queue ``text`` for every chat whose subscription to ``topic`` matches."""
        metrics.alerts("published")
        index = self._subs.get(topic)
        if not index:
            return 0
        t = self.topics.get(topic)
        owner = t.owner if t else ""
        payload = data or {}
        allows = self._chat_allows()
        self._seq += 1
        seq = self._seq
        matched = dropped = 0
        fresh: list[_ChatBuffer] = []
        for chats, overlaps in index.matching(text, payload):
            if allows is None and not overlaps:
                # The hot loop (every run when each chat has one filter): no chat here can
                # have had this event yet, so one append per chat.
                matched += len(chats)
                for buf in chats:
                    lines = buf.lines
                    if len(lines) < MAX_BUFFERED:
                        lines.append(text)
                    else:
                        buf.dropped += 1
                        dropped += 1
                    if not buf.scheduled:
                        buf.scheduled = True
                        fresh.append(buf)
                continue
            for buf in chats:
                if buf.seq == seq:
                    continue  # it had the event from another of its filters
                buf.seq = seq
                if allows is not None and not allows(buf.platform, buf.chat_id, owner, None):
                    continue
                matched += 1
                lines = buf.lines
                if len(lines) < MAX_BUFFERED:
                    lines.append(text)
                else:
                    buf.dropped += 1
                    dropped += 1
                if not buf.scheduled:
                    buf.scheduled = True
                    fresh.append(buf)
        if dropped:
            metrics.alerts("dropped", dropped)
        if fresh:
            self._schedule(fresh)
        return matched

    def _schedule(self, bufs: list[_ChatBuffer]) -> None:
        """Put chats that just got their first pending alert in the wheel, due in a window."""
        self._scheduled += len(bufs)
        self._idle.clear()
        now = time.monotonic()
        due: list[_ChatBuffer] = []
        limit = self.chat_per_minute
        for buf in bufs:
            if len(buf.sent_times) >= limit and (wait := self._chat_wait(buf, now)) > self.window:
                self._at(now + wait, [buf])  # at its per-minute limit: gather until a slot frees
            else:
                due.append(buf)
        if due:
            self._at(now + self.window, due)

    def _at(self, when: float, bufs: list[_ChatBuffer]) -> None:
        slot = -int(-when // _TICK)  # ceil: never before the window ends
        waiting = self._wheel.get(slot)
        if waiting is not None:
            waiting.extend(bufs)
            return
        self._wheel[slot] = list(bufs)
        loop = asyncio.get_running_loop()
        self._timers[slot] = loop.call_at(
            loop.time() + max(0.0, slot * _TICK - time.monotonic()), self._fire, slot
        )

    def _fire(self, slot: int) -> None:
        self._timers.pop(slot, None)
        bufs = self._wheel.pop(slot, None)
        if bufs:
            self._make_ready(bufs)

    def _chat_wait(self, buf: _ChatBuffer, now: float) -> float:
        while buf.sent_times and now - buf.sent_times[0] >= 60.0:
            buf.sent_times.popleft()
        if len(buf.sent_times) < self.chat_per_minute:
            return 0.0
        return 60.0 - (now - buf.sent_times[0])

    def _make_ready(self, bufs: list[_ChatBuffer]) -> None:
        self._ready.extend(bufs)
        if self._wake is not None:
            self._wake.set()

    def _done(self, buf: _ChatBuffer) -> None:
        """A chat's message went out: wait for its next window if more came meanwhile."""
        buf.scheduled = False
        self._scheduled -= 1
        if buf.lines or buf.dropped:
            self._schedule([buf])
        elif self._scheduled <= 0:
            self._scheduled = 0
            self._idle.set()

    async def flush(self) -> None:
        """Deliver every buffered alert now (tests, shutdown); rate limits still apply."""
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        self._wheel.clear()
        self._ready.clear()
        for buf in self._buffers.values():
            if buf.lines or buf.dropped:
                await self._deliver(buf)
            buf.scheduled = False
        self._scheduled = 0
        self._idle.set()

    async def _send_loop(self) -> None:
        assert self._wake is not None
        ready = self._ready
        turn = time.monotonic()
        while True:
            if not ready:
                self._wake.clear()
                await self._wake.wait()
                turn = time.monotonic()
                continue
            buf = ready.popleft()
            if not buf.scheduled:
                continue  # delivered by flush() meanwhile
            now = time.monotonic()
            if now - turn >= _SLICE:
                await asyncio.sleep(0)
                turn = now = time.monotonic()
                if not buf.scheduled:
                    continue
            wait = self._chat_wait(buf, now) if len(buf.sent_times) >= self.chat_per_minute else 0
            if wait > 0:
                # The chat is at its limit: keep gathering, deliver when a slot frees up.
                self._at(now + wait, [buf])
                continue
            if self._next_global > now:
                await asyncio.sleep(self._next_global - now)
            self._next_global = max(now, self._next_global) + self.global_interval
            try:
                await self._deliver(buf)
            except Exception:
                log.exception("alert delivery to %s:%s failed", buf.platform, buf.chat_id)
            if buf.scheduled:  # flush() may have delivered and reset it meanwhile
                self._done(buf)

    async def _deliver(self, buf: _ChatBuffer) -> None:
        lines, dropped = buf.lines, buf.dropped
        buf.lines, buf.dropped = [], 0
        if not lines and not dropped:
            return
        text = self._text(lines)
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

    def _text(self, lines: list[str]) -> str:
        """The message for ``lines``, joined once for a run of chats that got the same lines.

        Why: the chats sharing a filter are scheduled together and so come out of the ready
        queue one after another with equal lists (the same strings, compared by identity
        first); joining 25 lines for each of 300 chats was a sixth of a burst's delivery.
        """
        last_lines, last_text = self._last
        if lines == last_lines:
            return last_text
        text = "\n".join(lines)
        self._last = (lines, text)
        return text

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
