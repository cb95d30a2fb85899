"""A local fake of Discord's REST API and gateway, so tests can run the real discord.py.

Why a fake and not mocks: the Discord transport is glue around discord.py, and the bugs that
matter live in that glue's use of the real library (intents, interaction acknowledgement,
ephemeral flags, command registration). So the library runs unmodified and only its two
endpoints are pointed at 127.0.0.1.

Pointing discord.py at the fake
-------------------------------
discord.py 2.x has no per-client option for its endpoints; both are class attributes read at
request/connection time, so they are set process-wide before ``login`` and restored after
``close`` (:func:`discord_py_pointed_at` does exactly that, as a context manager):

* REST → ``discord.http.Route.BASE = fake.api_base``  (``http://127.0.0.1:PORT/api/v10``).
  Every REST call, including interaction callbacks and webhook follow-ups (``discord.webhook``
  builds its URLs from the same ``Route``), starts with it. This is the transport's
  ``api_base`` config key.
* Gateway → ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)``
  (``ws://127.0.0.1:GPORT/``). ``Client`` and ``commands.Bot`` connect there directly;
  ``AutoShardedClient`` without ``shard_count`` reads the same URL from ``GET /gateway/bot``;
  resumes use READY's ``resume_gateway_url``, again the same. This is ``gateway_url``.

Two discord.py delays worth knowing in tests: ``on_ready`` fires ``guild_ready_timeout``
seconds (default 2) after the last GUILD_CREATE, so pass ``guild_ready_timeout=0.1``; and
``AutoShardedClient`` sleeps 5 s between shard IDENTIFYs in ``before_identify_hook``, so
override that hook to return at once.

The gateway listens on its own port so that it can really refuse connections
(:meth:`FakeDiscord.set_gateway_fault`) while REST keeps answering.

What is faithful: HELLO / IDENTIFY / heartbeat ACK / READY / GUILD_CREATE / RESUME / member
chunks, zlib-stream transport compression, close codes 4002/4003/4004/4005/4010/4012/4013/
4014, shard routing of guild events ((guild_id >> 22) % shard_count), intents (guild events
need GUILDS, messages need GUILD_MESSAGES / DIRECT_MESSAGES, and without the privileged
MESSAGE_CONTENT intent message content arrives empty unless the bot is mentioned), the echo of
the bot's own messages, interaction acknowledgement rules (once only, within the type's allowed
responses), message and command validation errors with Discord's JSON error codes, and sane
rate-limit headers. Not modelled: ETF encoding, zstd, voice, presences, threads, files beyond
recording their names, MESSAGE_UPDATE/DELETE echoes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import logging
import re
import secrets
import socket
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from aiohttp import web

from bot.simulation import Simulator

log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1_420_070_400_000
DEFAULT_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMA.GfAkEs.fake-discord-token-for-tests-only"

# Gateway opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE, OP_VOICE = 0, 1, 2, 3, 4
OP_RESUME, OP_RECONNECT, OP_REQUEST_MEMBERS, OP_INVALID_SESSION = 6, 7, 8, 9
OP_HELLO, OP_HEARTBEAT_ACK = 10, 11

# Intents the fake acts on.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Permission bits used by the sample data.
PERM_ADMINISTRATOR = 1 << 3
PERM_MANAGE_GUILD = 1 << 5
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_PERMISSIONS = (
    (1 << 0)  # create invite
    | (1 << 6)  # add reactions
    | (1 << 10)  # view channel
    | (1 << 11)  # send messages
    | (1 << 14)  # embed links
    | (1 << 15)  # attach files
    | (1 << 16)  # read message history
    | (1 << 26)  # change nickname
    | (1 << 31)  # use application commands
)

# Interaction types and callback types.
INTERACTION_COMMAND, INTERACTION_COMPONENT, INTERACTION_AUTOCOMPLETE = 2, 3, 4
INTERACTION_MODAL_SUBMIT = 5
CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE = 4, 5
CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE_MESSAGE = 6, 7
CALLBACK_AUTOCOMPLETE, CALLBACK_MODAL = 8, 9
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7

# Application command option types.
OPT_SUB_COMMAND, OPT_SUB_GROUP, OPT_STRING, OPT_INTEGER, OPT_BOOLEAN = 1, 2, 3, 4, 5
OPT_USER, OPT_CHANNEL, OPT_ROLE, OPT_MENTIONABLE, OPT_NUMBER = 6, 7, 8, 9, 10

CHANNEL_GUILD_TEXT, CHANNEL_DM = 0, 1
_SAFE_TIMEOUT = 5.0


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class _Snowflakes:
    """Time-based ids, so discord.py's ``created_at`` looks sane and ids always increase."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(now, self._last + 1)
        return self._last


_ids = _Snowflakes()


def new_snowflake() -> int:
    """A fresh id in Discord's format; tests use it to make users or channels on the fly."""
    return _ids.next()


