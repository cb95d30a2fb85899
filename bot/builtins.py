"""The core plugin: help, ping, status, plugins, links (bot/links.py), unlink.

Written on the same contract as every other plugin, so it doubles as the smallest complete
example of one.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from . import links
from .alerts import Topic
from .commands import Command, Permission, Rest, command
from .errors import BotError, UsageError, UserError
from .hookspecs import hookimpl
from .ops.readiness import components
from .plugin_info import PluginDescription
from .plugins import CORE_PLUGIN

if TYPE_CHECKING:
    from .context import Context


def _visible(ctx: Context, cmd: Command) -> bool:
    """Shown in help: what the caller may run, less everyday commands turned off here."""
    return ctx.bot.access.shows(ctx.caller, cmd, ctx.chat_id)


@command("help")
async def help_(ctx: Context, name: Rest | None = None) -> str:
    """List the commands you can use, or explain one.

    Args:
        name: a command to explain, e.g. "points add"
    """
    prefix = ctx.bot.settings.bot.prefix
    registry = ctx.bot.registry
    if name:
        cmd = registry.find(name.lstrip(prefix).lower())
        if cmd is None or not _visible(ctx, cmd):
            subs = [c for c in registry.group_children(name.lower().split()) if _visible(ctx, c)]
            if not subs:
                raise UserError(f"No command {prefix}{name}. Try {prefix}help.")
            return "\n".join(f"{c.usage(prefix)} - {c.help}" for c in subs)
        lines = [cmd.usage(prefix), cmd.help]
        if cmd.description:
            lines.append(cmd.description)
        for p in cmd.params:
            if p.description:
                lines.append(f"  {p.name}: {p.description}")
        if cmd.aliases:
            lines.append("Also: " + ", ".join(prefix + a for a in cmd.aliases))
        if cmd.permission >= Permission.ADMIN:
            lines.append("(admins only)")
        subs = sorted(
            (c for c in registry.group_children(cmd.path) if _visible(ctx, c)), key=lambda c: c.name
        )
        if subs:  # a group that is also a command: its subcommands
            lines.append("Subcommands:")
            lines += [f"  {c.usage(prefix)} - {c.help}" for c in subs]
        return "\n".join(lines)
    cmds = sorted((c for c in registry.commands if _visible(ctx, c)), key=lambda c: c.name)
    lines = [f"Commands ({prefix}help <command> for details):"]
    lines += [f"{c.usage(prefix)} - {c.help}" for c in cmds]
    return "\n".join(lines)


@command()
async def ping(ctx: Context) -> str:
    """Check that the bot answers."""
    return "pong"


@command()
async def status(ctx: Context) -> str:
    """Show whether each plugin and transport is up, degraded or down, and why."""
    bot = ctx.bot
    uptime = time.monotonic() - bot.started_at
    lines = [f"{bot.settings.bot.name}: up {uptime:.0f} s"]
    # The same list and words as /readyz and the connection-state metrics.
    lines += [c.line() for c in await components(bot)]
    cluster = getattr(bot, "cluster", None)
    if cluster is not None:
        lines += cluster.members.lines(bot.settings.bot.cluster.name)
    claims = links.status_line(ctx)
    if claims:
        lines.append(claims)
    # Reasons come from exceptions (a URL with a password, an API's echo of a key): anyone
    # may run status, so every configured secret is masked, as in the logs.
    return bot.scrub("\n".join(lines))


@command("plugins", permission=Permission.ADMIN)
async def plugins_list(ctx: Context, name: str | None = None) -> str:
    """List plugins with their version, source, state, health, commands and hooks.

    Args:
        name: show only this plugin
    """
    bot = ctx.bot
    if name is not None:
        if name not in bot.plugins.available and name not in bot.plugins.failures:
            raise UserError(f"No plugin named {name!r}. Try {bot.settings.bot.prefix}plugins.")
        described = [await bot.plugins.describe(name)]
    else:
        described = await bot.plugins.describe_all()
    blocks = []
    for d in _owned_elsewhere(ctx, described):
        text = d.format()
        if d.name != CORE_PLUGIN and d.name in bot.plugins.available:
            text += _chat_note(ctx, d.name, d.commands)
        blocks.append(text)
    return "\n".join(blocks)


def _owned_elsewhere(ctx: Context, described: list[PluginDescription]) -> list[PluginDescription]:
    """In a cluster, a plugin another worker owns is not "not running": say where it runs and
    how its owner last said it was (its heartbeat), as ``status`` does."""
    members = getattr(ctx.bot.cluster, "members", None)
    if members is None:
        return described
    out = []
    for d in described:
        owner = None if d.name in ctx.bot.plugins.runtimes else members.owner_of(d.name)
        if owner is not None:
            state, reason = owner.health[d.name]
            where = f"{state} at {owner.role} {owner.host} pid {owner.pid}"
            d = replace(d, state=where, health=None, reason=reason)
        out.append(d)
    return out


def _chat_note(ctx: Context, plugin: str, commands: tuple[str, ...]) -> str:
    """What an admin switched off in this chat, so the listing explains a silent command."""
    access = ctx.bot.access
    if not access.chat_allows(ctx.platform, ctx.chat_id, plugin, None):
        return "\n  off in this chat"
    off = [c for c in commands if not access.chat_allows(ctx.platform, ctx.chat_id, plugin, c)]
    return f"\n  off in this chat: {', '.join(off)}" if off else ""


def _parse_target(ctx: Context, target: str) -> tuple[str, str, bool]:
    """``NAME [here]`` -> (plugin, command or "", here); a name is a plugin or a command."""
    words = target.lower().split()
    here = bool(words) and words[-1] == "here"
    if here:
        words = words[:-1]
    if not words:
        raise UsageError("name a plugin, or a command followed by 'here'")
    name = " ".join(words).lstrip(ctx.bot.settings.bot.prefix)
    bot = ctx.bot
    if name in bot.plugins.available or name in bot.plugins.runtimes:
        return name, "", here
    cmd = bot.registry.find(name)
    if cmd is not None:
        return cmd.plugin, cmd.name, here
    # A command not registered in this process: its plugin failed to start, or in a cluster
    # it runs in another worker (which reads the switch from the store).
    declared = {**bot.plugins.declared, **getattr(bot.cluster, "remote_commands", {})}
    for plugin, names in declared.items():
        if name in names:
            return plugin, name, here
    raise UserError(f"No plugin or command named {name!r}.")


async def _switch(ctx: Context, target: str, enabled: bool) -> str:
    bot = ctx.bot
    plugin, cmd_name, here = _parse_target(ctx, target)
    verb = "enabled" if enabled else "disabled"
    if plugin == CORE_PLUGIN:
        raise UserError("The core plugin and its commands cannot be turned off.")
    if here:
        access = bot.access
        access.set_chat_control(ctx.platform, ctx.chat_id, plugin, cmd_name, enabled)
        note = ""
        if enabled and cmd_name and not access.chat_allows(ctx.platform, ctx.chat_id, plugin, None):
            prefix = bot.settings.bot.prefix
            note = (
                f" The {plugin} plugin itself is still off here: "
                f"{prefix}plugins enable {plugin} here"
            )
        return f"{cmd_name or plugin} {verb} in this chat.{note}"
    if cmd_name:
        raise UserError(
            f"A single command can only be switched in one chat: "
            f"{bot.settings.bot.prefix}plugins {verb[:-1]} {cmd_name} here"
        )
    _refuse_in_a_cluster(ctx, f"{verb[:-1]} a plugin")
    try:
        if enabled:
            if plugin in bot.plugins.runtimes:
                return f"{plugin} is already running."
            await bot.plugins.enable(plugin)
        else:
            await bot.plugins.disable(plugin)
    except BotError as exc:
        raise UserError(f"Could not {verb[:-1]} {plugin}: {exc}") from None
    return f"{plugin} {verb}."


def _refuse_in_a_cluster(ctx: Context, what: str) -> None:
    """Starting and stopping plugins is per process; in a cluster a plugin runs at one owner
    that the workers elect (bot/cluster), so a worker starting it on an admin's word would run
    a second copy (two consumers of one reply queue), and one stopping it would strand its
    commands."""
    bot = ctx.bot
    if not bot.settings.bot.cluster.enabled:
        return
    prefix = bot.settings.bot.prefix
    raise UserError(
        f"In a cluster, this command cannot {what}: each plugin runs at the one worker that "
        "owns it. Change the plugins in the config and restart the workers one at a time; "
        f"{prefix}plugins disable NAME here still switches a plugin off in one chat."
    )


@command("plugins enable", permission=Permission.ADMIN)
async def plugins_enable(ctx: Context, target: Rest) -> str:
    """Start a plugin, or with 'here' turn a plugin or one command back on in this chat.

    Args:
        target: a plugin name, or a plugin or command name followed by 'here'
    """
    return await _switch(ctx, target, True)


@command("plugins disable", permission=Permission.ADMIN)
async def plugins_disable(ctx: Context, target: Rest) -> str:
    """Stop a plugin, or with 'here' turn a plugin or one command off in this chat only.

    Args:
        target: a plugin name, or a plugin or command name followed by 'here'
    """
    return await _switch(ctx, target, False)


@command("plugins reload", permission=Permission.ADMIN)
async def plugins_reload(ctx: Context, name: str) -> str:
    """Re-import a plugin's code and restart it; on failure the old version keeps running.

    Args:
        name: the plugin to reload
    """
    _refuse_in_a_cluster(ctx, "reload a plugin")
    try:
        runtime = await ctx.bot.plugins.reload(name)
    except BotError as exc:
        raise UserError(str(exc)) from None
    return f"{name} reloaded (version {runtime.version})."


@command()
async def unlink(ctx: Context, service: str) -> str:
    """Forget your link to a service (and its token).

    Args:
        service: the service to unlink, e.g. deepbot
    """
    if ctx.store.delete_link(ctx.platform, ctx.user_id, service.lower()):
        return f"Your {service} link is removed."
    return f"You had no {service} link."


@hookimpl
def bot_commands() -> list[Command]:
    return [
        help_,
        ping,
        status,
        plugins_list,
        plugins_enable,
        plugins_disable,
        plugins_reload,
        *links.COMMANDS,
        unlink,
    ]


@hookimpl
def bot_alert_topics() -> list[Topic]:
    return list(links.TOPICS)
