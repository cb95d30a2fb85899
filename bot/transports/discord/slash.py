"""Registering the slash commands with Discord, only when what would be sent changed: a hash
per application and scope is kept in the store's ``meta`` table (see the package docstring).
How commands are rendered as slash commands is in :mod:`.commands`."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from ...errors import NotConnected
from .commands import SlashCatalog, build_catalog
from .connection import _describe
from .library import discord

if TYPE_CHECKING:
    from ...app import Bot
    from ...commands import Command
    from ...config import DiscordConfig

log = logging.getLogger(__name__)

#: attempts at registering slash commands when Discord fails transiently
SYNC_ATTEMPTS = 5

META_HASH = "discord.slash.{app}.{scope}"
META_SCOPES = "discord.slash_scopes.{app}"


class SlashSync:
    """The part of :class:`~.transport.DiscordTransport` that keeps Discord's slash commands
    in step with the registry (plugins enabled, disabled or reloaded while it runs)."""

    bot: Bot | None
    client: discord.Client | None
    config: DiscordConfig
    state: str
    catalog: SlashCatalog
    syncs: int
    sync_problem: str
    _stopping: bool
    _sync_transient: bool
    _sync_wanted: bool
    _sync_task: asyncio.Task[None] | None
    _sync_lock: asyncio.Lock
    _catalog_of: tuple[Command, ...] | None

    def _refresh_catalog(self) -> bool:
        """Re-render the slash commands if the registry changed (a plugin reloaded)."""
        assert self.bot is not None
        current = tuple(self.bot.registry.commands)
        old = self._catalog_of
        # Holding the old objects keeps identity meaningful (no reused ids after a reload).
        if old is not None and len(old) == len(current):
            if all(a is b for a, b in zip(old, current, strict=True)):
                return False
        self.catalog = build_catalog(
            self.bot.registry.root, admin_permissions=self.config.admin_permissions
        )
        self._catalog_of = current
        return True

    def _schedule_sync(self) -> None:
        """Ask for a sync; one that is running already goes round again when it ends."""
        self._sync_wanted = True
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.get_running_loop().create_task(
                self._sync_quietly(), name="discord:sync"
            )

    async def _sync_quietly(self) -> None:
        """Sync, retrying transient failures (5xx, network) a few times with backoff."""
        while self._sync_wanted and not self._stopping:
            self._sync_wanted = False
            delays = self._new_delays()
            for _ in range(SYNC_ATTEMPTS):
                try:
                    await self.sync_commands()
                except NotConnected:
                    return  # the connection dropped meanwhile; the next READY syncs again
                except Exception:
                    log.exception("discord: slash command registration failed")
                    return
                if not self._sync_transient or self._stopping:
                    break
                await asyncio.sleep(next(delays))

    async def _watch_commands(self) -> None:
        """Re-sync when plugins are enabled, disabled or reloaded while the bot runs."""
        interval = self.config.command_check_interval
        while not self._stopping:
            await asyncio.sleep(interval)
            if self._refresh_catalog() and self.state == "up" and self.config.sync_commands:
                self._schedule_sync()

    async def sync_commands(self, *, force: bool = False) -> int:
        """Register the slash commands where the stored hash differs; returns scopes updated."""
        assert self.bot is not None and self.client is not None
        client, store, config = self.client, self.bot.store, self.config
        app = client.application_id
        if app is None:
            raise NotConnected("Discord is not logged in yet.", service="discord")
        async with self._sync_lock:
            self._refresh_catalog()
            catalog = self.catalog
            digest = catalog.digest(app)
            scopes = [str(g) for g in config.guild_ids] or ["global"]
            previous = _json_list(store.get_meta(META_SCOPES.format(app=app)))
            problems: list[str] = []
            transient = False
            keep: set[str] = set()
            updated = 0
            for scope in [*scopes, *(s for s in previous if s not in scopes)]:
                wanted = scope in scopes
                key = META_HASH.format(app=app, scope=scope)
                target = digest if wanted else ""
                if store.get_meta(key) == target and not force:
                    continue
                try:
                    await self._put_commands(client, app, scope, catalog.payload if wanted else [])
                except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                    where = "globally" if scope == "global" else f"in guild {scope}"
                    problems.append(f"slash commands not registered {where}: {_describe(exc)}")
                    status = getattr(exc, "status", 500)
                    transient = transient or not isinstance(status, int) or status >= 500
                    if not wanted:
                        keep.add(scope)
                    continue
                store.set_meta(key, target)
                updated += 1
            store.set_meta(META_SCOPES.format(app=app), json.dumps(sorted({*scopes, *keep})))
            self.syncs += updated
            self.sync_problem = "; ".join(problems)
            self._sync_transient = transient
            for problem in problems:
                log.error("discord: %s", problem)
            return updated

    @staticmethod
    async def _put_commands(
        client: discord.Client, app: int, scope: str, payload: list[dict[str, Any]]
    ) -> None:
        http = client.http
        if scope == "global":
            await http.bulk_upsert_global_commands(app, payload)  # type: ignore[arg-type]
        else:
            await http.bulk_upsert_guild_commands(app, int(scope), payload)  # type: ignore[arg-type]


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []
