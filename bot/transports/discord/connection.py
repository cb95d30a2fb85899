"""Logging in, connecting and staying connected: the clients, the supervisor, the close
codes after which reconnecting cannot help, and the process-wide endpoints (``api_base``,
``gateway_url``) discord.py reads from class attributes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import aiohttp
import yarl

from ...backoff import backoff_delays
from ...errors import NotConnected
from .library import discord

if TYPE_CHECKING:
    from ...app import Bot
    from ...config import DiscordConfig
    from .transport import DiscordTransport

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


class Connection:
    """The part of :class:`~.transport.DiscordTransport` that logs in and stays connected."""

    bot: Bot | None
    client: discord.Client | None
    config: DiscordConfig
    state: str
    reason: str
    _stopping: bool
    _token: str
    _delays: Iterator[float]
    _restore: list[tuple[object, str, object]]

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
