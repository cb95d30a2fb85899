"""ConcertPOS: products, payment methods, POS sales, transactions and live updates from chat.

The protocol client (``client.py`` over ``connection.py``), its rate budget
(``ratelimit.py``), typed results (``models.py``), errors (``errors.py``), config model
(``config.py``) and local simulator (``simulator.py``) live beside this file; the chat
commands are in ``commands.py``, their wording in ``replies.py``, the sale flow's ledger
rows in ``sales.py`` and the broadcast alerts in ``alerts.py``. This module holds only the
hooks that tie them to the bot.

Start-up never waits for a ConcertPOS that is not there: the client keeps trying the shards
in the background and ``bot_health`` says why it is down. Only with ``simulate: true`` does
start-up wait (briefly) for the connection, because the simulator runs in this very process
and a first command typed right after start should not be told "not connected".

Sales go to the core ledger (see ``sales.py`` for its columns); the plugin's one table holds
the point of sale each chat picked (``selection.py``, ``migrations/concertpos.py``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot import Health, hookimpl

from .alerts import TOPICS, event_publisher
from .client import ConcertPOSClient
from .commands import COMMANDS
from .config import ConcertPOSConfig
from .errors import ConcertPOSError
from .simulator import ConcertPOSSimulator, simulator_from_args

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

    from bot import Command, PluginRuntime, Simulator, Topic

__version__ = "0.2.0"

log = logging.getLogger(__name__)

#: a ``ratelimit`` from the server this recently makes the plugin "degraded"
RECENT_RATELIMIT = 60.0
#: how long the background connect waits between checks once every shard failed
_WAIT_STEP = 3600.0


@hookimpl
def bot_config_model() -> type[ConcertPOSConfig]:
    return ConcertPOSConfig


@hookimpl
def bot_migrations() -> Migrations:
    from bot_migrations.concertpos import migrations

    return migrations


@hookimpl
def bot_commands() -> list[Command]:
    return list(COMMANDS)


@hookimpl
def bot_alert_topics() -> list[Topic]:
    return list(TOPICS)


async def _connect(client: ConcertPOSClient) -> None:
    """Connect in the background; once a shard answers, cache the license (as the doc
    asks) and the point of sale's lists (so the first sale is cheap)."""
    if not await client.start():
        while not await client.wait_connected(_WAIT_STEP):
            pass
        try:
            await client.get_license()
        except ConcertPOSError as exc:
            log.warning("ConcertPOS: could not fetch the license: %s", exc.message)
    await client.preload()


@hookimpl
async def bot_startup(plugin: PluginRuntime, config: ConcertPOSConfig) -> None:
    if config.simulate:
        sim = ConcertPOSSimulator.for_config(config)
        await plugin.start_simulator(sim)
        client = ConcertPOSClient.from_config(config, urls=[sim.url], api_key=sim.api_key)
    else:
        client = ConcertPOSClient.from_config(config)
    client.add_listener(
        event_publisher(
            plugin.publish,
            lambda: plugin.bot.settings.bot.prefix,
            repeat_after=config.alert_repeat_after,
        )
    )
    plugin.on_shutdown(client.close)  # runs before the simulator's stop (last in, first out)
    plugin.client = client
    if config.simulate:
        if await client.start(wait=config.connect_timeout):
            await client.preload()
    else:
        plugin.create_task(_connect(client), name="connect")


@hookimpl
async def bot_shutdown(plugin: PluginRuntime) -> None:
    # Close first, so commands still waiting fail as "not connected" at once instead of
    # waiting out their timeout while the plugin's tasks are cancelled.
    client: ConcertPOSClient | None = plugin.client
    if client is not None:
        await client.close()


def _now() -> float | None:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return None


@hookimpl
def bot_health(plugin: PluginRuntime) -> Health:
    client: ConcertPOSClient | None = plugin.client
    if client is None:
        return Health.down("ConcertPOS is not running.")
    state = client.state()
    if not state.connected:
        if state.last_error:
            return Health.down(f"Not connected to ConcertPOS: {state.last_error}; retrying.")
        return Health.down("Connecting to ConcertPOS...")
    if client.refusal is not None:
        return Health.down(client.refusal.message)
    lic = client.cached_license
    if lic is not None and not lic.valid_at(datetime.now(UTC)):
        return Health.degraded("The ConcertPOS license is inactive or expired.")
    now = _now()
    limited = client.rate_limited_at
    if limited is not None and now is not None and now - limited < RECENT_RATELIMIT:
        return Health.degraded("ConcertPOS rate-limited the bot in the last minute.")
    if state.shard_index:
        return Health.up(f"on fallback shard {state.url}")
    return Health.up()


@hookimpl
def bot_simulator(argv: list[str]) -> Simulator:
    return simulator_from_args(argv)
