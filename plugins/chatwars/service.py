"""What the ChatWars commands share beyond the protocol client.

``plugin.client`` is the :class:`~.client.ChatWarsClient` (one per app: a second consumer
would split the reply queue). Around it, one :class:`ChatWarsService` per running plugin
holds the money flows and the ledger, the feed alerts, links waiting for their code, and the
bundled simulator when ``simulate: true``.

Start-up never waits for a broker that is not there. The simulator (which plays the server
and must declare the queues before the client can consume them) is started in a task that
retries with backoff, and the client is started after it; without ``simulate`` the client
starts at once and keeps reconnecting by itself. Health reads what these remember.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot import NotConnected, metrics
from bot.backoff import backoff_delays

from .alerts import FeedAlerts
from .antispam import LinkLimit, PendingLink, PendingLinks
from .errors import ChatWarsNotConnected
from .kafka_feeds import KafkaFeeds
from .ledger import PaymentLedger
from .payments import MoneyFlows

if TYPE_CHECKING:
    from bot import Context, PluginRuntime

    from .client import ChatWarsClient
    from .config import ChatWarsConfig
    from .simulator import ChatWarsSimulator

log = logging.getLogger(__name__)

#: how long a ``cw link`` waits for its ``cw code``
LINK_TTL = 15 * 60.0
#: seconds ``bot_startup`` lets a reachable broker answer before it returns anyway
STARTUP_WAIT = 3.0


class ChatWarsService:
    """The client plus everything the commands need to remember between messages."""

    def __init__(
        self,
        plugin: PluginRuntime,
        config: ChatWarsConfig,
        client: ChatWarsClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plugin = plugin
        self.config = config
        self.client = client
        self.ledger = PaymentLedger(plugin.store, payment_expiry=config.payment_expiry)
        self.money = MoneyFlows(client, self.ledger, payout_attempts=config.payout_attempts)
        self.link_limit = LinkLimit(
            plugin.store,
            per_player=config.link_codes_per_player,
            window=config.link_code_window,
            clock=clock,
        )
        self.feeds = FeedAlerts(plugin.publish, config.alert_interval)
        #: the Kafka feed reader when ``feeds.source: kafka``
        self.kafka: KafkaFeeds | None = None
        self.simulator: ChatWarsSimulator | None = None
        #: why the bundled simulator is not running (None: running or not used)
        self.simulator_problem: str | None = None
        self.simulator_running = False
        #: set once the first attempt to start (simulator, then client) has ended either way
        self.first_attempt = asyncio.Event()
        self.links = PendingLinks(plugin.store, ttl=LINK_TTL, clock=clock)
        client.add_late_reply_handler(self.ledger.apply_late)
        client.add_stray_reply_handler(self.ledger.apply_stray)
        client.add_feed_handler(self.feeds.on_feed)

    # ------------------------------------------------------------------ registry

    def register(self) -> None:
        """Become the plugin's state (``plugin.state``); it is cleared when the plugin stops."""
        self.plugin.state = self

    def api(self) -> ChatWarsClient:
        """The client for a command, or at once why it cannot be used: with the bundled
        simulator down, its problem says more than the client's "not started"."""
        if not self.config.has_app:
            raise NotConnected(
                "This bot has no ChatWars app registered (chatwars.app), so only the market "
                "alerts work (cw alerts).",
                service="chatwars",
            )
        if self.simulator_problem is not None and not self.client.connected:
            raise ChatWarsNotConnected(
                f"the ChatWars simulator cannot start: {self.simulator_problem}"
            )
        return metrics.timed_client("chatwars", self.client)  # API calls timed

    # ------------------------------------------------------------------ linking

    def remember_link(self, platform: str, user_id: str, telegram_id: int) -> None:
        self.links.remember(platform, user_id, telegram_id)

    def pending_link(self, platform: str, user_id: str) -> PendingLink | None:
        return self.links.get(platform, user_id)

    def forget_link(self, platform: str, user_id: str) -> None:
        self.links.forget(platform, user_id)

    # ------------------------------------------------------------------ simulator

    def simulated_code(self, telegram_id: int, kind: str) -> str | None:
        """With ``simulate: true``, the code the simulated game "sent" the player.

        The real game sends it to the player's Telegram; the local one has nobody to send it
        to, so the demo shows it in chat. Never used against a real server.
        """
        sim = self.simulator
        if sim is None or not self.simulator_running:
            return None
        try:
            return sim.world.last_code(telegram_id, kind)
        except KeyError:
            return None

    async def run_simulator(self, sim: ChatWarsSimulator) -> None:
        """Start the simulator on the configured broker, retrying until it is reachable,
        then start the client (its queues exist only once the simulator declared them)."""
        self.simulator = sim
        config = self.config
        delays = backoff_delays(config.reconnect_min_delay, config.reconnect_max_delay)
        while True:
            try:
                async with asyncio.timeout(max(5.0, config.timeout)):
                    await self.plugin.start_simulator(sim)
            except Exception as exc:  # any failure: report it and retry
                problem = self.client.describe_problem(exc)
                level = logging.DEBUG if problem == self.simulator_problem else logging.WARNING
                log.log(level, "ChatWars simulator cannot start: %s", problem)
                self.simulator_problem = problem
                with contextlib.suppress(Exception):
                    await sim.stop()
                self.first_attempt.set()
                self.client.end_start_wait()
                await asyncio.sleep(next(delays))
            else:
                break
        self.simulator_problem = None
        self.simulator_running = True
        await self.client.start()
        self.first_attempt.set()

    async def start_client(self) -> None:
        """Start the client (it keeps reconnecting by itself) without a simulator."""
        await self.client.start()
        self.first_attempt.set()


def service_of(ctx: Context) -> ChatWarsService:
    """The running plugin's service; a clear message when the plugin is not running."""
    plugin = ctx.plugin
    service = plugin.state if plugin is not None else None
    if not isinstance(service, ChatWarsService) or plugin is None or plugin.client is None:
        raise NotConnected("ChatWars is not running right now.", service="chatwars")
    return service


def service_for(plugin: PluginRuntime) -> ChatWarsService | None:
    return plugin.state if isinstance(plugin.state, ChatWarsService) else None
