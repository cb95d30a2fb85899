"""DeepBot: viewer points, watch hours, rank, VIP and escrow from chat.

The protocol client (``connection.py`` for the socket and matching, ``client.py`` for the
typed calls), its wire format (``protocol.py``), typed results (``models.py``), errors
(``errors.py``), config model (``config.py``) and local simulator (``simulator.py``) live
beside this file; the chat commands are in ``commands.py``, the record of gives in
``gives.py`` and how a give moves points in ``transfer.py``. This module holds only the
hooks that tie them to the bot.

Start-up never waits for a DeepBot that is not there: the client keeps reconnecting in the
background and ``bot_health`` says why it is down; a command arriving while a connection
attempt is in progress waits for it (bounded by the call timeout). Once connected, and every
minute after, gives that a crash or a lost answer left in flight are settled (``transfer.py``).
Only with ``simulate: true`` does start-up wait (briefly) for the connection, because the
simulator runs in this very process.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from bot import Health, hookimpl

from .client import ConnectionState, DeepBotClient
from .commands import COMMANDS, ESCROW_TOPIC, TOPICS
from .config import DeepBotConfig
from .errors import DeepBotError
from .gives import GiveRecord
from .transfer import settle_all

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

    from bot import Command, PluginRuntime, Topic

    # Imported where used: a run without ``simulate: true`` never loads the simulator.
    from .simulator import DeepBotSimulator, SimUser

__version__ = "0.2.0"

#: A call left unanswered this recently makes the plugin "degraded" rather than "up".
RECENT_TIMEOUT = 60.0
#: How often gives left in flight are settled again while DeepBot is reachable.
SETTLE_INTERVAL = 60.0


def demo_viewers() -> list[SimUser]:
    """Viewers of the embedded simulator (besides the protocol doc's ``expertsonline``), so
    ``simulate: true`` has someone to link to and give points to."""
    from .simulator import SimUser

    return [
        SimUser("alice", points=Decimal(500), watch_minutes=Decimal(6000)),
        SimUser("bob", points=Decimal(100), watch_minutes=Decimal(90)),
        SimUser("carol", points=Decimal(0), watch_minutes=Decimal(0)),
    ]


@hookimpl
def bot_config_model() -> type[DeepBotConfig]:
    return DeepBotConfig


@hookimpl
def bot_commands() -> list[Command]:
    return list(COMMANDS)


@hookimpl
def bot_alert_topics() -> list[Topic]:
    return list(TOPICS)


@hookimpl
def bot_migrations() -> Migrations:
    from bot_migrations.deepbot import migrations

    return migrations


@hookimpl
async def bot_startup(plugin: PluginRuntime, config: DeepBotConfig) -> None:
    url, secret = config.url, config.secret_value()
    if config.simulate:
        from .simulator import DeepBotSimulator

        sim = DeepBotSimulator(
            port=0,
            secret=secret or secrets.token_urlsafe(16),
            users=demo_viewers(),
            decimals=config.decimals,
        )
        await plugin.start_simulator(sim)
        url, secret = sim.url, sim.secret
    client = DeepBotClient.from_config(config, url=url, secret=secret)
    plugin.on_shutdown(client.close)  # runs before the simulator's stop (last in, first out)
    await client.start()
    plugin.client = client
    plugin.create_task(_settle_gives(plugin, client), name="settle gives")
    if config.simulate:
        with contextlib.suppress(DeepBotError):
            await client.wait_connected(config.timeout)


async def _settle_gives(plugin: PluginRuntime, client: DeepBotClient) -> None:
    """Settle gives a crash or a lost answer left in flight: once connected, then every
    minute. A give that turns out to need an admin is alerted like one stopped in chat."""
    store = plugin.store

    def held(record: GiveRecord) -> None:
        plugin.bot.alerts.publish(
            ESCROW_TOPIC,
            f"A give of {record.amount} points from {record.giver} to {record.receiver} "
            f"stopped halfway (give {record.id}): {record.message} See gives held.",
            {"give": record.id, "giver": record.giver, "receiver": record.receiver},
        )

    while True:
        try:
            await client.wait_connected(None)
            await settle_all(client, store, held)
        except DeepBotError as exc:
            plugin.log.info("Settling gives waits for DeepBot: %s", exc.message)
        except Exception:  # a bug must not end the settling nobody is watching
            plugin.log.exception("Settling DeepBot gives failed")
        await asyncio.sleep(SETTLE_INTERVAL)


@hookimpl
async def bot_shutdown(plugin: PluginRuntime) -> None:
    # Close before the simulator stops, so calls still waiting fail as "closed" rather
    # than as a lost connection that would be retried.
    client: DeepBotClient | None = plugin.client
    if client is not None:
        await client.close()


@hookimpl
def bot_health(plugin: PluginRuntime) -> Health:
    client: DeepBotClient | None = plugin.client
    if client is None:
        return Health.down("DeepBot is not running.")
    state = client.state
    if state is ConnectionState.CONNECTED:
        last = client.last_timeout
        if last is not None and time.monotonic() - last < RECENT_TIMEOUT:
            return Health.degraded(
                "DeepBot left a request unanswered in the last minute (it does that when it "
                "is busy, and for user names it does not know)."
            )
        return Health.up()
    if state is ConnectionState.AUTH_FAILED:
        return Health.down(client.last_error or "DeepBot refused the API secret.")
    if state is ConnectionState.CLOSED:
        return Health.down("The DeepBot connection is closed.")
    if client.registrations == 0 and client.last_error is None:
        return Health.down("Connecting to DeepBot...")
    return Health.down(f"{client.last_error or 'DeepBot is not connected.'} Retrying.")


@hookimpl
def bot_simulator(argv: list[str]) -> DeepBotSimulator:
    from .simulator import simulator_from_args

    return simulator_from_args(argv)
