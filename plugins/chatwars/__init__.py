"""ChatWars (CW API v0.5 over AMQP): account linking, profile, stock, payments, market alerts.

The protocol client lives in ``client.py`` (with ``correlation.py``, ``requests.py``,
``feeds.py``), the local stand-in for the game in ``simulator.py`` and ``simworld.py``, the
config section in ``config.py``. On top of them: the chat commands (``commands.py``, worded
in ``replies.py``), the money flows and their ledger statuses (``payments.py``,
``ledger.py``), the market alerts (``alerts.py``) and what the commands share
(``service.py``). This module holds only the hooks that tie them to the bot.

The market feeds come from the app's AMQP queues (the document's way) or, with
``feeds: {source: kafka, ...}``, from the digest service's Kafka topics (``kafka_feeds.py``);
with Kafka as the source and no ``app``, the plugin offers the market alerts alone.

Start-up never waits for a broker that is not there: the client (and, with ``simulate:
true``, the simulator it talks to) keeps retrying in the background and ``bot_health`` says
why it is down and how to start a broker. Payments and payouts are rows of the core ledger,
links are the core's links (token and in-game id encrypted); the plugin's own table
(``migrations/chatwars.py``) remembers the requests that make the game message a player, so
their limits survive a restart (``antispam.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

from bot import Health, hookimpl
from bot.backoff import backoff_delays

from .alerts import TOPICS
from .antispam import StoredAsks
from .commands import COMMANDS
from .config import BROKER_HINT, ChatWarsConfig
from .kafka_feeds import KafkaFeeds
from .service import STARTUP_WAIT, ChatWarsService, service_for
from .simulator import ChatWarsSimulator, simulator_from_args

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

    from bot import Command, PluginRuntime, Topic

    from .client import ChatWarsClient

__version__ = "0.2.0"

log = logging.getLogger(__name__)


@hookimpl
def bot_config_model() -> type[ChatWarsConfig]:
    return ChatWarsConfig


@hookimpl
def bot_commands() -> list[Command]:
    return list(COMMANDS)


@hookimpl
def bot_alert_topics() -> list[Topic]:
    return list(TOPICS)


@hookimpl
def bot_migrations() -> Migrations:
    from bot_migrations.chatwars import migrations

    return migrations


class _QuietConnectErrors(logging.Filter):
    """aiormq logs every failed connection attempt at ERROR; without a broker (the embedded
    default) that is a line every few seconds for as long as the bot runs. The client and the
    simulator already report the failure in plain words, once per change."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "error when creating transport: %r"


@hookimpl
async def bot_startup(plugin: PluginRuntime, config: ChatWarsConfig) -> None:
    quiet, aiormq_log = _QuietConnectErrors(), logging.getLogger("aiormq.connection")
    aiormq_log.addFilter(quiet)
    plugin.on_shutdown(lambda: aiormq_log.removeFilter(quiet))
    client = config.new_client(asks=StoredAsks(plugin.store))
    service = ChatWarsService(plugin, config, client)
    service.register()
    for entry in service.ledger.mark_interrupted():
        log.warning(
            "ChatWars %s %s was interrupted by a stop; its outcome is unknown until it is "
            "retried (cw retry) or confirmed again",
            entry.kind,
            entry.transaction_id,
        )
    plugin.on_shutdown(client.close)  # after bot_shutdown; also if startup fails halfway
    plugin.client = client
    plugin.create_task(service.feeds.run(), name="market alerts")
    plugin.every(_expiry_interval(config), _expire(service), name="payment expiry")
    feeds = config.feeds
    if feeds.source == "kafka" and feeds.bootstrap is not None:
        kafka = KafkaFeeds(
            feeds.bootstrap,
            feeds.prefix,
            feeds.selected,
            group_id=feeds.group_id,
            offset_reset=feeds.offset_reset,
            reconnect_delays=partial(
                backoff_delays, config.reconnect_min_delay, config.reconnect_max_delay
            ),
        )
        kafka.add_feed_handler(service.feeds.on_feed)
        service.kafka = kafka
        plugin.on_shutdown(kafka.close)
        kafka.start()
    if not config.has_app:
        # Market alerts from Kafka only: no app, so nothing to connect to over AMQP.
        service.first_attempt.set()
        return
    client.expect_start()  # commands arriving before the first attempt ends wait for it
    if config.simulate:
        plugin.create_task(service.run_simulator(config.new_simulator()), name="simulator")
    else:
        plugin.create_task(service.start_client(), name="connect")
    # A broker answers (or refuses) within moments: wait for that first attempt. A slower one
    # does not hold up the bot's start: commands arriving meanwhile wait for it (bounded by
    # their timeout, see ChatWarsClient.expect_start). Later attempts run in the task.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(service.first_attempt.wait(), STARTUP_WAIT)


