"""A plugin for the cluster tests: it says which process ran a command, asks, waits, alerts.

Its ``beats`` are what a followed game's events are to the games plugin: started by
``bot_startup`` for every chat that follows (a subscription in the shared store), so a new
owner keeps sending them after the old one died.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bot import Context, PluginRuntime, Rest, Topic, UserRef, command, hookimpl

TOPIC = "probe.beats"


@command("probe seq")
async def probe_seq(ctx: Context, n: int) -> str:
    """Answer with the number given (order and once-only checks)."""
    return f"seq {n}"


@command("probe pid")
async def probe_pid(ctx: Context) -> str:
    """Say which process ran the command."""
    return f"pid {os.getpid()}"


@command("probe ask")
async def probe_ask(ctx: Context) -> str:
    """Ask two questions, then repeat the answers."""
    colour = await ctx.ask("colour?")
    size = await ctx.ask("size?")
    return f"got {colour} {size}"


@command("probe confirm")
async def probe_confirm(ctx: Context) -> str:
    """Ask yes or no (with buttons where the gateway's platform has them)."""
    if await ctx.confirm("Really do it?"):
        return f"confirmed in {os.getpid()}"
    return "not confirmed"


@command("probe who")
async def probe_who(ctx: Context, user: UserRef, note: Rest | None = None) -> str:
    """Say which user was named, as the worker sees it (the id decides, not the name)."""
    return f"who {user.platform} {user.id} {user.name} note={note}"


@command("probe slow")
async def probe_slow(ctx: Context, ms: int) -> str:
    """Wait like an API call of ``ms`` milliseconds."""
    await asyncio.sleep(ms / 1000)
    return f"slow {ms}"


@command("probe follow")
async def probe_follow(ctx: Context) -> str:
    """Have this chat hear the owner's beats."""
    ctx.bot.alerts.subscribe(ctx.platform, ctx.chat_id, TOPIC)
    return "following"


async def _beat(plugin: PluginRuntime) -> None:
    n = 0
    while True:
        await asyncio.sleep(0.3)
        n += 1
        plugin.publish(TOPIC, f"beat {n} from {os.getpid()}")


@hookimpl
def bot_commands() -> list[Any]:
    return [probe_seq, probe_pid, probe_ask, probe_confirm, probe_who, probe_slow, probe_follow]


@hookimpl
def bot_alert_topics() -> list[Topic]:
    return [Topic(TOPIC, "beats of the owner process")]


@hookimpl
def bot_startup(plugin: PluginRuntime) -> None:
    plugin.create_task(_beat(plugin), name="probe-beats")
