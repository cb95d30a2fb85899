"""The core plugin: help, ping, status, plugins, links, unlink.

Written on the same contract as every other plugin, so it doubles as the smallest complete
example of one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

from .commands import Command, Permission, Rest, command
from .errors import BotError, UserError
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .context import Context


def _visible(ctx: Context, cmd: Command) -> bool:
    if cmd.hidden:
        return False
    if cmd.permission >= Permission.OWNER:
        return ctx.is_owner
    if cmd.permission >= Permission.ADMIN:
        return ctx.is_admin
    return ctx.bot.chat_allows(ctx.platform, ctx.chat_id, cmd.plugin, cmd.name)


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
    names = sorted(set(bot.plugins.runtimes) | set(bot.plugins.failures))
    for name in names:
        if name == "core":
            continue
        health = await bot.plugins.health(name)
        reason = f" - {health.reason}" if health.reason else ""
        lines.append(f"plugin {name}: {health.state}{reason}")
    for platform, transport in sorted(bot.transports.items()):
        state, reason = transport.status()
        lines.append(f"transport {platform}: {state}" + (f" - {reason}" if reason else ""))
    return "\n".join(lines)


@command("plugins", permission=Permission.ADMIN)
async def plugins_list(ctx: Context) -> str:
    """List plugins with their version, source, state and commands."""
    bot = ctx.bot
    lines = []
    for name, info in sorted(bot.plugins.available.items()):
        runtime = bot.plugins.runtimes.get(name)
        if runtime:
            health = await bot.plugins.health(name)
            state = health.state + (f" ({health.reason})" if health.reason else "")
            cmds = ", ".join(c.name for c in runtime.commands) or "-"
            hooks = ", ".join(bot.plugins.implemented_hooks(name))
            here = "" if bot.chat_allows(ctx.platform, ctx.chat_id, name, None) else " [off here]"
            lines.append(
                f"{name} {runtime.version} [{info.source}]: {state}{here}\n"
                f"  commands: {cmds}\n  hooks: {hooks}"
            )
        else:
            reason = bot.plugins.failures.get(name, "disabled")
            lines.append(f"{name} [{info.source}]: not running - {reason}")
    for name, reason in sorted(bot.plugins.failures.items()):
        if name not in bot.plugins.available:
            lines.append(f"{name}: not running - {reason}")
    return "\n".join(lines)


def _switch_target(ctx: Context, name: str) -> tuple[str, str]:
    """A name is a plugin, or a command (turned off per chat); returns (plugin, command)."""
    bot = ctx.bot
    if name in bot.plugins.available:
        return name, ""
    cmd = bot.registry.find(name.lower())
    if cmd is not None:
        return cmd.plugin, cmd.name
    raise UserError(f"No plugin or command named {name!r}.")


async def _switch(ctx: Context, name: str, where: str | None, enabled: bool) -> str:
    bot = ctx.bot
    plugin, cmd_name = _switch_target(ctx, name)
    verb = "enabled" if enabled else "disabled"
    if plugin == "core":
        raise UserError("The core plugin cannot be turned off.")
    if where == "here":
        bot.set_chat_control(ctx.platform, ctx.chat_id, plugin, cmd_name, enabled)
        return f"{cmd_name or plugin} {verb} in this chat."
    if cmd_name:
        raise UserError("A single command can only be switched per chat: add 'here'.")
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


@command("plugins enable", permission=Permission.ADMIN)
async def plugins_enable(ctx: Context, name: str, where: Literal["here"] | None = None) -> str:
    """Start a plugin, or turn a plugin or command back on in this chat.

    Args:
        name: a plugin name, or a command name with 'here'
        where: 'here' to switch it for this chat only
    """
    return await _switch(ctx, name, where, True)


@command("plugins disable", permission=Permission.ADMIN)
async def plugins_disable(ctx: Context, name: str, where: Literal["here"] | None = None) -> str:
    """Stop a plugin, or turn a plugin or command off in this chat.

    Args:
        name: a plugin name, or a command name with 'here'
        where: 'here' to switch it for this chat only
    """
    return await _switch(ctx, name, where, False)


@command("plugins reload", permission=Permission.ADMIN)
async def plugins_reload(ctx: Context, name: str) -> str:
    """Re-import a plugin's code and restart it; on failure the old version keeps running.

    Args:
        name: the plugin to reload
    """
    try:
        runtime = await ctx.bot.plugins.reload(name)
    except BotError as exc:
        raise UserError(str(exc)) from None
    return f"{name} reloaded (version {runtime.version})."


@command(private=True)
async def links(ctx: Context) -> str:
    """Show the accounts you have linked (tokens are never shown)."""
    rows = ctx.store.links_for(ctx.platform, ctx.user_id)
    if not rows:
        return "You have no linked accounts."
    return "\n".join(
        f"{link.service}: {link.account}" + (" (with a token)" if link.token else "")
        for link in rows
    )


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
        links,
        unlink,
    ]
