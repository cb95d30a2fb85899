"""The Prometheus series behind :mod:`bot.metrics` (imported only when metrics are on).

Each bot gets its own ``CollectorRegistry`` rather than the process-wide default, so a test
(or a process running two bots) never sees another bot's counts, and the default registry's
process collectors are added explicitly.

Counters and histograms are updated as things happen. Two families are read at scrape time
instead, because they are states and not events: the connection state of each plugin and
transport (the same health ``status`` shows, refreshed by the server before each scrape) and
the ledger rows by state (one grouped query on the store).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ..app import Bot
    from .readiness import Component

log = logging.getLogger(__name__)

#: seconds; chat commands answer in milliseconds unless an API is slow (its timeouts are ~10 s)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Instruments:
    """Every series the bot exports, registered in one registry (see :mod:`bot.metrics`)."""

    def __init__(self, bot: Bot) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.commands = Counter(
            "bot_commands",
            "Chat commands handled, by outcome: ok, user_error (usage, cooldown, no link), "
            "refused (not allowed, or the API said no), failed (API unreachable or a bug)",
            ["command", "plugin", "platform", "outcome"],
            registry=r,
        )
        self.command_seconds = Histogram(
            "bot_command_duration_seconds",
            "Time from a parsed command to its reply",
            ["command", "plugin", "platform"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.api_calls = Counter(
            "bot_api_calls",
            "Outside API calls through a plugin's client, by outcome: ok, refused, timeout, "
            "not_connected, cancelled, failed",
            ["plugin", "call", "outcome"],
            registry=r,
        )
        self.api_seconds = Histogram(
            "bot_api_call_duration_seconds",
            "Outside API call latency, as the caller waits for it",
            ["plugin", "call"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.alert_events = Counter(
            "bot_alerts",
            "Alerts: published (events a plugin published), delivered (chat messages sent), "
            "coalesced (events folded into a message with others), dropped (left out: a "
            "chat's buffer overflowed)",
            ["stage"],
            registry=r,
        )
        self.rate_waits = Counter(
            "bot_rate_limit_waits",
            "Requests that waited for a rate limit (ConcertPOS budget, Telegram flood)",
            ["limiter"],
            registry=r,
        )
        self.rate_wait_seconds = Counter(
            "bot_rate_limit_wait_seconds",
            "Seconds spent waiting for rate limits",
            ["limiter"],
            registry=r,
        )
        self.states = _StateCollector(bot)
        r.register(self.states)
        #: label children by label values: ``labels()`` takes a lock and builds a key each time,
        #: and a command's labels repeat, so the hot path reuses them (a few µs per command)
        self._command_children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._api_children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    # ------------------------------------------------------------------ the Sink protocol

    def command_done(
        self, command: str, plugin: str, platform: str, outcome: str, seconds: float
    ) -> None:
        key = (command, plugin, platform, outcome)
        children = self._command_children.get(key)
        if children is None:
            children = self._command_children[key] = (
                self.commands.labels(*key),
                self.command_seconds.labels(command, plugin, platform),
            )
        children[0].inc()
        children[1].observe(seconds)

    def api_call(self, plugin: str, call: str, outcome: str, seconds: float) -> None:
        key = (plugin, call, outcome)
        children = self._api_children.get(key)
        if children is None:
            children = self._api_children[key] = (
                self.api_calls.labels(*key),
                self.api_seconds.labels(plugin, call),
            )
        children[0].inc()
        children[1].observe(seconds)

    def alerts(self, stage: str, count: int) -> None:
        self.alert_events.labels(stage).inc(count)

    def rate_limit_wait(self, limiter: str, seconds: float) -> None:
        self.rate_waits.labels(limiter).inc()
        self.rate_wait_seconds.labels(limiter).inc(max(0.0, seconds))

    # ------------------------------------------------------------------ exposition

    def render(self, components: Sequence[Component]) -> bytes:
        """The text exposition, with connection states as of ``components``."""
        self.states.components = list(components)
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Connection states and ledger rows, read when Prometheus scrapes."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.components: list[Component] = []

    def describe(self) -> list[Metric]:
        return []  # collected fresh on each scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "bot_connection_up",
            "1 when the plugin or transport is up (as status says), else 0",
            labels=["kind", "name"],
        )
        state = GaugeMetricFamily(
            "bot_connection_state",
            "The current state of each plugin and transport (1 for the state it is in)",
            labels=["kind", "name", "state"],
        )
        for c in self.components:
            up.add_metric([c.kind, c.name], 1.0 if c.ok else 0.0)
            state.add_metric([c.kind, c.name, c.state], 1.0)
        yield up
        yield state
        ledger = GaugeMetricFamily(
            "bot_ledger_rows",
            "Payment ledger rows by service and state (pending and unknown need a look)",
            labels=["service", "state"],
        )
        try:
            rows = self.bot.store.conn.execute(
                "select service, status, count(*) from ledger group by service, status"
            ).fetchall()
        except Exception as exc:  # a closed or broken store must not break the scrape
            log.warning("metrics: cannot count ledger rows: %s", exc)
            rows = []
        for service, status, count in rows:
            ledger.add_metric([str(service), str(status)], float(count))
        yield ledger
