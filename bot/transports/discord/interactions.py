"""Slash commands, their autocomplete and button presses, as Discord delivers them
(interactions): routed to the command they name and run through the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Coroutine
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...commands import Command, Param
from ...context import Context
from ...errors import UsageError, UserError
from ...messages import Message, Reply
from .commands import SlashCatalog, SlashRoute, convert_options, focused_option, interaction_path
from .library import discord
from .replies import Confirmations, InteractionResponder

if TYPE_CHECKING:
    from ...app import Bot
    from ...config import DiscordConfig

log = logging.getLogger(__name__)

#: Discord waits 3 s for an autocomplete answer; leave room for the round trip
AUTOCOMPLETE_TIMEOUT = 2.0


class Interactions:
    """The part of :class:`~.transport.DiscordTransport` that answers interactions."""

    platform: str
    bot: Bot | None
    client: discord.Client | None
    config: DiscordConfig
    catalog: SlashCatalog
    confirms: Confirmations
    _stopping: bool
    _tasks: set[asyncio.Task[Any]]

    async def _on_interaction(self, interaction: discord.Interaction) -> None:
        if self.bot is None or self._stopping:
            return
        kind = interaction.type
        try:
            if kind == discord.InteractionType.component:
                await self.confirms.click(interaction)
            elif kind == discord.InteractionType.application_command:
                self._spawn(self._run_slash(interaction))
            elif kind == discord.InteractionType.autocomplete:
                self._spawn(self._autocomplete(interaction))
        except discord.HTTPException as exc:
            log.warning("discord: could not answer an interaction: %s", exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run an interaction in its own task, so one slow command never blocks the gateway."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self.bot is not None:
            self.bot.dispatcher.track(task)

    def _route(
        self, data: dict[str, Any]
    ) -> tuple[Command, SlashRoute, list[dict[str, Any]]] | None:
        assert self.bot is not None
        path, options = interaction_path(data)
        if self._refresh_catalog() and self.config.sync_commands and self.client is not None:
            self._schedule_sync()
        route = self.catalog.routes.get(path)
        cmd = self.bot.registry.find(route.command) if route else None
        if cmd is None or route is None:
            return None
        return cmd, route, options

    def _interaction_message(
        self, interaction: discord.Interaction, text: str, responder: Any
    ) -> Message:
        user = interaction.user
        return Message(
            platform=self.platform,
            chat_id=str(interaction.channel_id),
            user_id=str(user.id),
            user_name=user.display_name,
            text=text,
            responder=responder,
            chat_kind="private" if interaction.guild_id is None else "group",
            extra=self._extra(user, interaction.guild_id, None),
        )

    async def _run_slash(self, interaction: discord.Interaction) -> None:
        assert self.bot is not None
        config = self.config
        data: dict[str, Any] = dict(interaction.data or {})
        found = self._route(data)
        responder = InteractionResponder(
            interaction,
            self.confirms,
            private=found[0].private if found else True,
            defer_after=config.defer_after,
            confirm_timeout=config.confirm_timeout,
        )
        try:
            if found is None:
                await responder.send(
                    Reply(
                        "This command is not available right now (it may have been removed).",
                        private=True,
                        error=True,
                    )
                )
                return
            cmd, route, options = found
            message = self._interaction_message(interaction, f"/{cmd.name}", responder)
            responder.start_timer()
            try:
                kwargs = convert_options(cmd, route, options, data.get("resolved") or {})
            except UsageError as exc:
                prefix = self.bot.settings.bot.prefix
                await responder.send(
                    Reply(f"{exc.message}\nUsage: {cmd.usage(prefix)}", private=True, error=True)
                )
                return
            await self.bot.dispatcher.run(cmd, message, kwargs=kwargs)
        except discord.HTTPException as exc:
            log.warning("discord: could not answer /%s: %s", data.get("name"), exc)
        except Exception:
            log.exception("discord: slash command /%s failed", data.get("name"))
            with contextlib.suppress(discord.HTTPException):
                await responder.send(
                    Reply(
                        "Sorry, something went wrong with that command.", private=True, error=True
                    )
                )
        finally:
            await responder.finish()

    async def _autocomplete(self, interaction: discord.Interaction) -> None:
        """Offer choices while the user types; a slow or failing source offers none."""
        choices: list[discord.app_commands.Choice[Any]] = []
        try:
            choices = await asyncio.wait_for(self._choices(interaction), AUTOCOMPLETE_TIMEOUT)
        except TimeoutError:
            log.warning("discord: autocomplete took longer than %s s", AUTOCOMPLETE_TIMEOUT)
        except Exception:
            log.exception("discord: autocomplete failed")
        with contextlib.suppress(discord.HTTPException):
            await interaction.response.autocomplete(choices)

    async def _choices(
        self, interaction: discord.Interaction
    ) -> list[discord.app_commands.Choice[Any]]:
        assert self.bot is not None
        found = self._route(dict(interaction.data or {}))
        if found is None:
            return []
        cmd, route, options = found
        focused = focused_option(options)
        if focused is None:
            return []
        param = next((p for p in cmd.params if p.name == route.options.get(focused["name"])), None)
        if param is None:
            return []
        current = str(focused.get("value") or "")
        bot = self.bot
        message = self._interaction_message(interaction, f"/{cmd.name}", _NoReplies())
        ctx = bot.dispatcher.context_for(message, cmd)
        try:  # suggestions can leak what the command manages: only for who may run it here
            bot.access.check(ctx.caller, cmd, ctx.chat_id)
        except UserError:
            return []
        if param.autocomplete is not None:
            values = await _call_autocomplete(param, ctx, current)
        else:
            low = current.lower()
            values = [c for c in param.choices if low in c.lower()]
        return [_choice(param, v) for v in values[:25] if v is not None]


class _NoReplies:
    """Autocomplete cannot post messages; a plugin's autocomplete that tries is ignored."""

    async def send(self, reply: Reply) -> None:
        log.warning("discord: an autocomplete function tried to reply; ignored")

    async def confirm(self, question: str, timeout: float) -> bool | None:
        return False


async def _call_autocomplete(param: Param, ctx: Context, current: str) -> list[Any]:
    """Call ``async def complete(ctx, current)`` (or ``complete(current)``) for suggestions."""
    fn = param.autocomplete
    assert fn is not None
    try:
        takes = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        takes = 2
    result = await (fn(ctx, current) if takes >= 2 else fn(current))
    return list(result or [])


def _choice(param: Param, value: Any) -> discord.app_commands.Choice[Any]:
    """A suggestion: a plain value, or a ``(label, value)`` pair; values typed like the option."""
    label, raw = value if isinstance(value, tuple) and len(value) == 2 else (value, value)
    if param.kind is int and not param.choices:
        typed: Any = int(raw)
    elif param.kind in (float, Decimal) and not param.choices:
        typed = float(raw)
    else:
        typed = str(raw)[:100]
    return discord.app_commands.Choice(name=str(label)[:100] or str(typed), value=typed)
