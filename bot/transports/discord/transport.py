"""The Discord transport itself: its state, start and stop, typed (prefix) commands, and
sending alerts. Connecting, slash registration and interactions are its other parts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ...commands import Command, UserRef
from ...errors import NotConnected, UsageError
from ...messages import Message
from ..base import Transport
from .commands import SlashCatalog
from .connection import Connection
from .interactions import Interactions
from .library import discord
from .replies import LIMIT, Confirmations, MessageResponder, parts_of
from .slash import SlashSync

if TYPE_CHECKING:
    from ...app import Bot
    from ...config import DiscordConfig

log = logging.getLogger(__name__)

#: seconds ``stop`` lets slash commands in flight finish before closing the connection
STOP_GRACE = 5.0


class DiscordTransport(Connection, SlashSync, Interactions, Transport):
    """Discord through discord.py; the design is in the package docstring.

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
