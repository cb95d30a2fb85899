"""Parcels: track parcels from chat, and hear in a chat when a watched parcel moves.

The plugin the tutorial (docs/writing-plugins.md) builds, for the ParcelTrack example API.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from bot import (
    Command,
    Context,
    Health,
    PluginRuntime,
    ServiceError,
    ServiceTimeout,
    Topic,
    UserError,
    command,
    hookimpl,
)

from .client import Parcel, ParcelClient, parcel_id
from .config import ParcelsConfig
from .migrations import HISTORY, migrations
from .simulator import ParcelSimulator, simulator_from_args

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

__version__ = "1.0.0"

TOPIC = "parcels.moved"


# ---------------------------------------------------------------------------- commands


@command()
async def track(ctx: Context, parcel: str) -> str:
    """Show where a parcel is.

    Args:
        parcel: the parcel id, e.g. PX-1001
    """
    client: ParcelClient = ctx.client
    return (await client.track(parcel)).describe()


@command("parcels watch")
async def watch(ctx: Context, parcel: str) -> str:
    """Tell this chat each time a parcel moves.

    Args:
        parcel: the parcel id, e.g. PX-1001
    """
    client: ParcelClient = ctx.client
    now = await client.watch(parcel)  # refused here if unknown, or over the API's limit
    ctx.bot.alerts.subscribe(ctx.platform, ctx.chat_id, TOPIC, now.id)
    return f"Watching {now.describe()}. This chat hears when it moves."


@command("parcels unwatch")
async def unwatch(ctx: Context, parcel: str) -> str:
    """Stop telling this chat about a parcel.

    Args:
        parcel: the parcel id, e.g. PX-1001
    """
    pid = parcel_id(parcel)
    if not ctx.bot.alerts.unsubscribe(ctx.platform, ctx.chat_id, TOPIC, pid):
        raise UserError(f"This chat was not watching {pid}.")
    if not watchers(ctx.store, pid):  # the last chat watching it: tell the API too
        client: ParcelClient = ctx.client
        with contextlib.suppress(ServiceError):
            # If the API cannot be told now, it forgets the watch on the next reconnect.
            await client.unwatch(pid)
    return f"This chat no longer hears about {pid}."


@command("parcels watching")
async def watching(ctx: Context) -> str:
    """List the parcels this chat watches."""
    subs = ctx.store.subscriptions(topic=TOPIC, platform=ctx.platform, chat_id=ctx.chat_id)
    if not subs:
        return "This chat watches no parcels."
    return "Watching: " + ", ".join(sorted(s.filter or "" for s in subs))


@command("parcels history")
async def history(ctx: Context, parcel: str) -> str:
    """Show the moves of a parcel the bot heard of (newest first).

    Args:
        parcel: the parcel id, e.g. PX-1001
    """
    pid = parcel_id(parcel)
    rows = ctx.store.db[HISTORY].rows_where(
        "parcel = ?", [pid], order_by="time desc, id desc", limit=5
    )
    moves = [f"{r['status'].replace('_', ' ')} at {r['place']}" for r in rows]
    if not moves:
        return f"No moves of {pid} were seen yet; watch it with !parcels watch {pid}."
    return f"{pid}: " + "; ".join(moves)


def watchers(store: Any, pid: str) -> list[Any]:
    return [s for s in store.subscriptions(topic=TOPIC) if s.filter == pid]


def same_parcel(filter: str, text: str, data: dict[str, Any]) -> bool:
    """A subscription's filter is a parcel id: it matches that parcel's moves only."""
    return data.get("parcel") == filter


# ---------------------------------------------------------------------------- hooks


@hookimpl
def bot_config_model() -> type[ParcelsConfig]:
    return ParcelsConfig


@hookimpl
def bot_migrations() -> Migrations:
    return migrations


@hookimpl
def bot_commands() -> list[Command]:
    return [track, watch, unwatch, watching, history]


@hookimpl
def bot_alert_topics() -> list[Topic]:
    return [Topic(TOPIC, "A watched parcel moved", matches=same_parcel)]


@hookimpl
async def bot_startup(plugin: PluginRuntime, config: ParcelsConfig) -> None:
    url, key = config.url, config.key.get_secret_value()
    if config.simulate:
        sim = await plugin.start_simulator(ParcelSimulator())
        url, key = sim.url, sim.key

    def moved(parcel: Parcel) -> None:
        row = {"parcel": parcel.id, "status": parcel.status, "place": parcel.place}
        plugin.store.db[HISTORY].insert({**row, "time": time.time()})
        plugin.publish(TOPIC, f"📦 {parcel.describe()}", {"parcel": parcel.id})

    client = ParcelClient(url, key, on_moved=moved, timeout=config.timeout)
    # Watches live in the chats' subscriptions; the client sends them on every (re)connect.
    client.watched.update(s.filter for s in plugin.store.subscriptions(topic=TOPIC) if s.filter)
    plugin.client = client
    plugin.create_task(client.run(), name="connection")  # never wait for the API here...
    plugin.on_shutdown(client.close)
    if config.simulate:
        # ...but the in-process simulator answers at once: a moment's wait lets the very
        # first command after start-up find the connection ready.
        with contextlib.suppress(ServiceTimeout):
            await client.wait_connected(1.0)


@hookimpl
def bot_health(plugin: PluginRuntime) -> Health:
    client: ParcelClient = plugin.client
    if client.connected:
        return Health.up(f"watching {len(client.watched)} parcel(s)")
    return Health.down(f"not connected: {client.last_error}")


@hookimpl
def bot_simulator(argv: list[str]) -> ParcelSimulator:
    return simulator_from_args(argv)