def _expiry_interval(config: ChatWarsConfig) -> float:
    return min(30.0, max(0.05, config.payment_expiry / 4))


def _expire(service: ChatWarsService) -> Callable[[], Awaitable[None]]:
    """The job that marks payments nobody confirmed in time as expired."""

    async def job() -> None:
        for entry in service.ledger.expire_stale():
            log.info("ChatWars payment %s expired unconfirmed", entry.transaction_id)

    return job


@hookimpl
async def bot_shutdown(plugin: PluginRuntime) -> None:
    # Close first, so commands still waiting fail as "closed" at once instead of waiting out
    # their timeout while the simulator (if any) stops.
    client: ChatWarsClient | None = plugin.client
    if client is not None:
        await client.close()
    service = service_for(plugin)
    if service is not None and service.feeds.waiting:
        # The plugin's topics are already unregistered, so filters could not be applied.
        log.info("ChatWars: %d market alerts gathered at shutdown not sent", service.feeds.waiting)


@hookimpl
def bot_health(plugin: PluginRuntime) -> Health:
    client: ChatWarsClient | None = plugin.client
    service = service_for(plugin)
    if client is None or service is None:
        return Health.down("ChatWars is not running.")
    kafka = service.kafka
    kafka_broken = {k.value: why for k, why in (kafka.status if kafka else {}).items() if why}
    if not service.config.has_app:
        assert kafka is not None  # the config requires an app unless the feeds are Kafka's
        if kafka_broken and len(kafka_broken) == len(kafka.kinds):
            why = next(iter(kafka_broken.values()))
            if why == "not started":
                return Health.down(
                    f"Connecting to the ChatWars feeds on Kafka at {kafka.bootstrap}..."
                )
            return Health.down(f"Not reading the ChatWars feeds from Kafka: {why}; retrying.")
        if kafka_broken:
            return Health.degraded(f"Not reading the Kafka feeds: {', '.join(kafka_broken)}.")
        return Health.up()
    if service.simulator_problem is not None:
        return Health.down(
            f"The ChatWars simulator cannot start: {service.simulator_problem}; retrying. "
            f"To fix: {BROKER_HINT}."
        )
    status = client.status
    if not status.connected:
        if service.simulator is not None and not service.simulator_running:
            return Health.down("Starting the ChatWars simulator...")
        reason = status.reason or "not connected"
        if reason == "not started":
            return Health.down("Connecting to ChatWars...")
        return Health.down(
            f"Not connected to ChatWars at {status.broker}: {reason}; retrying. "
            f"To run it locally: {BROKER_HINT}."
        )
    unknown = service.ledger.unresolved_payouts()
    if unknown:
        return Health.degraded(
            f"{unknown} ChatWars payout{'s have' if unknown != 1 else ' has'} an unknown "
            "outcome; see cw ledger and cw retry."
        )
    broken = {kind.value: why for kind, why in status.feeds.items() if why} | kafka_broken
    if broken:
        feeds = ", ".join(f"{k} ({v})" for k, v in sorted(broken.items()))
        return Health.degraded(f"Connected, but not receiving the feeds: {feeds}.")
    return Health.up()


@hookimpl
def bot_simulator(argv: list[str]) -> ChatWarsSimulator:
    return simulator_from_args(argv)