# --------------------------------------------------------------------------------------------
# The world the fake serves: guilds, channels, roles, users.
# --------------------------------------------------------------------------------------------


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {
                "primary_color": self.color,
                "secondary_color": None,
                "tertiary_color": None,
            },
            "hoist": False,
            "managed": False,
            "mentionable": True,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class FakeUser:
    """A Discord user; ``roles`` are the role ids it holds in the guild it is a member of."""

    id: int
    name: str
    roles: list[int] = field(default_factory=list)
    bot: bool = False
    global_name: str | None = None
    joined_at: str = field(default_factory=_now_iso)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }

    def member_api(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "nick": None,
            "avatar": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.to_api()
        return data


@dataclass
class FakeChannel:
    id: int
    name: str
    type: int = CHANNEL_GUILD_TEXT
    position: int = 0
    topic: str | None = None

    def to_api(self, guild_id: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "name": self.name,
            "position": self.position,
            "topic": self.topic,
            "nsfw": False,
            "permission_overwrites": [],
            "parent_id": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        return data


@dataclass
class FakeGuild:
    """A guild as the gateway announces it; the @everyone role's id is the guild's id."""

    id: int
    name: str
    channels: list[FakeChannel] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list)
    members: list[FakeUser] = field(default_factory=list)
    owner_id: int | None = None

    def __post_init__(self) -> None:
        if not any(r.id == self.id for r in self.roles):
            self.roles.insert(0, FakeRole(self.id, "@everyone", EVERYONE_PERMISSIONS))

    @classmethod
    def sample(
        cls, guild_id: int = 1_100_000_000_000_000_000, name: str = "Test Guild"
    ) -> FakeGuild:
        """A small guild with #general and #alerts, an Admin and a Member role, alice and bob.

        Ids are derived from ``guild_id`` so two samples with different ids never collide.
        """
        admin = FakeRole(guild_id + 10, "Admin", PERM_ADMINISTRATOR, position=2, color=0xE74C3C)
        member = FakeRole(guild_id + 11, "Member", 0, position=1)
        alice = FakeUser(guild_id + 100, "alice", roles=[admin.id, member.id])
        bob = FakeUser(guild_id + 101, "bob", roles=[member.id])
        return cls(
            id=guild_id,
            name=name,
            channels=[
                FakeChannel(guild_id + 1, "general", position=0),
                FakeChannel(guild_id + 2, "alerts", position=1),
            ],
            roles=[admin, member],
            members=[alice, bob],
            owner_id=alice.id,
        )

    def channel(self, name_or_id: str | int) -> FakeChannel:
        for c in self.channels:
            if c.name == name_or_id or c.id == name_or_id:
                return c
        raise KeyError(f"guild {self.name!r} has no channel {name_or_id!r}")

    def member(self, name_or_id: str | int) -> FakeUser:
        for m in self.members:
            if m.name == name_or_id or m.id == name_or_id:
                return m
        raise KeyError(f"guild {self.name!r} has no member {name_or_id!r}")

    def role(self, name_or_id: str | int) -> FakeRole:
        for r in self.roles:
            if r.name == name_or_id or r.id == name_or_id:
                return r
        raise KeyError(f"guild {self.name!r} has no role {name_or_id!r}")

    def permissions_of(self, user: FakeUser) -> int:
        """Guild-level permissions as Discord computes them (no channel overwrites)."""
        if user.id == self.owner_id:
            return ALL_PERMISSIONS
        perms = self.role(self.id).permissions
        for role in self.roles:
            if role.id in user.roles:
                perms |= role.permissions
        return ALL_PERMISSIONS if perms & PERM_ADMINISTRATOR else perms


# --------------------------------------------------------------------------------------------
# What the bot sent, as the fake recorded it.
# --------------------------------------------------------------------------------------------

SentKind = Literal[
    "message",  # POST /channels/{id}/messages
    "edit",  # PATCH /channels/{id}/messages/{id}
    "delete",  # DELETE /channels/{id}/messages/{id}
    "callback",  # POST /interactions/{id}/{token}/callback
    "followup",  # POST /webhooks/{app}/{token}
    "edit_original",  # PATCH /webhooks/{app}/{token}/messages/@original
    "edit_followup",  # PATCH /webhooks/{app}/{token}/messages/{id}
    "delete_original",  # DELETE /webhooks/{app}/{token}/messages/@original
    "commands",  # PUT /applications/{app}/commands or .../guilds/{guild}/commands
    "reaction",  # PUT /channels/{id}/messages/{id}/reactions/{emoji}/@me
]


@dataclass(frozen=True)
class Sent:
    """One request from the bot that changed something, with its JSON body as received."""

    seq: int
    kind: SentKind
    payload: Any
    channel_id: int | None = None
    message_id: int | None = None
    interaction_id: int | None = None
    guild_id: int | None = None
    files: tuple[str, ...] = ()

    @property
    def data(self) -> dict[str, Any]:
        """The message part: ``payload['data']`` for callbacks, the payload itself otherwise."""
        if self.kind == "callback":
            return self.payload.get("data") or {}
        return self.payload if isinstance(self.payload, dict) else {}

    @property
    def content(self) -> str:
        return self.data.get("content") or ""

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def callback_type(self) -> int | None:
        return self.payload.get("type") if self.kind == "callback" else None

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.data.get("embeds") or []

    @property
    def components(self) -> list[dict[str, Any]]:
        return self.data.get("components") or []

    @property
    def custom_ids(self) -> list[str]:
        """Every component custom_id in the message, flattened from its action rows."""
        return [c["custom_id"] for c in _walk_components(self.components) if "custom_id" in c]


def _walk_components(components: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for comp in components:
        yield comp
        yield from _walk_components(comp.get("components") or [])


@dataclass(frozen=True)
class InjectedInteraction:
    """What a test gets back from an interaction injection, to wait for the bot's answer."""

    id: int
    token: str
    type: int
    payload: dict[str, Any]


@dataclass
class GatewaySession:
    """One identified gateway session (one per shard); read-only for tests."""

    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    properties: dict[str, Any]
    connected: bool = True
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    #: time.monotonic() of the IDENTIFY (spacing across processes is checked with it)
    identified_at: float = field(default_factory=time.monotonic)

    def has(self, intent: int) -> bool:
        return bool(self.intents & intent)


@dataclass
class _Interaction:
    id: int
    token: str
    type: int
    channel_id: int | None
    guild_id: int | None
    user: FakeUser
    source_message_id: int | None = None
    acked: bool = False
    callback_type: int | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)


class _ApiError(Exception):
    """A refusal in Discord's JSON error shape; the middleware renders it."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def _form_error(path: str, code: str, message: str) -> _ApiError:
    """Discord's 50035 "Invalid Form Body" with the error nested under its dotted path."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return _ApiError(400, 50035, "Invalid Form Body", errors)


class _Conn:
    """One gateway websocket; compression state and send order live here."""

    def __init__(self, ws: web.WebSocketResponse, compress: bool) -> None:
        self.ws = ws
        self.compressor = zlib.compressobj() if compress else None
        self.lock = asyncio.Lock()
        self.session: GatewaySession | None = None

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        async with self.lock:
            if self.ws.closed:
                return
            # A frame lost to a closing socket is still in the session's log for RESUME.
            with contextlib.suppress(ConnectionResetError):
                if self.compressor is None:
                    await self.ws.send_str(text)
                else:
                    data = self.compressor.compress(text.encode()) + self.compressor.flush(
                        zlib.Z_SYNC_FLUSH
                    )
                    await self.ws.send_bytes(data)


GatewayFault = Literal["refuse", "error"] | None


class FakeDiscord(Simulator):
    """Discord's REST API and gateway for one bot application, on 127.0.0.1.

    Test hooks: ``inject_message``, ``inject_command``, ``inject_autocomplete``,
    ``inject_component``, ``inject_interaction`` (raw); read back ``sent`` and
    ``commands(guild_id)``; wait with ``wait_for_message``, ``wait_for_callback``,
    ``wait_for_followup``, ``wait_for_commands``, ``wait_for_sessions`` or ``wait_for``;
    break things with ``set_gateway_fault``, ``disconnect_sessions`` and ``rate_limit_next``.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        guilds: Iterable[FakeGuild] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        gateway_port: int = 0,
        application_id: int = 1_000_000_000_000_000_001,
        bot_name: str = "FakeBot",
        recommended_shards: int = 1,
        heartbeat_interval_ms: int = 41_250,
        allowed_privileged_intents: int = PRIVILEGED_INTENTS,
        echo_own_messages: bool = True,
    ) -> None:
        self.token = token
        self.guilds: list[FakeGuild] = list(guilds)
        self.host = host
        self._port = port
        self._gateway_port = gateway_port
        self.application_id = application_id
        self.bot_user = FakeUser(application_id, bot_name, bot=True)
        self.recommended_shards = recommended_shards
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.allowed_privileged_intents = allowed_privileged_intents
        self.echo_own_messages = echo_own_messages

        self.sent: list[Sent] = []
        self.identifies: list[dict[str, Any]] = []  # IDENTIFY payloads without the token
        self.unhandled: list[str] = []  # "METHOD /path" of REST calls the fake does not know
        self.rate_limited: list[str] = []  # "METHOD /path" answered 429 by rate_limit_next
        self.errors: list[str] = []  # bugs in the fake itself; the fixtures assert it is empty

        self._sessions: dict[str, GatewaySession] = {}
        self._conns: set[_Conn] = set()
        self._dm_channels: dict[int, FakeChannel] = {}  # channel id -> DM channel
        self._dm_users: dict[int, FakeUser] = {}  # channel id -> the other user
        self._messages: dict[int, dict[str, Any]] = {}
        self._interactions: dict[int, _Interaction] = {}
        self._by_token: dict[str, _Interaction] = {}
        self._global_commands: dict[str, dict[str, Any]] = {}
        self._guild_commands: dict[int, dict[str, dict[str, Any]]] = {}
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        self._taken: set[int] = set()
        self._changed = asyncio.Condition()
        self._seq = itertools.count(1)
        self._rate_limits: list[tuple[str | None, float]] = []
        self._gateway_fault: GatewayFault = None

        self._rest_runner: web.AppRunner | None = None
        self._gw_runner: web.AppRunner | None = None
        self._gw_site: web.SockSite | None = None

    # ---------------------------------------------------------------- lifecycle and addresses

    @property
    def api_base(self) -> str:
        """The value for ``discord.http.Route.BASE`` (and the transport's ``api_base``)."""
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (the transport's ``gateway_url``)."""
        return f"ws://{self.host}:{self._gateway_port}/"

    async def start(self) -> None:
        rest = web.Application(middlewares=[self._rest_middleware])
        self._add_rest_routes(rest)
        self._rest_runner = web.AppRunner(rest, access_log=None, handle_signals=False)
        await self._rest_runner.setup()
        sock = _bind(self.host, self._port)
        self._port = sock.getsockname()[1]
        await web.SockSite(self._rest_runner, sock).start()
        self.url = f"http://{self.host}:{self._port}"

        gateway = web.Application()
        gateway.router.add_get("/", self._gateway)
        self._gw_runner = web.AppRunner(gateway, access_log=None, handle_signals=False)
        await self._gw_runner.setup()
        await self._open_gateway_site()

    async def stop(self) -> None:
        for conn in list(self._conns):
            await conn.ws.close(code=1001, message=b"server shutting down")
        for runner in (self._gw_runner, self._rest_runner):
            if runner is not None:
                await runner.cleanup()
        self._gw_runner = self._rest_runner = self._gw_site = None

    async def _open_gateway_site(self) -> None:
        assert self._gw_runner is not None
        sock = _bind(self.host, self._gateway_port)
        self._gateway_port = sock.getsockname()[1]
        self._gw_site = web.SockSite(self._gw_runner, sock)
        await self._gw_site.start()

    async def set_gateway_fault(self, fault: GatewayFault) -> None:
        """Break the gateway while REST keeps working; ``None`` mends it on the same port.

        ``"refuse"`` closes the gateway's listening socket (connections are refused);
        ``"error"`` answers the websocket upgrade with HTTP 503. Either way, live sessions are
        dropped with close code 4000 so the client notices at once.
        """
        if fault == self._gateway_fault:
            return
        if fault is not None:
            await self.disconnect_sessions(4000)
        if fault == "refuse" and self._gw_site is not None:
            await self._gw_site.stop()
            self._gw_site = None
        elif self._gw_site is None and fault != "refuse":
            await self._open_gateway_site()
        self._gateway_fault = fault

    async def disconnect_sessions(self, code: int = 4000) -> None:
        """Close every live gateway connection with ``code``; sessions stay resumable."""
        for conn in list(self._conns):
            await conn.ws.close(code=code, message=b"closed by test")

    def rate_limit_next(
        self, count: int = 1, *, retry_after: float = 0.2, path_contains: str | None = None
    ) -> None:
        """Answer the next ``count`` REST calls (whose path contains ``path_contains``) with 429."""
        self._rate_limits.extend([(path_contains, retry_after)] * count)

    @property
    def sessions(self) -> list[GatewaySession]:
        """Live, identified gateway sessions."""
        return [s for s in self._sessions.values() if s.connected]

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The registered commands (global when ``guild_id`` is None), as Discord returns them."""
        table = self._global_commands if guild_id is None else self._guild_commands.get(guild_id)
        return list((table or {}).values())

    def guild(self, guild_id: int) -> FakeGuild:
        for g in self.guilds:
            if g.id == guild_id:
                return g
        raise KeyError(f"no guild {guild_id}")

    def message(self, message_id: int) -> dict[str, Any]:
        """A message as the fake stores it (bot's or injected), with every edit applied."""
        return self._messages[message_id]

    # ---------------------------------------------------------------- waiting

    async def _record(self, kind: SentKind, payload: Any, **ids: Any) -> Sent:
        item = Sent(seq=next(self._seq), kind=kind, payload=payload, **ids)
        self.sent.append(item)
        await self._notify()
        return item

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(
        self,
        predicate: Callable[[Sent], bool],
        *,
        timeout: float = _SAFE_TIMEOUT,
        what: str = "a matching request",
    ) -> Sent:
        """The oldest not-yet-returned record matching ``predicate``, waiting if needed.

        Each record is handed out once, so "inject, then wait" never returns an older reply.
        """

        def pick() -> Sent | None:
            for item in self.sent:
                if item.seq not in self._taken and predicate(item):
                    return item
            return None

        async def until_found() -> Sent:
            async with self._changed:
                while (found := pick()) is None:
                    await self._changed.wait()
                return found

        try:
            found = await asyncio.wait_for(until_found(), timeout)
        except TimeoutError:
            seen = [f"{s.kind} ch={s.channel_id} {s.content[:60]!r}" for s in self.sent[-10:]]
            raise TimeoutError(
                f"no {what} within {timeout} s; bot sent (last 10): {seen}"
            ) from None
        self._taken.add(found.seq)
        return found

    async def wait_for_message(
        self,
        channel_id: int,
        *,
        timeout: float = _SAFE_TIMEOUT,
        predicate: Callable[[Sent], bool] | None = None,
    ) -> Sent:
        """The bot's next message posted to ``channel_id`` (POST /channels/{id}/messages)."""
        return await self.wait_for(
            lambda s: (
                s.kind == "message"
                and s.channel_id == channel_id
                and (predicate is None or predicate(s))
            ),
            timeout=timeout,
            what=f"message in channel {channel_id}",
        )

    async def wait_for_callback(
        self, interaction: InjectedInteraction | int, *, timeout: float = _SAFE_TIMEOUT
    ) -> Sent:
        """The bot's response to an interaction (the /callback POST)."""
        iid = interaction if isinstance(interaction, int) else interaction.id
        return await self.wait_for(
            lambda s: s.kind == "callback" and s.interaction_id == iid,
            timeout=timeout,
            what=f"callback for interaction {iid}",
        )

    async def wait_for_followup(
        self,
        interaction: InjectedInteraction | int,
        *,
        kinds: tuple[SentKind, ...] = ("followup", "edit_original"),
        timeout: float = _SAFE_TIMEOUT,
    ) -> Sent:
        """The bot's next follow-up or original-response edit for an interaction."""
        iid = interaction if isinstance(interaction, int) else interaction.id
        return await self.wait_for(
            lambda s: s.kind in kinds and s.interaction_id == iid,
            timeout=timeout,
            what=f"{'/'.join(kinds)} for interaction {iid}",
        )

    async def wait_for_commands(
        self, guild_id: int | None = None, *, timeout: float = _SAFE_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Wait for the next command registration (PUT) for a guild or globally."""
        item = await self.wait_for(
            lambda s: s.kind == "commands" and s.guild_id == guild_id,
            timeout=timeout,
            what=f"command registration for guild {guild_id}",
        )
        return item.payload

    async def wait_for_sessions(
        self, count: int = 1, *, timeout: float = _SAFE_TIMEOUT
    ) -> list[GatewaySession]:
        """Wait until ``count`` sessions are live and have been sent READY."""

        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.sessions) >= count)

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{len(self.sessions)} of {count} gateway sessions within {timeout} s"
            ) from None
        return self.sessions

    # ---------------------------------------------------------------- test-side injection

    async def inject_message(
        self,
        channel_id: int,
        content: str,
        *,
        author: FakeUser,
        guild_id: int | None = None,
    ) -> dict[str, Any]:
        """Deliver a MESSAGE_CREATE from ``author``; returns the full message payload.

        ``guild_id`` defaults to the guild owning ``channel_id``; a DM channel made with
        :meth:`dm_channel` has none. Mentions ``<@id>`` / ``<@&id>`` fill ``mentions`` and
        ``mention_roles`` the way Discord does. As on Discord, a session without the
        GUILD_MESSAGES (or DIRECT_MESSAGES) intent is not sent the event at all, and one
        without MESSAGE_CONTENT gets it with empty content unless the bot is mentioned.
        """
        guild = self._guild_of_channel(channel_id) if guild_id is None else self.guild(guild_id)
        if guild is None and channel_id not in self._dm_channels:
            raise KeyError(f"unknown channel {channel_id}")
        msg = self._new_message(channel_id, guild, author, {"content": content})
        if guild is not None:
            msg["member"] = author.member_api(with_user=False)
        self._messages[int(msg["id"])] = msg
        await self._dispatch_message(guild, msg, author_is_bot=False)
        return msg

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The DM channel between the bot and ``user`` (made on first use, like Discord)."""
        for cid, other in self._dm_users.items():
            if other.id == user.id:
                return self._dm_channels[cid]
        channel = FakeChannel(new_snowflake(), "", CHANNEL_DM)
        self._dm_channels[channel.id] = channel
        self._dm_users[channel.id] = user
        return channel

    async def inject_command(
        self,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser,
        channel_id: int,
        permissions: int | None = None,
        force: bool = False,
    ) -> InjectedInteraction:
        """An application-command interaction (type 2) as Discord's client would send it.

        ``command`` is the full path as typed, e.g. ``"admin points add"``. The command must
        be registered (globally or for the channel's guild); ``options`` maps option names to
        Python values, which are typed from the registered schema: a FakeUser for a USER option
        (its data goes to ``resolved``), ints for INTEGER, and so on. Values the Discord client
        would not let through (unknown option, missing required, not one of the choices) raise
        ValueError here. ``permissions`` overrides the member's computed permissions.

        Like Discord's client, a member lacking the command's ``default_member_permissions``
        (or a DM for a guild-only command) raises PermissionError; ``force=True`` delivers it
        anyway, as when a server admin has granted the command to that member.
        """
        guild = self._guild_of_channel(channel_id)
        schema, path = self._find_command(command, guild)
        if not force:
            self._check_visible(schema, user, guild, permissions)
        data, resolved = self._typed_options(schema, path, options or {}, guild, focused=None)
        return await self._inject_app_command(
            INTERACTION_COMMAND, schema, data, resolved, user, channel_id, guild, permissions
        )

    async def inject_autocomplete(
        self,
        command: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        user: FakeUser,
        channel_id: int,
    ) -> InjectedInteraction:
        """An autocomplete interaction (type 4): the ``focused`` option carries partial text."""
        guild = self._guild_of_channel(channel_id)
        schema, path = self._find_command(command, guild)
        data, resolved = self._typed_options(schema, path, options, guild, focused=focused)
        return await self._inject_app_command(
            INTERACTION_AUTOCOMPLETE, schema, data, resolved, user, channel_id, guild, None
        )

    async def inject_component(
        self,
        message_id: int,
        custom_id: str,
        *,
        user: FakeUser,
        values: list[str] | None = None,
    ) -> InjectedInteraction:
        """A component interaction (type 3): ``user`` clicks ``custom_id`` on the bot's message.

        The component must exist on that message; a select menu needs ``values``.
        """
        message = self._messages.get(message_id)
        if message is None:
            raise KeyError(f"unknown message {message_id}")
        comps = {c.get("custom_id"): c for c in _walk_components(message.get("components") or [])}
        if custom_id not in comps:
            raise ValueError(f"message {message_id} has no component {custom_id!r}: {list(comps)}")
        comp_type = comps[custom_id].get("type", 2)
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": comp_type}
        if comp_type != 2:
            data["values"] = list(values or [])
        channel_id = int(message["channel_id"])
        return await self.inject_interaction(
            INTERACTION_COMPONENT,
            data,
            user=user,
            channel_id=channel_id,
            message=message,
        )

    async def inject_interaction(
        self,
        type: int,
        data: dict[str, Any],
        *,
        user: FakeUser,
        channel_id: int,
        message: dict[str, Any] | None = None,
        permissions: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> InjectedInteraction:
        """Deliver any INTERACTION_CREATE with ``data`` as given (no schema checks).

        The helpers above build on this; use it directly for odd payloads a tolerant transport
        should survive. ``extra`` keys are merged into the top-level payload last.
        """
        guild = self._guild_of_channel(channel_id)
        iid = new_snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": type,
            "data": data,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": str(ALL_PERMISSIONS),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)}
            if guild
            else {"1": str(user.id)},
            "context": 0 if guild else 1,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if guild is not None:
            channel = guild.channel(channel_id)
            perms = guild.permissions_of(user) if permissions is None else permissions
            member = user.member_api()
            member["permissions"] = str(perms)
            payload.update(
                guild_id=str(guild.id),
                guild_locale="en-US",
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                channel_id=str(channel_id),
                channel=channel.to_api(guild.id) | {"permissions": str(perms)},
                member=member,
            )
        else:
            dm = self._dm_channels.get(channel_id)
            if dm is None:
                raise KeyError(f"unknown channel {channel_id}")
            payload.update(
                channel_id=str(channel_id),
                channel=dm.to_api() | {"recipients": [user.to_api()]},
                user=user.to_api(),
            )
        if message is not None:
            payload["message"] = message
        payload.update(extra or {})
        state = _Interaction(
            iid,
            token,
            type,
            channel_id,
            guild.id if guild else None,
            user,
            source_message_id=int(message["id"]) if message else None,
        )
        self._interactions[iid] = state
        self._by_token[token] = state
        session = self._session_for(guild.id if guild else None)
        await self._dispatch(session, "INTERACTION_CREATE", payload)
        return InjectedInteraction(iid, token, type, payload)

    # ---------------------------------------------------------------- injection helpers

    def _guild_of_channel(self, channel_id: int) -> FakeGuild | None:
        for guild in self.guilds:
            if any(c.id == channel_id for c in guild.channels):
                return guild
        if channel_id in self._dm_channels:
            return None
        raise KeyError(f"unknown channel {channel_id}")

    def _find_command(
        self, command: str, guild: FakeGuild | None
    ) -> tuple[dict[str, Any], list[str]]:
        path = command.strip().lstrip("/").split()
        if not path:
            raise ValueError("empty command path")
        tables = [self._guild_commands.get(guild.id, {})] if guild else []
        tables.append(self._global_commands)
        for table in tables:
            schema = table.get(path[0])
            if schema is not None and schema.get("type", 1) == 1:
                return schema, path
        raise LookupError(f"/{path[0]} is not registered (globally or in that guild)")

    @staticmethod
    def _check_visible(
        schema: dict[str, Any], user: FakeUser, guild: FakeGuild | None, permissions: int | None
    ) -> None:
        name = schema["name"]
        if guild is None:
            contexts = schema.get("contexts")
            if schema.get("dm_permission") is False or (contexts is not None and 1 not in contexts):
                raise PermissionError(f"/{name} is not available in DMs")
            return
        required = schema.get("default_member_permissions")
        if required is None:
            return
        has = guild.permissions_of(user) if permissions is None else permissions
        if int(required) == 0 or has & int(required) != int(required):
            raise PermissionError(
                f"{user.name} cannot see /{name}: it needs permissions {required}, has {has}"
            )

    def _typed_options(
        self,
        schema: dict[str, Any],
        path: list[str],
        values: Mapping[str, Any],
        guild: FakeGuild | None,
        *,
        focused: str | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        resolved: dict[str, dict[str, Any]] = {}
        level = schema.get("options") or []
        nest: list[dict[str, Any]] = []
        for name in path[1:]:
            sub = next((o for o in level if o["name"] == name and o["type"] in (1, 2)), None)
            if sub is None:
                raise ValueError(f"/{' '.join(path)}: no subcommand or group {name!r}")
            nest.append({"name": name, "type": sub["type"]})
            level = sub.get("options") or []
        if any(o["type"] in (1, 2) for o in level):
            raise ValueError(f"/{' '.join(path)} needs a subcommand")
        known = {o["name"]: o for o in level}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"/{' '.join(path)}: unknown options {sorted(unknown)}")
        leaf: list[dict[str, Any]] = []
        for spec in level:
            name = spec["name"]
            if name not in values:
                if spec.get("required") and focused is None:
                    raise ValueError(f"/{' '.join(path)}: option {name!r} is required")
                continue
            if name == focused:
                leaf.append({"name": name, "type": spec["type"], "value": str(values[name])})
                leaf[-1]["focused"] = True
                continue
            leaf.append(self._typed_value(spec, values[name], guild, resolved))
        options: list[dict[str, Any]] = leaf
        for sub in reversed(nest):
            options = [{**sub, "options": options}]
        data: dict[str, Any] = {
            "id": schema["id"],
            "name": schema["name"],
            "type": schema.get("type", 1),
            "options": options,
        }
        if schema.get("guild_id"):
            data["guild_id"] = schema["guild_id"]
        return data, resolved

    def _typed_value(
        self,
        spec: dict[str, Any],
        value: Any,
        guild: FakeGuild | None,
        resolved: dict[str, dict[str, Any]],
    ) -> dict[str, Any]:
        kind, name = spec["type"], spec["name"]
        out: Any
        if kind == OPT_STRING:
            out = str(value)
            if not spec.get("min_length", 0) <= len(out) <= spec.get("max_length", 6000):
                raise ValueError(f"option {name!r}: length out of range")
        elif kind in (OPT_INTEGER, OPT_NUMBER):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"option {name!r} needs a number, got {value!r}")
            out = int(value) if kind == OPT_INTEGER else float(value)
            if kind == OPT_INTEGER and out != value:
                raise ValueError(f"option {name!r} needs an integer, got {value!r}")
            low, high = spec.get("min_value"), spec.get("max_value")
            if (low is not None and out < low) or (high is not None and out > high):
                raise ValueError(f"option {name!r}: {out} outside [{low}, {high}]")
        elif kind == OPT_BOOLEAN:
            out = bool(value)
        elif kind in (OPT_USER, OPT_MENTIONABLE) and isinstance(value, FakeUser):
            out = str(value.id)
            resolved.setdefault("users", {})[out] = value.to_api()
            if guild is not None and any(m.id == value.id for m in guild.members):
                member = value.member_api(with_user=False)
                member["permissions"] = str(guild.permissions_of(value))
                resolved.setdefault("members", {})[out] = member
        elif kind in (OPT_ROLE, OPT_MENTIONABLE) and isinstance(value, FakeRole):
            out = str(value.id)
            resolved.setdefault("roles", {})[out] = value.to_api()
        elif kind == OPT_CHANNEL and isinstance(value, FakeChannel):
            out = str(value.id)
            gid = guild.id if guild else None
            resolved.setdefault("channels", {})[out] = value.to_api(gid) | {
                "permissions": str(ALL_PERMISSIONS)
            }
        else:
            raise ValueError(f"option {name!r} (type {kind}) cannot take {value!r}")
        choices = spec.get("choices")
        if choices and out not in [c["value"] for c in choices]:
            raise ValueError(f"option {name!r}: {out!r} is not one of the choices")
        return {"name": name, "type": kind, "value": out}

    async def _inject_app_command(
        self,
        type: int,
        schema: dict[str, Any],
        data: dict[str, Any],
        resolved: dict[str, Any],
        user: FakeUser,
        channel_id: int,
        guild: FakeGuild | None,
        permissions: int | None,
    ) -> InjectedInteraction:
        if resolved:
            data["resolved"] = resolved
        return await self.inject_interaction(
            type, data, user=user, channel_id=channel_id, permissions=permissions
        )

    def _new_message(
        self,
        channel_id: int,
        guild: FakeGuild | None,
        author: FakeUser,
        body: Mapping[str, Any],
        *,
        flags: int = 0,
        webhook: bool = False,
    ) -> dict[str, Any]:
        content = body.get("content") or ""
        mentions = []
        for uid in re.findall(r"<@!?(\d+)>", content):
            user = self._find_user(int(uid), guild)
            if user is not None:
                mention = user.to_api()
                if guild is not None:
                    mention["member"] = user.member_api(with_user=False)
                mentions.append(mention)
        msg: dict[str, Any] = {
            "id": str(new_snowflake()),
            "channel_id": str(channel_id),
            "author": author.to_api(),
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": "@everyone" in content,
            "mentions": mentions,
            "mention_roles": re.findall(r"<@&(\d+)>", content),
            "attachments": [],
            "embeds": list(body.get("embeds") or []),
            "reactions": [],
            "pinned": False,
            "type": 0,
            "flags": flags,
            "components": list(body.get("components") or []),
        }
        if webhook:
            msg["webhook_id"] = str(self.application_id)
            msg["application_id"] = str(self.application_id)
        if guild is not None:
            msg["guild_id"] = str(guild.id)
        if body.get("message_reference"):
            msg["message_reference"] = body["message_reference"]
            msg["type"] = 19  # REPLY
        return msg

    def _find_user(self, user_id: int, guild: FakeGuild | None) -> FakeUser | None:
        if user_id == self.bot_user.id:
            return self.bot_user
        pools = [guild.members] if guild else []
        pools += [g.members for g in self.guilds] + [list(self._dm_users.values())]
        for pool in pools:
            for user in pool:
                if user.id == user_id:
                    return user
        return None

    async def _dispatch_message(
        self, guild: FakeGuild | None, msg: dict[str, Any], *, author_is_bot: bool
    ) -> None:
        session = self._session_for(guild.id if guild else None, required=not author_is_bot)
        if session is None:
            return
        needed = INTENT_GUILD_MESSAGES if guild else INTENT_DIRECT_MESSAGES
        if not session.has(needed):
            return
        event = msg
        mentioned = any(int(m["id"]) == self.bot_user.id for m in msg["mentions"])
        if (
            guild
            and not session.has(INTENT_MESSAGE_CONTENT)
            and not mentioned
            and not author_is_bot
        ):
            # Without the privileged intent Discord blanks these fields.
            event = msg | {"content": "", "embeds": [], "attachments": [], "components": []}
        await self._dispatch(session, "MESSAGE_CREATE", event)

    # ---------------------------------------------------------------- gateway

    def _session_for(self, guild_id: int | None, *, required: bool = True) -> GatewaySession | None:
        for session in self.sessions:
            shard = 0 if guild_id is None else (guild_id >> 22) % session.shard_count
            if session.shard_id == shard:
                return session
        if required:
            raise RuntimeError(
                f"no live gateway session for guild {guild_id}; wait for the client to be ready"
            )
        return None

    def _conn_of(self, session: GatewaySession) -> _Conn | None:
        return next((c for c in self._conns if c.session is session), None)

    async def _dispatch(self, session: GatewaySession | None, event: str, data: Any) -> None:
        if session is None:
            return
        session.seq += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data}
        session.events.append(frame)
        del session.events[:-1000]
        conn = self._conn_of(session)
        if conn is not None:
            await conn.send(frame)

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self._gateway_fault == "error":
            return _json({"message": "Service Unavailable", "code": 0}, status=503)
        ws = web.WebSocketResponse(max_msg_size=4096 * 1024)
        await ws.prepare(request)
        conn = _Conn(ws, compress=request.query.get("compress") == "zlib-stream")
        self._conns.add(conn)
        try:
            if request.query.get("v", "10") not in ("9", "10"):
                await ws.close(code=4012, message=b"Invalid API version.")
                return ws
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Only json encoding is supported here.")
                return ws
            await conn.send(
                {
                    "op": OP_HELLO,
                    "d": {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["fake"]},
                    "s": None,
                    "t": None,
                }
            )
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                try:
                    frame = json.loads(msg.data)
                    op = frame["op"]
                except (ValueError, KeyError, TypeError):
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                await self._on_frame(conn, op, frame.get("d"))
        finally:
            self._conns.discard(conn)
            if conn.session is not None:
                conn.session.connected = False
                await self._notify()
        return ws

    async def _on_frame(self, conn: _Conn, op: int, data: Any) -> None:
        ws = conn.ws
        if op == OP_HEARTBEAT:
            await conn.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            await self._identify(conn, data if isinstance(data, dict) else {})
        elif op == OP_RESUME:
            await self._resume(conn, data if isinstance(data, dict) else {})
        elif conn.session is None:
            await ws.close(code=4003, message=b"Not authenticated.")
        elif op == OP_REQUEST_MEMBERS:
            await self._send_member_chunk(conn.session, data if isinstance(data, dict) else {})
        elif op in (OP_PRESENCE, OP_VOICE):
            pass
        else:
            await ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, conn: _Conn, data: dict[str, Any]) -> None:
        ws = conn.ws
        if conn.session is not None:
            await ws.close(code=4005, message=b"Already authenticated.")
            return
        if not secrets.compare_digest(str(data.get("token", "")), self.token):
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0:
            await ws.close(code=4013, message=b"Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~self.allowed_privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = data.get("shard") or [0, 1]
        try:
            shard_id, shard_count = int(shard[0]), int(shard[1])
        except (TypeError, ValueError, IndexError):
            shard_id, shard_count = -1, 0
        if not 0 <= shard_id < shard_count:
            await ws.close(code=4010, message=b"Invalid shard.")
            return
        if any(s.shard_id == shard_id and s.shard_count == shard_count for s in self.sessions):
            # Discord would let the newer connection win; a test wants to hear about it.
            log.warning("second live session for shard %s/%s", shard_id, shard_count)
        self.identifies.append({k: v for k, v in data.items() if k != "token"})
        session = GatewaySession(
            session_id=secrets.token_hex(16),
            shard_id=shard_id,
            shard_count=shard_count,
            intents=intents,
            properties=dict(data.get("properties") or {}),
        )
        self._sessions[session.session_id] = session
        conn.session = session
        mine = [g for g in self.guilds if (g.id >> 22) % shard_count == shard_id]
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.bot_user.to_api() | {"verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in mine],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "user_settings": {},
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "_trace": ["fake"],
        }
        if data.get("shard") is not None:
            ready["shard"] = [shard_id, shard_count]
        await self._dispatch(session, "READY", ready)
        if session.has(INTENT_GUILDS):
            for guild in mine:
                await self._dispatch(session, "GUILD_CREATE", self._guild_create(guild))
        await self._notify()

    def _guild_create(self, guild: FakeGuild) -> dict[str, Any]:
        members = [*guild.members, self.bot_user]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id or (guild.members[0].id if guild.members else 0)),
            "region": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "application_id": None,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "premium_progress_bar_enabled": False,
            "joined_at": _now_iso(),
            "large": False,
            "unavailable": False,
            "member_count": len(members),
            "roles": [r.to_api() for r in guild.roles],
            "channels": [c.to_api() for c in guild.channels],
            "members": [m.member_api() for m in members],
            "emojis": [],
            "stickers": [],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    async def _send_member_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        ids = data.get("guild_id")
        for gid in ids if isinstance(ids, list) else [ids]:
            try:
                guild = self.guild(int(gid))
            except (KeyError, TypeError, ValueError):
                continue
            members = [*guild.members, self.bot_user]
            wanted = data.get("user_ids")
            if wanted:
                wanted_ids = {int(u) for u in (wanted if isinstance(wanted, list) else [wanted])}
                members = [m for m in members if m.id in wanted_ids]
            elif data.get("query"):
                members = [m for m in members if m.name.startswith(str(data["query"]))]
            chunk: dict[str, Any] = {
                "guild_id": str(guild.id),
                "members": [m.member_api() for m in members],
                "chunk_index": 0,
                "chunk_count": 1,
            }
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            await self._dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _resume(self, conn: _Conn, data: dict[str, Any]) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        token_ok = secrets.compare_digest(str(data.get("token", "")), self.token)
        if not token_ok:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        if session is None or conn.session is not None:
            await conn.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        old = self._conn_of(session)
        if old is not None:
            # The client saw the close before our handler did; the newer connection wins.
            old.session = None
            await old.ws.close(code=4000, message=b"session resumed elsewhere")
        seq = data.get("seq") or 0
        conn.session = session
        session.connected = True
        for frame in session.events:
            if frame["s"] > seq:
                await conn.send(frame)
        await self._dispatch(session, "RESUMED", {"_trace": ["fake"]})
        await self._notify()

    # ---------------------------------------------------------------- REST

    def _add_rest_routes(self, app: web.Application) -> None:
        p = "/api/v{version:\\d+}"
        r = app.router
        r.add_get(p + "/users/@me", self._get_me)
        r.add_get(p + "/oauth2/applications/@me", self._get_application)
        r.add_get(p + "/applications/@me", self._get_application)
        r.add_get(p + "/gateway", self._get_gateway)
        r.add_get(p + "/gateway/bot", self._get_gateway_bot)
        r.add_post(p + "/users/@me/channels", self._create_dm)
        r.add_get(p + "/users/{user_id:\\d+}", self._get_user)
        r.add_get(p + "/channels/{channel_id:\\d+}", self._get_channel)
        r.add_post(p + "/channels/{channel_id:\\d+}/typing", self._typing)
        r.add_post(p + "/channels/{channel_id:\\d+}/messages", self._create_message)
        msg = p + "/channels/{channel_id:\\d+}/messages/{message_id:\\d+}"
        r.add_get(msg, self._get_message)
        r.add_patch(msg, self._edit_message)
        r.add_delete(msg, self._delete_message)
        r.add_put(msg + "/reactions/{emoji}/@me", self._add_reaction)
        r.add_get(p + "/guilds/{guild_id:\\d+}", self._get_guild)
        r.add_get(p + "/guilds/{guild_id:\\d+}/channels", self._get_guild_channels)
        r.add_get(p + "/guilds/{guild_id:\\d+}/roles", self._get_guild_roles)
        r.add_get(p + "/guilds/{guild_id:\\d+}/members/{user_id:\\d+}", self._get_member)
        apps = p + "/applications/{app_id:\\d+}"
        for base in (apps + "/commands", apps + "/guilds/{guild_id:\\d+}/commands"):
            r.add_get(base, self._get_commands)
            r.add_put(base, self._put_commands)
            r.add_post(base, self._post_command)
            r.add_get(base + "/{command_id:\\d+}", self._get_command)
            r.add_delete(base + "/{command_id:\\d+}", self._delete_command)
        r.add_post(p + "/interactions/{interaction_id:\\d+}/{token}/callback", self._callback)
        hook = p + "/webhooks/{app_id:\\d+}/{token}"
        r.add_post(hook, self._followup)
        r.add_get(hook + "/messages/{message_id}", self._get_webhook_message)
        r.add_patch(hook + "/messages/{message_id}", self._edit_webhook_message)
        r.add_delete(hook + "/messages/{message_id}", self._delete_webhook_message)

    @web.middleware
    async def _rest_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        route = request.match_info.route.resource
        bucket_key = f"{request.method} {route.canonical if route else request.path}"
        bucket = hashlib.sha1(bucket_key.encode()).hexdigest()[:16]
        for i, (needle, retry_after) in enumerate(self._rate_limits):
            if needle is None or needle in request.path:
                del self._rate_limits[i]
                self.rate_limited.append(f"{request.method} {request.path}")
                return _json(
                    {
                        "message": "You are being rate limited.",
                        "retry_after": retry_after,
                        "global": False,
                    },
                    status=429,
                    headers={
                        "Retry-After": str(max(1, round(retry_after))),
                        "X-RateLimit-Limit": "5",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                        "X-RateLimit-Bucket": bucket,
                        "X-RateLimit-Scope": "user",
                        "Via": "1.1 google",
                    },
                )
        try:
            unmatched = request.match_info.http_exception
            if route is None or unmatched is not None:
                self.unhandled.append(f"{request.method} {request.path}")
                status = unmatched.status if unmatched is not None else 404
                reason = unmatched.reason if unmatched is not None else "Not Found"
                raise _ApiError(status, 0, f"{status}: {reason}")
            response = await handler(request)
        except _ApiError as exc:
            response = _json(exc.body(), status=exc.status)
        except Exception as exc:
            # A bug in the fake, not an API refusal: 400 so discord.py fails at once instead of
            # retrying a 500 for half a minute, and recorded so the fixture fails the test.
            log.exception("fake_discord failed on %s %s", request.method, request.path)
            self.errors.append(f"{request.method} {request.path}: {exc!r}")
            response = _json({"message": f"fake_discord bug: {exc!r}", "code": 0}, status=400)
        # A constant, never-exhausted bucket: discord.py never pre-emptively sleeps.
        response.headers.update(
            {
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "4",
                "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
                "X-RateLimit-Reset-After": "1.000",
                "X-RateLimit-Bucket": bucket,
                "Via": "1.1 google",
            }
        )
        return response

    def _auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if not secrets.compare_digest(header, f"Bot {self.token}"):
            raise _ApiError(401, 0, "401: Unauthorized")

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The JSON body, from a JSON request or a multipart one's ``payload_json`` part."""
        files: list[str] = []
        if request.content_type.startswith("multipart/"):
            body: dict[str, Any] = {}
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, aiohttp.BodyPartReader):
                    continue
                if part.name == "payload_json":
                    body = self._parse_json(await part.text())
                else:
                    files.append(part.filename or part.name or "")
                    await part.release()
            return body, tuple(files)
        if not request.can_read_body:
            return {}, ()
        return self._parse_json(await request.text()), ()

    @staticmethod
    def _parse_json(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise _ApiError(400, 50109, "The request body contains invalid JSON.") from None

    async def _get_me(self, request: web.Request) -> web.Response:
        self._auth(request)
        return _json(self.bot_user.to_api() | {"verified": True, "mfa_enabled": False})

    async def _get_application(self, request: web.Request) -> web.Response:
        self._auth(request)
        owner = self.guilds[0].member(self.guilds[0].owner_id) if self.guilds else self.bot_user
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot_user.name,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": owner.to_api(),
                "team": None,
                "flags": 0,
                "rpc_origins": [],
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "bot": self.bot_user.to_api(),
            }
        )

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        self._auth(request)
        return _json(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_user(self, request: web.Request) -> web.Response:
        self._auth(request)
        user = self._find_user(int(request.match_info["user_id"]), None)
        if user is None:
            raise _ApiError(404, 10013, "Unknown User")
        return _json(user.to_api())

    async def _create_dm(self, request: web.Request) -> web.Response:
        self._auth(request)
        body, _ = await self._body(request)
        try:
            user = self._find_user(int(body.get("recipient_id")), None)
        except (TypeError, ValueError):
            user = None
        if user is None:
            raise _form_error("recipient_id", "NUMBER_TYPE_COERCE", "Value is not snowflake.")
        channel = self.dm_channel(user)
        return _json(channel.to_api() | {"recipients": [user.to_api()]})

    def _channel(self, channel_id: int) -> tuple[FakeChannel, FakeGuild | None]:
        for guild in self.guilds:
            for channel in guild.channels:
                if channel.id == channel_id:
                    return channel, guild
        if channel_id in self._dm_channels:
            return self._dm_channels[channel_id], None
        raise _ApiError(404, 10003, "Unknown Channel")

    async def _get_channel(self, request: web.Request) -> web.Response:
        self._auth(request)
        channel, guild = self._channel(int(request.match_info["channel_id"]))
        data = channel.to_api(guild.id if guild else None)
        if guild is None:
            data["recipients"] = [self._dm_users[channel.id].to_api()]
        return _json(data)

    async def _typing(self, request: web.Request) -> web.Response:
        self._auth(request)
        self._channel(int(request.match_info["channel_id"]))
        return web.Response(status=204)

    def _validate_message(self, body: dict[str, Any], *, create: bool) -> None:
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            raise _form_error(
                "content", "STRING_TYPE_CONVERT", "Could not interpret value as string."
            )
        if content is not None and len(content) > 2000:
            raise _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        for i, embed in enumerate(embeds):
            if len(str(embed.get("title") or "")) > 256:
                raise _form_error(
                    f"embeds.{i}.title", "BASE_TYPE_MAX_LENGTH", "Must be 256 or fewer in length."
                )
            if len(str(embed.get("description") or "")) > 4096:
                raise _form_error(
                    f"embeds.{i}.description",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 4096 or fewer in length.",
                )
        self._validate_components(body.get("components") or [])
        if create and not (
            content
            or embeds
            or body.get("components")
            or body.get("sticker_ids")
            or body.get("attachments")
            or body.get("poll")
        ):
            raise _ApiError(400, 50006, "Cannot send an empty message")

    @staticmethod
    def _validate_components(rows: list[dict[str, Any]]) -> None:
        if len(rows) > 5:
            raise _form_error("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        seen: set[str] = set()
        for i, row in enumerate(rows):
            if row.get("type") != 1:
                raise _form_error(
                    f"components.{i}.type",
                    "UNION_TYPE_CHOICES",
                    'Value of field "type" must be one of (1,).',
                )
            children = row.get("components") or []
            if not 1 <= len(children) <= 5:
                raise _form_error(
                    f"components.{i}.components",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 5 in length.",
                )
            for j, comp in enumerate(children):
                where = f"components.{i}.components.{j}"
                if comp.get("type") == 2 and comp.get("style") == 5:
                    if not comp.get("url"):
                        raise _form_error(
                            f"{where}.url", "BASE_TYPE_REQUIRED", "This field is required"
                        )
                    continue
                cid = comp.get("custom_id")
                if not isinstance(cid, str) or not 1 <= len(cid) <= 100:
                    raise _form_error(
                        f"{where}.custom_id",
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    )
                if cid in seen:
                    raise _form_error(
                        f"{where}.custom_id",
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                seen.add(cid)
                if comp.get("type") == 2 and len(str(comp.get("label") or "")) > 80:
                    raise _form_error(
                        f"{where}.label", "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length."
                    )

    async def _create_message(self, request: web.Request) -> web.Response:
        self._auth(request)
        channel_id = int(request.match_info["channel_id"])
        channel, guild = self._channel(channel_id)
        body, files = await self._body(request)
        if not files:
            self._validate_message(body, create=True)
        msg = self._new_message(channel.id, guild, self.bot_user, body, flags=body.get("flags", 0))
        self._messages[int(msg["id"])] = msg
        await self._record(
            "message",
            body,
            channel_id=channel_id,
            message_id=int(msg["id"]),
            guild_id=guild.id if guild else None,
            files=files,
        )
        if self.echo_own_messages:
            echo = dict(msg)
            if guild is not None:
                echo["member"] = self.bot_user.member_api(with_user=False)
            await self._dispatch_message(guild, echo, author_is_bot=True)
        return _json(msg)

    def _stored_message(self, request: web.Request) -> dict[str, Any]:
        channel_id = int(request.match_info["channel_id"])
        self._channel(channel_id)
        msg = self._messages.get(int(request.match_info["message_id"]))
        if msg is None or int(msg["channel_id"]) != channel_id:
            raise _ApiError(404, 10008, "Unknown Message")
        return msg

    async def _get_message(self, request: web.Request) -> web.Response:
        self._auth(request)
        return _json(self._stored_message(request))

    async def _edit_message(self, request: web.Request) -> web.Response:
        self._auth(request)
        msg = self._stored_message(request)
        if int(msg["author"]["id"]) != self.bot_user.id:
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        body, files = await self._body(request)
        self._validate_message(body, create=False)
        self._apply_edit(msg, body)
        await self._record(
            "edit", body, channel_id=int(msg["channel_id"]), message_id=int(msg["id"]), files=files
        )
        return _json(msg)

    @staticmethod
    def _apply_edit(msg: dict[str, Any], body: dict[str, Any]) -> None:
        for key in ("content", "embeds", "components", "flags"):
            if key in body and body[key] is not None:
                msg[key] = body[key]
        msg["edited_timestamp"] = _now_iso()

    async def _delete_message(self, request: web.Request) -> web.Response:
        self._auth(request)
        msg = self._stored_message(request)
        self._messages.pop(int(msg["id"]), None)
        await self._record(
            "delete", {}, channel_id=int(msg["channel_id"]), message_id=int(msg["id"])
        )
        return web.Response(status=204)

    async def _add_reaction(self, request: web.Request) -> web.Response:
        self._auth(request)
        msg = self._stored_message(request)
        await self._record(
            "reaction",
            {"emoji": request.match_info["emoji"]},
            channel_id=int(msg["channel_id"]),
            message_id=int(msg["id"]),
        )
        return web.Response(status=204)

    def _guild_param(self, request: web.Request) -> FakeGuild:
        try:
            return self.guild(int(request.match_info["guild_id"]))
        except KeyError:
            raise _ApiError(404, 10004, "Unknown Guild") from None

    async def _get_guild(self, request: web.Request) -> web.Response:
        self._auth(request)
        data = self._guild_create(self._guild_param(request))
        for key in (
            "members",
            "channels",
            "threads",
            "presences",
            "voice_states",
            "joined_at",
            "large",
            "member_count",
            "unavailable",
        ):
            data.pop(key, None)
        return _json(data)

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        self._auth(request)
        guild = self._guild_param(request)
        return _json([c.to_api(guild.id) for c in guild.channels])

    async def _get_guild_roles(self, request: web.Request) -> web.Response:
        self._auth(request)
        return _json([r.to_api() for r in self._guild_param(request).roles])

    async def _get_member(self, request: web.Request) -> web.Response:
        self._auth(request)
        guild = self._guild_param(request)
        uid = int(request.match_info["user_id"])
        for member in [*guild.members, self.bot_user]:
            if member.id == uid:
                return _json(member.member_api())
        raise _ApiError(404, 10007, "Unknown Member")

    # ---------------------------------------------------------------- application commands

    def _command_table(self, request: web.Request) -> tuple[dict[str, dict[str, Any]], int | None]:
        self._auth(request)
        if int(request.match_info["app_id"]) != self.application_id:
            raise _ApiError(403, 50001, "Missing Access")
        if "guild_id" not in request.match_info:
            return self._global_commands, None
        guild = self._guild_param(request)
        return self._guild_commands.setdefault(guild.id, {}), guild.id

    def _validate_command(self, cmd: Any, where: str) -> None:
        if not isinstance(cmd, dict):
            raise _form_error(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        ctype = cmd.get("type", 1)
        name = cmd.get("name")
        if (
            not isinstance(name, str)
            or not re.fullmatch(r"[-_\w]{1,32}", name)
            or (ctype == 1 and name != name.lower())
        ):
            raise _form_error(
                f"{where}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            )
        perms = cmd.get("default_member_permissions")
        if perms is not None and not _is_digits(perms):
            raise _form_error(
                f"{where}.default_member_permissions",
                "NUMBER_TYPE_COERCE",
                "Value is not a valid permission bitfield.",
            )
        desc = cmd.get("description", "")
        if ctype == 1 and not (isinstance(desc, str) and 1 <= len(desc) <= 100):
            raise _form_error(
                f"{where}.description",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        self._validate_options(cmd.get("options") or [], f"{where}.options")

    def _validate_options(self, options: list[dict[str, Any]], where: str) -> None:
        if len(options) > 25:
            raise _form_error(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        names: set[str] = set()
        optional_seen = False
        for i, opt in enumerate(options):
            name = opt.get("name")
            if (
                not isinstance(name, str)
                or not re.fullmatch(r"[-_\w]{1,32}", name)
                or (name != name.lower())
            ):
                raise _form_error(
                    f"{where}.{i}.name",
                    "APPLICATION_COMMAND_INVALID_NAME",
                    "Command name is invalid",
                )
            if name in names:
                raise _form_error(
                    f"{where}.{i}.name",
                    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                    "Option names must be unique",
                )
            names.add(name)
            desc = opt.get("description")
            if not (isinstance(desc, str) and 1 <= len(desc) <= 100):
                raise _form_error(
                    f"{where}.{i}.description",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            if opt.get("type") in (1, 2):
                self._validate_options(opt.get("options") or [], f"{where}.{i}.options")
                continue
            if opt.get("required"):
                if optional_seen:
                    raise _form_error(
                        f"{where}.{i}.required",
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                optional_seen = True
            if len(opt.get("choices") or []) > 25:
                raise _form_error(
                    f"{where}.{i}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )

    def _store_command(self, cmd: dict[str, Any], guild_id: int | None) -> dict[str, Any]:
        """The command as Discord returns it: ids added, permissions as a string."""
        key = (guild_id, cmd["name"], cmd.get("type", 1))
        perms = cmd.get("default_member_permissions")
        cid = self._command_ids.setdefault(key, new_snowflake())
        stored = {
            "id": str(cid),
            "application_id": str(self.application_id),
            "version": str(new_snowflake()),
            "type": cmd.get("type", 1),
            "name": cmd["name"],
            "name_localizations": cmd.get("name_localizations"),
            "description": cmd.get("description", ""),
            "description_localizations": cmd.get("description_localizations"),
            "options": cmd.get("options") or [],
            "default_member_permissions": None if perms is None else str(perms),
            "dm_permission": cmd.get("dm_permission", True),
            "contexts": cmd.get("contexts"),
            "integration_types": cmd.get("integration_types") or [0],
            "nsfw": bool(cmd.get("nsfw", False)),
        }
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        return stored

    async def _get_commands(self, request: web.Request) -> web.Response:
        table, _ = self._command_table(request)
        return _json(list(table.values()))

    async def _get_command(self, request: web.Request) -> web.Response:
        table, _ = self._command_table(request)
        for cmd in table.values():
            if cmd["id"] == request.match_info["command_id"]:
                return _json(cmd)
        raise _ApiError(404, 10063, "Unknown application command")

    async def _put_commands(self, request: web.Request) -> web.Response:
        table, guild_id = self._command_table(request)
        body, _ = await self._body(request)
        if not isinstance(body, list):
            raise _ApiError(
                400,
                50035,
                "Invalid Form Body",
                {
                    "_errors": [
                        {
                            "code": "LIST_TYPE_CONVERT",
                            "message": "Only iterables may be used in a ListType",
                        }
                    ]
                },
            )
        if len(body) > 100:
            raise _form_error("_", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        seen: set[tuple[str, int]] = set()
        for i, cmd in enumerate(body):
            self._validate_command(cmd, str(i))
            key = (cmd["name"], cmd.get("type", 1))
            if key in seen:
                raise _form_error(
                    str(i),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {cmd['name']}",
                )
            seen.add(key)
        stored = [self._store_command(cmd, guild_id) for cmd in body]
        table.clear()
        table.update({cmd["name"]: cmd for cmd in stored})
        await self._record("commands", stored, guild_id=guild_id)
        return _json(stored)

    async def _post_command(self, request: web.Request) -> web.Response:
        table, guild_id = self._command_table(request)
        body, _ = await self._body(request)
        self._validate_command(body, "_")
        existed = body["name"] in table
        table[body["name"]] = stored = self._store_command(body, guild_id)
        await self._record("commands", list(table.values()), guild_id=guild_id)
        return _json(stored, status=200 if existed else 201)

    async def _delete_command(self, request: web.Request) -> web.Response:
        table, guild_id = self._command_table(request)
        for name, cmd in list(table.items()):
            if cmd["id"] == request.match_info["command_id"]:
                del table[name]
                await self._record("commands", list(table.values()), guild_id=guild_id)
                return web.Response(status=204)
        raise _ApiError(404, 10063, "Unknown application command")

    # ---------------------------------------------------------------- interactions

    async def _callback(self, request: web.Request) -> web.Response:
        state = self._interactions.get(int(request.match_info["interaction_id"]))
        if state is None or not secrets.compare_digest(state.token, request.match_info["token"]):
            raise _ApiError(404, 10062, "Unknown interaction")
        body, files = await self._body(request)
        ctype = body.get("type")
        allowed = {
            INTERACTION_COMMAND: {CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_MODAL},
            INTERACTION_COMPONENT: {
                CALLBACK_MESSAGE,
                CALLBACK_DEFERRED_MESSAGE,
                CALLBACK_DEFERRED_UPDATE,
                CALLBACK_UPDATE_MESSAGE,
                CALLBACK_MODAL,
            },
            INTERACTION_AUTOCOMPLETE: {CALLBACK_AUTOCOMPLETE},
            INTERACTION_MODAL_SUBMIT: {
                CALLBACK_MESSAGE,
                CALLBACK_DEFERRED_MESSAGE,
                CALLBACK_DEFERRED_UPDATE,
                CALLBACK_UPDATE_MESSAGE,
            },
        }.get(state.type, set())
        if ctype not in allowed:
            raise _form_error(
                "type",
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Response type {ctype} is not valid for interaction type {state.type}",
            )
        if state.acked:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        data = body.get("data") or {}
        if ctype in (CALLBACK_MESSAGE, CALLBACK_UPDATE_MESSAGE) and not files:
            self._validate_message(data, create=ctype == CALLBACK_MESSAGE)
        if ctype == CALLBACK_AUTOCOMPLETE and len(data.get("choices") or []) > 25:
            raise _form_error(
                "data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        state.acked = True
        state.callback_type = ctype
        guild = self.guild(state.guild_id) if state.guild_id else None
        message: dict[str, Any] | None = None
        if ctype in (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE):
            flags = int(data.get("flags") or 0)
            if ctype == CALLBACK_DEFERRED_MESSAGE:
                flags |= FLAG_LOADING
                data = {"content": "", "flags": flags}
            message = self._new_message(
                state.channel_id or 0, guild, self.bot_user, data, flags=flags, webhook=True
            )
            message["interaction_metadata"] = {
                "id": str(state.id),
                "type": state.type,
                "user": state.user.to_api(),
                "authorizing_integration_owners": {},
            }
            message["type"] = 20  # CHAT_INPUT_COMMAND
            self._messages[int(message["id"])] = message
            state.original_message_id = int(message["id"])
        elif ctype in (CALLBACK_UPDATE_MESSAGE, CALLBACK_DEFERRED_UPDATE):
            message = self._messages.get(state.source_message_id or 0)
            if message is not None and ctype == CALLBACK_UPDATE_MESSAGE:
                self._apply_edit(message, data)
            state.original_message_id = state.source_message_id
        await self._record(
            "callback",
            body,
            channel_id=state.channel_id,
            message_id=int(message["id"]) if message else None,
            interaction_id=state.id,
            guild_id=state.guild_id,
            files=files,
        )
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(state.id),
                "type": state.type,
                "response_message_loading": ctype == CALLBACK_DEFERRED_MESSAGE,
                "response_message_ephemeral": bool(message and message["flags"] & FLAG_EPHEMERAL),
            }
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = message["id"]
            answer["resource"] = {"type": ctype, "message": message}
        return _json(answer)

    def _webhook_interaction(self, request: web.Request) -> _Interaction:
        if int(request.match_info["app_id"]) != self.application_id:
            raise _ApiError(404, 10015, "Unknown Webhook")
        state = self._by_token.get(request.match_info["token"])
        if state is None or not state.acked:
            raise _ApiError(404, 10015, "Unknown Webhook")
        return state

    async def _followup(self, request: web.Request) -> web.Response:
        state = self._webhook_interaction(request)
        body, files = await self._body(request)
        if not files:
            self._validate_message(body, create=True)
        guild = self.guild(state.guild_id) if state.guild_id else None
        msg = self._new_message(
            state.channel_id or 0,
            guild,
            self.bot_user,
            body,
            flags=int(body.get("flags") or 0),
            webhook=True,
        )
        self._messages[int(msg["id"])] = msg
        state.followup_ids.append(int(msg["id"]))
        await self._record(
            "followup",
            body,
            channel_id=state.channel_id,
            message_id=int(msg["id"]),
            interaction_id=state.id,
            guild_id=state.guild_id,
            files=files,
        )
        if request.query.get("wait", "").lower() in ("1", "true"):
            return _json(msg)
        return web.Response(status=204)

    def _webhook_message(self, request: web.Request, state: _Interaction) -> dict[str, Any]:
        ref = request.match_info["message_id"]
        mid = state.original_message_id if ref == "@original" else int(ref) if ref.isdigit() else 0
        if mid is None or (ref != "@original" and mid not in state.followup_ids):
            raise _ApiError(404, 10008, "Unknown Message")
        msg = self._messages.get(mid)
        if msg is None:
            raise _ApiError(404, 10008, "Unknown Message")
        return msg

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        state = self._webhook_interaction(request)
        return _json(self._webhook_message(request, state))

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        state = self._webhook_interaction(request)
        msg = self._webhook_message(request, state)
        body, files = await self._body(request)
        self._validate_message(body, create=False)
        self._apply_edit(msg, body)
        msg["flags"] = int(msg.get("flags") or 0) & ~FLAG_LOADING
        kind: SentKind = (
            "edit_original" if request.match_info["message_id"] == "@original" else "edit_followup"
        )
        await self._record(
            kind,
            body,
            channel_id=state.channel_id,
            message_id=int(msg["id"]),
            interaction_id=state.id,
            guild_id=state.guild_id,
            files=files,
        )
        return _json(msg)

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        state = self._webhook_interaction(request)
        msg = self._webhook_message(request, state)
        self._messages.pop(int(msg["id"]), None)
        await self._record(
            "delete_original",
            {},
            channel_id=state.channel_id,
            message_id=int(msg["id"]),
            interaction_id=state.id,
        )
        return web.Response(status=204)


def _is_digits(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and value >= 0) or (isinstance(value, str) and value.isdigit())


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """JSON with Discord's exact ``Content-Type``: discord.py compares it without a charset."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket we own, so the gateway can be closed and rebound on the same port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


@contextlib.contextmanager
def discord_py_pointed_at(api_base: str, gateway_url: str) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at other URLs, restoring them after.

    This is the whole recipe the transport needs for its ``api_base`` / ``gateway_url`` keys.
    """
    import discord.gateway
    import discord.http
    import yarl

    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


@contextlib.asynccontextmanager
async def running(fake: FakeDiscord) -> AsyncIterator[FakeDiscord]:
    """Start ``fake`` and point discord.py at it for the duration."""
    async with fake:
        with discord_py_pointed_at(fake.api_base, fake.gateway_url):
            yield fake


def simulator_from_args(argv: list[str]) -> Simulator:
    """Build a fake from command-line options, to poke at it by hand with a real client."""
    parser = argparse.ArgumentParser(prog="fake_discord", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="REST port (0: any free port)")
    parser.add_argument("--gateway-port", type=int, default=0)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bot token clients must use")
    parser.add_argument("--guild-id", type=int, default=1_100_000_000_000_000_000)
    args = parser.parse_args(argv)
    return FakeDiscord(
        token=args.token,
        host=args.host,
        port=args.port,
        gateway_port=args.gateway_port,
        guilds=[FakeGuild.sample(args.guild_id)],
    )


async def _serve(argv: list[str]) -> None:
    fake = simulator_from_args(argv)
    async with fake:
        assert isinstance(fake, FakeDiscord)
        print(f"api_base={fake.api_base} gateway_url={fake.gateway_url}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    import sys

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sys.argv[1:]))
