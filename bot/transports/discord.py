"""The Discord transport: every command as a prefix command and a slash command, via discord.py.

What it does, and the choices behind it:

- Prefix commands arrive as messages (this needs the privileged message-content intent, asked
  for only when ``prefix_commands`` is on; without it Discord still delivers DMs and messages
  that start by mentioning the bot, and those work too). Slash commands are rendered from the
  same declarations (:mod:`.discord_commands`) and run through the same dispatcher checks.
- Slash commands are registered only when what would be sent changed: a hash per application
  and scope (each configured guild, or global) is kept in the store's ``meta`` table, so a
  restart does not re-register (Discord rate-limits registrations and a global update takes
  time to reach every client). ``sync_commands: false`` leaves registration to someone else.
- Admin commands carry ``default_member_permissions`` (``admin_permissions``, Manage Server by
  default) so non-admins do not see them; server owners can override that in Discord, so the
  dispatcher still checks the configured admins at run time.
- ``start`` never blocks and never raises for a Discord problem: a supervisor task logs in and
  connects in the background and retries with :func:`bot.backoff.backoff_delays`. discord.py
  resumes a dropped session by itself; when a new connection cannot be made, the client is
  closed and the supervisor starts again (re-identifying). A refused token, a refused
  privileged intent or an invalid shard set-up is final: state "failed", with the reason.
- ``api_base`` / ``gateway_url`` point discord.py at REST and gateway proxies. discord.py has no
  per-client setting for these: they are the class attributes ``discord.http.Route.BASE`` and
  ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``, so they are set **process-wide** while
  this transport runs (and restored when it stops). ``api_base`` includes the API version
  path (``https://proxy.example/api/v10``). With ``shard_count`` set, the shards connect to
  ``gateway_url`` too; resumes use the URL Discord's READY names (a gateway proxy rewrites it).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import warnings
from collections.abc import Coroutine, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import aiohttp
import yarl

with warnings.catch_warnings():
    # discord.player imports the deprecated audioop module (voice, which is not used here).
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    import discord.gateway
    import discord.http

from ..backoff import backoff_delays
from ..commands import Command, Param, UserRef
from ..context import Context
from ..errors import NotConnected, UsageError, UserError
from ..messages import Message, Reply
from .base import Transport
from .discord_commands import (
    SlashCatalog,
    SlashRoute,
    build_catalog,
    convert_options,
    focused_option,
    interaction_path,
)
from .discord_replies import LIMIT, Confirmations, InteractionResponder, MessageResponder, parts_of

if TYPE_CHECKING:
    from ..app import Bot
    from ..config import DiscordConfig

log = logging.getLogger(__name__)

#: gateway close codes after which reconnecting cannot help (token, shards, version, intents)
FATAL_CLOSE_CODES = {
    4004: "Discord refused the bot token (check transports.discord.token)",
    4010: "Discord refused the shard id (check shard_ids and shard_count)",
    4011: "Discord requires sharding for this bot (set shard_count)",
    4012: "Discord refused the gateway API version",
    4013: "Discord refused the requested intents",
    4014: (
        "the message content intent is not enabled for this bot in Discord's developer "
        "portal; enable it there or set transports.discord.prefix_commands to false"
    ),
}
#: Discord waits 3 s for an autocomplete answer; leave room for the round trip
AUTOCOMPLETE_TIMEOUT = 2.0
#: seconds ``stop`` lets slash commands in flight finish before closing the connection
STOP_GRACE = 5.0
#: attempts at registering slash commands when Discord fails transiently
SYNC_ATTEMPTS = 5

META_HASH = "discord.slash.{app}.{scope}"
META_SCOPES = "discord.slash_scopes.{app}"


class _Events:
    """discord.py calls ``on_<event>`` methods on the client; they are forwarded here."""

    transport: DiscordTransport

    async def on_ready(self) -> None:
        self.transport._connected("ready")

    async def on_resumed(self) -> None:
        self.transport._connected("resumed")

    async def on_disconnect(self) -> None:
        self.transport._disconnected()

    async def on_message(self, message: discord.Message) -> None:
        self.transport._on_message(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await self.transport._on_interaction(interaction)


class _Client(_Events, discord.Client):
    def __init__(self, transport: DiscordTransport, **options: Any) -> None:
        super().__init__(**options)
        self.transport = transport


class _ShardedClient(_Events, discord.AutoShardedClient):
    def __init__(self, transport: DiscordTransport, **options: Any) -> None:
        super().__init__(**options)
        self.transport = transport

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s between shards (Discord's identify rate); configurable here.
        # In a cluster, gateway processes take turns through the broker instead, one bucket
        # (shard_id % max_concurrency) at a time, so shards of different processes never
        # identify inside one window (bot/cluster/gateway.py).
        config = self.transport.config
        bot = self.transport.bot
        turn = getattr(getattr(bot, "cluster", None), "identify_turn", None)
        if turn is not None:
            await turn(shard_id or 0, config.max_concurrency, config.shard_identify_delay)
        elif not initial:
            await asyncio.sleep(config.shard_identify_delay)


def _intents(config: DiscordConfig) -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = config.prefix_commands
    return intents


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of a connection failure for ``status``."""
    if isinstance(exc, discord.HTTPException):
        text = exc.text or getattr(exc.response, "reason", "") or ""
        return f"HTTP {exc.status}" + (f": {text}" if text else "")
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"the gateway answered HTTP {exc.status}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}" + (
            f" ({exc.os_error.strerror})" if exc.os_error and exc.os_error.strerror else ""
        )
    if isinstance(exc, discord.ConnectionClosed):
        return f"the gateway closed the connection (code {exc.code})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class DiscordTransport(Transport):
    """Discord through discord.py; see the module docstring for the design.

    Test hooks (read-only): ``client`` (the discord.py client), ``catalog`` (the rendered slash
    commands and their routes), ``syncs`` (how many registrations were sent), ``confirms``
    (open confirmation questions).
    """

    platform = "discord"
    max_length = LIMIT

    def __init__(self) -> None:
        super().__init__()
        self.bot: Bot | None = None
        self.client: discord.Client | None = None
        self.catalog = SlashCatalog()
        self.confirms = Confirmations()
        self.syncs = 0
        self.sync_problem = ""
        self._sync_transient = False
        self._sync_wanted = False
        self._watcher: asyncio.Task[None] | None = None
        self._catalog_of: tuple[Command, ...] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._token = ""
        self._delays: Iterator[float] = iter(())
        self._restore: list[tuple[object, str, object]] = []

    @property
    def config(self) -> DiscordConfig:
        assert self.bot is not None
        return self.bot.settings.transports.discord

    # ------------------------------------------------------------------ life cycle

    async def start(self, bot: Bot) -> None:
        self.bot = bot
        self._stopping = False
        config = self.config
        self._token = config.token.get_secret_value().strip() if config.token else ""
        if not self._token:
            self.state, self.reason = "failed", "transports.discord.token is not set"
            log.error("discord: %s", self.reason)
            return
        self._point_library(config)
        self.client = self._make_client(config)
        self._refresh_catalog()
        self._delays = self._new_delays()
        self.state, self.reason = "connecting", ""
        loop = asyncio.get_running_loop()
        self._supervisor = loop.create_task(self._supervise(), name="discord:supervisor")
        self._watcher = loop.create_task(self._watch_commands(), name="discord:commands")

    async def stop(self) -> None:
        self._stopping = True
        self.confirms.cancel_all()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for task in (self._watcher, self._sync_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._watcher = self._sync_task = None
        if self.client is not None and not self.client.is_closed():
            with contextlib.suppress(Exception):
                await self.client.close()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and supervisor is not asyncio.current_task():
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        self._unpoint_library()
        if self.state != "failed":
            self.state, self.reason = "stopped", ""

    def status(self) -> tuple[str, str]:
        if self.state == "up" and self.sync_problem:
            return self.state, self.sync_problem
        return self.state, self.reason

    def _point_library(self, config: DiscordConfig) -> None:
        """Set discord.py's process-wide endpoints; remembered so ``stop`` can restore them."""
        self._restore = []
        if config.api_base:
            self._restore.append((discord.http.Route, "BASE", discord.http.Route.BASE))
            discord.http.Route.BASE = config.api_base.rstrip("/")
        if config.gateway_url:
            ws = discord.gateway.DiscordWebSocket
            self._restore.append((ws, "DEFAULT_GATEWAY", ws.DEFAULT_GATEWAY))
            ws.DEFAULT_GATEWAY = yarl.URL(config.gateway_url)

    def _unpoint_library(self) -> None:
        config = self.config
        ours = {
            "BASE": (config.api_base or "").rstrip("/"),
            "DEFAULT_GATEWAY": yarl.URL(config.gateway_url) if config.gateway_url else None,
        }
        for owner, name, old in reversed(self._restore):
            # Another transport may have pointed it elsewhere since: leave that alone.
            if getattr(owner, name) == ours[name]:
                setattr(owner, name, old)
        self._restore = []

    def _make_client(self, config: DiscordConfig) -> discord.Client:
        options: dict[str, Any] = {
            "intents": _intents(config),
            "guild_ready_timeout": config.guild_ready_timeout,
            "max_messages": None,
            "chunk_guilds_at_startup": False,
            # Bot output quotes user input: never let it ping @everyone or a role.
            "allowed_mentions": discord.AllowedMentions(
                everyone=False, roles=False, users=True, replied_user=False
            ),
        }
        if config.shard_count is not None:
            return _ShardedClient(
                self, shard_count=config.shard_count, shard_ids=config.shard_ids, **options
            )
        return _Client(self, **options)

    def _current_client(self) -> discord.Client:
        if self.client is None:
            raise NotConnected("Discord is not connected.", service="discord")
        return self.client

    def _new_delays(self) -> Iterator[float]:
        config = self.config
        return backoff_delays(base=config.reconnect_delay, cap=config.reconnect_max_delay)

    # ------------------------------------------------------------------ connection

    async def _supervise(self) -> None:
        """Log in and stay connected; every failure is a state and a reason, never a crash.

        discord.py resumes dropped sessions by itself. When it cannot make a new connection it
        closes the client, and a closed discord.py client cannot be started again, so each
        attempt after that gets a fresh client (objects bound to the old one, such as an
        interaction in flight, cannot answer any more; replies to typed commands can).
        """
        config = self.config
        client = self.client
        while not self._stopping:
            if client is None or client.is_closed():
                client = self.client = self._make_client(config)
            phase = "cannot reach Discord's API"
            try:
                await asyncio.wait_for(client.login(self._token), config.connect_timeout)
                phase = "cannot connect to Discord's gateway"
                await client.connect(reconnect=False)
                reason = "the gateway closed the connection"
            except asyncio.CancelledError:
                raise
            except discord.LoginFailure:
                self._fail(FATAL_CLOSE_CODES[4004])
                return
            except discord.PrivilegedIntentsRequired:
                self._fail(FATAL_CLOSE_CODES[4014])
                return
            except discord.ConnectionClosed as exc:
                if exc.code in FATAL_CLOSE_CODES:
                    self._fail(FATAL_CLOSE_CODES[exc.code])
                    return
                reason = f"{phase}: {_describe(exc)}"
            except (
                OSError,
                TimeoutError,
                aiohttp.ClientError,
                discord.HTTPException,
                discord.GatewayNotFound,
            ) as exc:
                reason = f"{phase}: {_describe(exc)}"
            except Exception as exc:
                log.exception("discord: unexpected failure")
                reason = f"{phase}: unexpected error {type(exc).__name__}"
            finally:
                if not client.is_closed():
                    with contextlib.suppress(Exception):
                        await client.close()
            if self._stopping:
                return
            delay = next(self._delays)
            self.state = "reconnecting"
            self.reason = self._scrub(f"{reason}; retrying in {delay:.3g} s")
            log.warning("discord: %s", self.reason)
            await asyncio.sleep(delay)

    def _fail(self, reason: str) -> None:
        self.state, self.reason = "failed", reason
        log.error("discord: %s", reason)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _connected(self, how: str) -> None:
        if self._stopping:
            return
        self.state, self.reason = "up", ""
        self._delays = self._new_delays()
        if how == "ready" and self.config.sync_commands:
            self._schedule_sync()

    def _disconnected(self) -> None:
        if self._stopping or self.state != "up":
            return
        self.state, self.reason = "reconnecting", "lost the gateway connection; resuming"

    # ------------------------------------------------------------------ slash registration

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

    # ------------------------------------------------------------------ incoming

    def _on_message(self, m: discord.Message) -> None:
        """A typed message: a prefix command, or the answer to a question a command asked.

        Bots (this one's own echo included) are ignored; a message that starts by mentioning
        the bot counts as prefixed, because Discord delivers those even without the message
        content intent. Admin rights come from the configured ids only (``platform_admin``
        stays false): a server role is not a bot admin.
        """
        if self.bot is None or self._stopping or m.author.bot or m.webhook_id is not None:
            return
        text = m.content or ""
        me = self.client.user if self.client else None
        if me is not None:
            for mention in (f"<@{me.id}>", f"<@!{me.id}>"):
                if text.startswith(mention):
                    text = self.bot.settings.bot.prefix + text[len(mention) :].lstrip()
                    break
        if not text.strip():
            return
        mentions: dict[str, UserRef] = {}
        for user in m.mentions:
            ref = UserRef("discord", str(user.id), user.display_name)
            mentions[f"<@{user.id}>"] = mentions[f"<@!{user.id}>"] = ref
        config = self.config
        message = Message(
            platform=self.platform,
            chat_id=str(m.channel.id),
            user_id=str(m.author.id),
            user_name=m.author.display_name,
            text=text,
            responder=MessageResponder(
                self._current_client, m, self.confirms, config.confirm_timeout
            ),
            chat_kind="private" if m.guild is None else "group",
            mentions=mentions,
            extra=self._extra(m.author, m.guild.id if m.guild else None, str(m.id)),
            id=f"discord:{m.id}",  # a snowflake: unique, the same on every redelivery
        )
        self.bot.dispatcher.submit(message)

    @staticmethod
    def _extra(
        user: discord.User | discord.Member, guild_id: int | None, message_id: str | None
    ) -> dict[str, Any]:
        """Discord details a plugin may want (roles for its own checks), as plain strings."""
        roles = getattr(user, "roles", None) or []
        return {
            "guild_id": str(guild_id) if guild_id else None,
            "message_id": message_id,
            "roles": [str(r.id) for r in roles if not r.is_default()],
            "role_names": [r.name for r in roles if not r.is_default()],
        }

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
        try:  # suggestions can leak what the command manages: only for who may run it here
            bot.access.check(bot.access.caller_of(message), cmd, message.chat_id)
        except UserError:
            return []
        if param.autocomplete is not None:
            ctx = bot.dispatcher.context_for(message, cmd)
            values = await _call_autocomplete(param, ctx, current)
        else:
            low = current.lower()
            values = [c for c in param.choices if low in c.lower()]
        return [_choice(param, v) for v in values[:25] if v is not None]

    # ------------------------------------------------------------------ outgoing

    async def send(self, chat_id: str, text: str) -> None:
        """Post alerts to a channel (or DM channel) by id, over REST: no cache needed."""
        client = self.client
        if client is None or client.application_id is None or self._stopping:
            raise NotConnected(
                f"Discord is not connected ({self.reason or self.state}).", service="discord"
            )
        try:
            channel_id = int(chat_id)
        except ValueError:
            raise UsageError(f"{chat_id!r} is not a Discord channel id.") from None
        channel = client.get_partial_messageable(channel_id)
        for part in parts_of(text):
            await channel.send(part)


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


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
