"""A local Instamrkt games server speaking the documented websocket protocol.

It keeps sources, games (upcoming, open, closed), admins per game with a limit, the target
nesting rules (the automatic ``none`` target included), joins per connection, publishing of
470/480/342/341/362/368 to each game's subscribers, and the close semantics: automatic pools
are resolved, manual ones blocked, and 341 comes only once no manual pool is left.

Which source each behaviour follows:

- **The protocol document** (``protocols/games-websocket.md``), read strictly where it can be
  read two ways: 362 and 368 are "Published to all game subscribers", so a close sends them
  to subscribers only, never to a closer that has not joined (a client that relies on getting
  them anyway fails its tests here). 341 goes to the closer and the subscribers ("Published to
  you and all other users subscribed"). Requests are authenticated by the header's
  ``session_key`` on a connection opened without the vendor's login query.
- **The protocol notes** (``protocols/README.md``, the real API as observed): get details is op
  372; an update's 342 reaches a subscribed updater both as a reply and as a subscriber.
- **The vendor's docs repository** (Instamrkt/slate, ``source/includes/
  _websocket_api_calls_general.md``): ping (op 1); ``get_opcodes`` (op 2) answers with
  ``opcodes`` and ``response_codes``; the connection URL ``?id=<user id>&n=<nonce>&h=<hex>``
  with ``h = sha256(id + nonce + session_key)``, after which the header's ``session_key`` is
  "not used currently"; logon (op 100) answered 100, 110 or 112. The generic error 666 has only
  ``text`` there (``_websocket_api_errors.md``): ``error_game_id=False`` sends it that way.
- **Our own choices** where no source says: a refused login digest (unknown user id, wrong
  digest, a nonce used before) is refused at the handshake with HTTP 403; a nonce may be used
  once per user; with ``require_logon`` the session ops of a digest connection need op 100
  first.

Game state survives :meth:`stop`/:meth:`start` on the same port, like a server restart that
keeps its database, so clients can be seen re-joining.

Test hooks: :meth:`add_session`, :meth:`add_demo_game`, :meth:`add_pool`,
:meth:`resolve_pool`, :meth:`block_betting`, :meth:`register_event`, :meth:`inject`,
:meth:`drop_connections`, :meth:`restart`, :meth:`subscriber_count`, ``muted_ops`` (ops left
unanswered), ``refuse_logon`` (answer logon with 110), ``requests`` (every request received,
as parsed JSON), ``logins`` (the query of every accepted digest login), ``accept_delay``
(seconds each handshake is held back) and ``require_digest`` (refuse connections without the
login query).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import random
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bot.simulation import Simulator

from . import wire

log = logging.getLogger(__name__)

DEFAULT_SOURCE_ID = "30cee1fa-fb20-41a6-a61c-0e0335abc2a9"
DEFAULT_ADMIN_KEY = "sim-games-admin"
DEFAULT_PLAYER_KEY = "sim-games-player"
DEFAULT_PORT = 8790


@dataclass
class SimUser:
    """Who a session key belongs to; only source admins may create, open, update and close."""

    user_id: int
    user_name: str
    source_admin: bool = False


@dataclass
class SimPool:
    """A betting pool: automatic ones resolve on close, manual ones block until resolved."""

    pool_id: str
    name: str
    manual: bool
    target_id: str
    action_id: str | None
    state: str = "open"  # open, blocked, resolved


@dataclass
class SimGame:
    game_id: str
    source_id: str
    name: str
    type: str
    opened: bool
    closed: bool = False
    currency: str | None = None
    hashtag: str | None = None
    open_at: int | None = None
    close_at: int | None = None
    live_start_at: int | None = None
    live_finish_at: int | None = None
    actions: dict[str, dict[str, str]] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
    past_events: dict[str, dict[str, Any]] = field(default_factory=dict)
    admins: set[int] = field(default_factory=set)
    pools: dict[str, SimPool] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.closed:
            return wire.STATUS_CLOSED
        if not self.opened:
            return wire.STATUS_NOT_YET_ACTIVE
        if self.live_start_at is not None and self.live_start_at > wire.now_ms():
            return wire.STATUS_PRE_GAME
        return wire.STATUS_IN_PROGRESS


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    joined: set[str] = field(default_factory=set)
    # Set when the connection opened with a valid login digest: requests are then this user's,
    # whatever their header says (the vendor: the header key is "not used currently").
    login: SimUser | None = None
    logged_on: bool = False


class _Refusal(Exception):
    """A request the server answers with its generic error (666)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class GamesSimulator(Simulator):
    """The games API on a real websocket. ``sessions`` maps session keys to users; by default
    one source admin (``DEFAULT_ADMIN_KEY``) and one player (``DEFAULT_PLAYER_KEY``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        source_id: str = DEFAULT_SOURCE_ID,
        sessions: Mapping[str, SimUser] | None = None,
        admin_limit: int = 2,
        seed: int | None = None,
        times_in_seconds: bool = False,
        open_reply_code: int = wire.RES_OPENED,
        require_game_admin: bool = True,
        error_game_id: bool = True,
        require_digest: bool = False,
        require_logon: bool = False,
        accept_delay: float = 0.0,
    ) -> None:
        if admin_limit < 1:
            raise ValueError("admin_limit must be at least 1")
        if open_reply_code not in (wire.RES_OPENED, wire.RES_CREATED_AND_OPENED):
            raise ValueError("open_reply_code must be 3402 or 340")
        self.host = host
        self.port = port
        self.source_id = source_id
        self.sessions: dict[str, SimUser] = dict(
            sessions
            if sessions is not None
            else {
                DEFAULT_ADMIN_KEY: SimUser(1, "games-bot", source_admin=True),
                DEFAULT_PLAYER_KEY: SimUser(2, "player", source_admin=False),
            }
        )
        self.admin_limit = admin_limit
        self.times_in_seconds = times_in_seconds
        self.open_reply_code = open_reply_code
        self.require_game_admin = require_game_admin
        self.error_game_id = error_game_id
        self.require_digest = require_digest
        self.require_logon = require_logon
        self.accept_delay = accept_delay
        self.games: dict[str, SimGame] = {}
        self.requests: list[dict[str, Any]] = []
        self.logins: list[dict[str, str]] = []
        self.muted_ops: set[int] = set()
        #: answer every logon with 110 (the vendor's logon_fail), e.g. a suspended account
        self.refuse_logon = False
        self._rng = random.Random(seed)
        self._server: Server | None = None
        self._conns: set[_Conn] = set()
        self._subs: dict[str, dict[_Conn, None]] = {}
        self._handshakes: dict[ServerConnection, SimUser] = {}
        self._nonces: set[tuple[int, str]] = set()
        # One handler per op of the contract, named after the op: a missing one fails here.
        self._ops = {code: getattr(self, f"_op_{op.name}") for code, op in wire.OPS.items()}

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await serve(
            self._handle_connection,
            self.host,
            self.port,
            process_request=self._check_login,
            max_size=wire.MAX_FRAME_BYTES,
        )
        # Keep the port once bound so a restart comes back where clients reconnect to.
        self.port = self._server.sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"ws://{host}:{self.port}"

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        self._conns.clear()
        self._subs.clear()
        self._handshakes.clear()

    async def restart(self) -> None:
        """Stop and start on the same port: connections drop, games and admins stay."""
        await self.stop()
        await self.start()

    async def drop_connections(self) -> None:
        """Close every client connection but keep serving (a network glitch)."""
        for conn in list(self._conns):
            await conn.ws.close(code=1011, reason="simulated outage")

    # ------------------------------------------------------------ test hooks

    def add_session(self, key: str, user_name: str, *, source_admin: bool = False) -> SimUser:
        """Register another session key (a third party, or another admin)."""
        next_id = max((u.user_id for u in self.sessions.values()), default=0) + 1
        user = SimUser(next_id, user_name, source_admin=source_admin)
        self.sessions[key] = user
        return user

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    def subscriber_count(self, game_id: str) -> int:
        return len(self._subs.get(game_id, {}))

    def add_pool(
        self,
        game_id: str,
        name: str,
        *,
        manual: bool = False,
        target_id: str = "none",
        action_id: str | None = None,
    ) -> str:
        """Open a betting pool in a game (pools are made by other API calls we do not use)."""
        game = self._game(game_id)
        pool_id = self._new_id()
        game.pools[pool_id] = SimPool(pool_id, name, manual, target_id, action_id)
        return pool_id

    async def resolve_pool(self, game_id: str, pool_id: str, *, outcome: str = "resolved") -> None:
        """Resolve a pool (by hand, for manual ones) and publish 362 to the subscribers."""
        game = self._game(game_id)
        pool = game.pools[pool_id]
        pool.state = "resolved"
        await self._publish(
            game_id, self._pool_message(wire.RES_POOL_RESOLVED, game, pool, outcome)
        )

    async def block_betting(self, game_id: str, pool_id: str) -> None:
        """Block betting in a pool and publish 368 to the subscribers."""
        game = self._game(game_id)
        pool = game.pools[pool_id]
        pool.state = "blocked"
        await self._publish(game_id, self._pool_message(wire.RES_BETTING_BLOCKED, game, pool))

    def add_demo_game(self, name: str = "Argentina - Brazil", game_type: str = "football") -> str:
        """Add an open game with actions, nested targets and one past event.

        A fresh simulator has no games, so the embedded default config would have nothing to
        list or join; returns the demo game's id.
        """
        now = wire.now_ms()
        game = SimGame(
            game_id=self._new_id(),
            source_id=self.source_id,
            name=name,
            type=game_type,
            opened=True,
            currency="EUR",
            hashtag="#" + re.sub(r"[^0-9A-Za-z]", "", name.title()),
            open_at=now,
            live_start_at=now,
        )
        self._add_lists(
            game,
            {
                "actions": ["Goal", "Offside", "Yellow card"],
                "targets": ["Argentina", "Brazil", "Argentina:10", "Brazil:7"],
            },
        )
        self.games[game.game_id] = game
        self.register_event(game.game_id, "argentina:10", "goal")
        return game.game_id

    def register_event(
        self, game_id: str, target_id: str, action_id: str, happened_at: int | None = None
    ) -> str:
        """Record something that happened in the game; it shows in the details' past events."""
        game = self._game(game_id)
        event_id = self._new_id()
        game.past_events[event_id] = {
            "happened_at": self._out_time(happened_at or wire.now_ms()),
            "target_id": target_id,
            "action_id": action_id,
        }
        return event_id

    async def inject(self, message: Mapping[str, Any] | str, game_id: str | None = None) -> None:
        """Send a raw frame to a game's subscribers, or to every connection (tolerance tests)."""
        frame = message if isinstance(message, str) else json.dumps(message)
        conns = list(self._subs.get(game_id, {})) if game_id else list(self._conns)
        for conn in conns:
            await self._send_raw(conn, frame)

    # ------------------------------------------------------------ connection handling

    async def _check_login(self, ws: ServerConnection, request: Request) -> Response | None:
        """The handshake: hold it back ``accept_delay`` seconds, then check the vendor's login
        query if there is one (or if ``require_digest``). A refusal is an HTTP 403."""
        if self.accept_delay > 0:
            await asyncio.sleep(self.accept_delay)
        query = parse_qs(urlsplit(request.path).query)
        given = {key: query[key][0] for key in ("id", "n", "h") if query.get(key)}
        if not given and not self.require_digest:
            return None
        user = self._digest_user(given)
        if user is None:
            return ws.respond(HTTPStatus.FORBIDDEN, "Invalid login digest.\n")
        self._nonces.add((user.user_id, given["n"]))
        self.logins.append(given)
        self._handshakes[ws] = user
        return None

    def _digest_user(self, given: Mapping[str, str]) -> SimUser | None:
        if set(given) != {"id", "n", "h"}:
            return None
        for key, user in self.sessions.items():
            if str(user.user_id) != given["id"]:
                continue
            if (user.user_id, given["n"]) in self._nonces:
                return None  # a replayed URL
            expected = wire.login_digest(given["id"], given["n"], key)
            if hmac.compare_digest(expected, given["h"].lower()):
                return user
        return None

    async def _handle_connection(self, ws: ServerConnection) -> None:
        conn = _Conn(ws, login=self._handshakes.pop(ws, None))
        self._conns.add(conn)
        try:
            async for raw in ws:
                await self._handle_frame(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            self._conns.discard(conn)
            for game_id in conn.joined:
                self._subs.get(game_id, {}).pop(conn, None)

    async def _handle_frame(self, conn: _Conn, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            await self._error(conn, "Invalid JSON.", None)
            return
        if not isinstance(message, dict):
            await self._error(conn, "A request must be a JSON object.", None)
            return
        self.requests.append(message)
        op = wire.read_code(message.get("op"))
        game_id = wire.read_id(message.get("game_id"))
        if op in self.muted_ops:
            return
        handler = self._ops.get(op) if op is not None else None
        if handler is None:
            await self._error(conn, f"Unknown op {message.get('op')!r}.", game_id)
            return
        try:
            user = self._authenticate(conn, message) if wire.OPS[op].needs_session else None
            await handler(conn, user, message)
        except _Refusal as refusal:
            await self._error(conn, refusal.text, game_id)
        except Exception:
            log.exception("games simulator: %s failed", wire.OP_NAMES.get(op, op))
            await self._error(conn, "Internal server error.", game_id)

    def _authenticate(self, conn: _Conn, message: Mapping[str, Any]) -> SimUser:
        if conn.login is not None:
            if self.require_logon and not conn.logged_on:
                raise _Refusal("Log on first (op 100).")
            return conn.login
        head = message.get("header")
        key = head.get("session_key") if isinstance(head, dict) else None
        user = self.sessions.get(key) if isinstance(key, str) else None
        if user is None:
            raise _Refusal("Invalid session key.")
        return user

    # ------------------------------------------------------------ ops

    async def _op_ping(self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]) -> None:
        await self._send(conn, {"res": wire.RES_PONG})

    async def _op_get_opcodes(self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]) -> None:
        # The field names are the vendor's (Instamrkt/slate); the maps come from the op table.
        await self._send(
            conn,
            {
                "res": wire.RES_OPCODES,
                "opcodes": {op.name: code for code, op in wire.OPS.items()},
                "response_codes": {name: code for code, name in wire.RES_NAMES.items()},
            },
        )

    async def _op_logon(self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]) -> None:
        """Op 100 (the vendor's docs): 100 once, 112 when already logged on, 110 when the
        connection has no login digest and the header names no known session either."""
        if self.refuse_logon:
            await self._send(conn, {"res": wire.RES_LOGON_FAILED})
            return
        if conn.logged_on:
            await self._send(conn, {"res": wire.RES_LOGON_ALREADY})
            return
        who = conn.login
        if who is None:
            try:
                who = self._authenticate(conn, msg)
            except _Refusal:
                await self._send(conn, {"res": wire.RES_LOGON_FAILED})
                return
        conn.logged_on = True
        # The vendor's example answers with a "session_key" that is plainly the user's id;
        # the real key is never echoed.
        await self._send(conn, {"res": wire.RES_LOGON_OK, "session_key": str(who.user_id)})

    async def _op_create_and_open_game(
        self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]
    ) -> None:
        game = self._create(user, msg, opened=True)
        self._add_lists(game, msg)
        await self._send(
            conn, self._game_message(wire.RES_CREATED_AND_OPENED, game, with_lists=True)
        )

    async def _op_create_game(self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]) -> None:
        game = self._create(user, msg, opened=False)
        await self._send(conn, self._game_message(wire.RES_CREATED, game, with_lists=False))

    async def _op_open_game(self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]) -> None:
        game = self._game_from(msg)
        self._need_source_admin(user, game.source_id)
        if game.closed:
            raise _Refusal("This game is closed.")
        if game.opened:
            raise _Refusal("This game is already open.")
        self._add_lists(game, msg)
        game.opened = True
        await self._send(conn, self._game_message(self.open_reply_code, game, with_lists=True))

    async def _op_become_an_admin_for_game(
        self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]
    ) -> None:
        game = self._game_from(msg)
        assert user is not None
        reply: dict[str, Any] = {"res": wire.RES_ADMIN_OK, "game_id": game.game_id}
        if not user.source_admin or game.closed:
            reply = {
                "res": wire.RES_ADMIN_REFUSED,
                "game_id": game.game_id,
                "reason": "You have no privileges for this game.",
            }
        elif user.user_id not in game.admins:
            if len(game.admins) >= self.admin_limit:
                reply = {
                    "res": wire.RES_ADMIN_REFUSED,
                    "game_id": game.game_id,
                    "reason": "This game already has enough admins.",
                }
            else:
                game.admins.add(user.user_id)
        await self._send(conn, reply)

    async def _op_get_game_details(
        self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]
    ) -> None:
        await self._send(conn, self._details_message(self._game_from(msg)))

    async def _op_update_game_details(
        self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]
    ) -> None:
        game = self._game_from(msg)
        self._need_game_admin(user, game)
        if game.closed:
            raise _Refusal("This game is closed.")
        if not self._add_lists(game, msg):
            raise _Refusal("Nothing to update: no actions or targets given.")
        await self._send(conn, {"res": wire.RES_UPDATED, "game_id": game.game_id})
        details = self._details_message(game)
        # The real API sends the updater its own copy and also publishes it to every
        # subscriber, so a subscribed updater receives the same 342 twice.
        await self._send(conn, details)
        await self._publish(game.game_id, details)

    async def _op_join_game(self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]) -> None:
        game = self._game_from(msg)
        assert user is not None
        if game.closed:
            raise _Refusal("This game is closed.")
        already = game.game_id in conn.joined
        await self._send(conn, {"res": wire.RES_JOINED, "game_id": game.game_id})
        if already:
            return
        notice = {
            "res": wire.RES_USER_JOINED,
            "game_id": game.game_id,
            "user_id": user.user_id,
            "user_name": user.user_name,
        }
        await self._publish(game.game_id, notice)
        conn.joined.add(game.game_id)
        self._subs.setdefault(game.game_id, {})[conn] = None

    async def _op_leave_game(self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]) -> None:
        game = self._game_from(msg)
        assert user is not None
        was_joined = game.game_id in conn.joined
        conn.joined.discard(game.game_id)
        self._subs.get(game.game_id, {}).pop(conn, None)
        await self._send(conn, {"res": wire.RES_LEFT, "game_id": game.game_id})
        if was_joined:
            notice = {
                "res": wire.RES_USER_LEFT,
                "game_id": game.game_id,
                "user_id": user.user_id,
                "user_name": user.user_name,
            }
            await self._publish(game.game_id, notice)

    async def _op_close_game(self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]) -> None:
        game = self._game_from(msg)
        self._need_game_admin(user, game)
        if game.closed:
            raise _Refusal("This game is already closed.")
        # The strict reading of the document: 362 and 368 go to the game's subscribers only.
        # A closer that has not joined the game hears nothing until the 341 (if it comes).
        for pool in game.pools.values():
            if pool.state == "open" and not pool.manual:
                pool.state = "resolved"
                message = self._pool_message(wire.RES_POOL_RESOLVED, game, pool, "automatic")
                await self._publish(game.game_id, message)
            elif pool.state == "blocked" or (pool.state == "open" and pool.manual):
                # Every close blocks (again) all the pools that still need resolving by hand.
                pool.state = "blocked"
                await self._publish(
                    game.game_id, self._pool_message(wire.RES_BETTING_BLOCKED, game, pool)
                )
        if any(pool.state != "resolved" for pool in game.pools.values()):
            return
        game.closed = True
        await self._publish(
            game.game_id, {"res": wire.RES_CLOSED, "game_id": game.game_id}, also=[conn]
        )
        for subscriber in self._subs.pop(game.game_id, {}):
            subscriber.joined.discard(game.game_id)
        conn.joined.discard(game.game_id)

    async def _op_list_games_for_source(
        self, conn: _Conn, user: SimUser | None, msg: dict[str, Any]
    ) -> None:
        source_id = wire.read_id(msg.get("source_id"))
        if source_id != self.source_id:
            raise _Refusal("Unknown source.")
        games = {
            game.game_id: {
                "status": game.status,
                "name": game.name,
                "type": game.type,
                # The doc's example sends open_at as a string: so does the simulator.
                "open_at": None if game.open_at is None else str(self._out_time(game.open_at)),
                "close_at": self._out_time(game.close_at),
            }
            for game in self.games.values()
            if game.source_id == source_id and not game.closed
        }
        await self._send(conn, {"res": wire.RES_LIST, "source_id": source_id, "games": games})

    # ------------------------------------------------------------ rules

    def _need_source_admin(self, user: SimUser | None, source_id: str) -> None:
        if user is None or not user.source_admin or source_id != self.source_id:
            raise _Refusal("Only admins of the source may do that.")

    def _need_game_admin(self, user: SimUser | None, game: SimGame) -> None:
        self._need_source_admin(user, game.source_id)
        assert user is not None
        if self.require_game_admin and user.user_id not in game.admins:
            raise _Refusal("You are not an admin of this game; become one first (op 616).")

    def _game(self, game_id: str) -> SimGame:
        game = self.games.get(game_id)
        if game is None:
            raise _Refusal("No game with that id.")
        return game

    def _game_from(self, msg: Mapping[str, Any]) -> SimGame:
        game_id = wire.read_id(msg.get("game_id"))
        if game_id is None:
            raise _Refusal("game_id is missing.")
        return self._game(game_id)

    def _create(self, user: SimUser | None, msg: Mapping[str, Any], *, opened: bool) -> SimGame:
        source_id = wire.read_id(msg.get("source_id"))
        if source_id is None:
            raise _Refusal("source_id is missing.")
        if source_id != self.source_id:
            raise _Refusal("Unknown source.")
        self._need_source_admin(user, source_id)
        name = self._text(msg, "game_name")
        game_type = self._text(msg, "type")
        now = wire.now_ms()
        times = {key: self._time(msg, key) for key in ("open_at", "close_at")}
        times |= {key: self._time(msg, key) for key in ("live_start_at", "live_finish_at")}
        open_at = times["open_at"] or now
        if times["close_at"] is not None and times["close_at"] <= max(open_at, now):
            raise _Refusal("close_at must be after open_at and in the future.")
        currency = msg.get("currency")
        hashtag = msg.get("hashtag")
        game = SimGame(
            game_id=self._new_id(),
            source_id=source_id,
            name=name,
            type=game_type,
            opened=opened,
            currency=str(currency) if currency else None,
            hashtag=str(hashtag) if hashtag else "#" + re.sub(r"[^0-9A-Za-z]", "", name.title()),
            open_at=open_at,
            close_at=times["close_at"],
            live_start_at=times["live_start_at"] or now,
            live_finish_at=times["live_finish_at"],
        )
        self.games[game.game_id] = game
        return game

    @staticmethod
    def _text(msg: Mapping[str, Any], key: str) -> str:
        value = msg.get(key)
        if not isinstance(value, str) or not value.strip():
            raise _Refusal(f"{key} is missing.")
        return value.strip()

    @staticmethod
    def _time(msg: Mapping[str, Any], key: str) -> int | None:
        value = msg.get(key)
        if value is None:
            return None
        parsed = wire.parse_time(value)
        if parsed is None:
            raise _Refusal(f"{key} is not a time.")
        return int(parsed.timestamp() * 1000)

    @staticmethod
    def _names(msg: Mapping[str, Any], key: str) -> list[str]:
        value = msg.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            items: list[Any] = value.split(",")
        elif isinstance(value, list):
            items = value
        else:
            raise _Refusal(f"{key} must be a list or a comma-separated string.")
        return [str(item).strip() for item in items if str(item).strip()]

    def _add_lists(self, game: SimGame, msg: Mapping[str, Any]) -> bool:
        """Merge actions and targets in; True when the request carried any."""
        actions = self._names(msg, "actions")
        targets = self._names(msg, "targets")
        for target in targets:
            if any(not part.strip() for part in target.split(":")):
                raise _Refusal(f"Target {target!r} has an empty level.")
        for name in actions:
            game.actions.setdefault(name.lower().replace(" ", "-"), {"name": name})
        for target in targets:
            level = game.targets
            for part in (p.strip() for p in target.split(":")):
                node = level.get(part.lower())
                if node is None:
                    node = {"symbol": _symbol(part), "display_name": part, "targets": {}}
                    level[part.lower()] = node
                level = node["targets"]
        self._ensure_none_target(game)
        return bool(actions or targets)

    @staticmethod
    def _ensure_none_target(game: SimGame) -> None:
        """The API adds a top-level 'none' target when it is missing: automatic pool
        resolution needs it."""
        game.targets.setdefault("none", {"symbol": "non", "display_name": "None", "targets": {}})

    # ------------------------------------------------------------ messages

    def _out_time(self, ms: int | None) -> int | None:
        if ms is None:
            return None
        return ms // 1000 if self.times_in_seconds else ms

    def _game_message(self, res: int, game: SimGame, *, with_lists: bool) -> dict[str, Any]:
        message: dict[str, Any] = {
            "res": res,
            "source_id": game.source_id,
            "game_id": game.game_id,
            "game_name": game.name,
            "type": game.type,
            "open_at": self._out_time(game.open_at),
            "live_start_at": self._out_time(game.live_start_at),
            "live_finish_at": self._out_time(game.live_finish_at),
            "close_at": self._out_time(game.close_at),
            "hashtag": game.hashtag,
        }
        if with_lists:
            message["actions"] = json.loads(json.dumps(game.actions))
            message["targets"] = json.loads(json.dumps(game.targets))
        return message

    def _details_message(self, game: SimGame) -> dict[str, Any]:
        return {
            "res": wire.RES_DETAILS,
            "status": game.status,
            "game_id": game.game_id,
            "name": game.name,
            "hashtag": game.hashtag,
            "past_events": json.loads(json.dumps(game.past_events)),
            "actions": json.loads(json.dumps(game.actions)),
            "currency": game.currency,
            "type": game.type,
            "targets": json.loads(json.dumps(game.targets)),
            "open_at": self._out_time(game.open_at),
            "live_start_at": self._out_time(game.live_start_at),
            "live_finish_at": self._out_time(game.live_finish_at),
            "close_at": self._out_time(game.close_at),
        }

    @staticmethod
    def _pool_message(
        res: int, game: SimGame, pool: SimPool, outcome: str | None = None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "res": res,
            "game_id": game.game_id,
            "pool_id": pool.pool_id,
            "name": pool.name,
            "target_id": pool.target_id,
            "action_id": pool.action_id,
        }
        if outcome is not None:
            message["resolution"] = outcome
        return message

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # ------------------------------------------------------------ sending

    async def _send(self, conn: _Conn, payload: Mapping[str, Any]) -> None:
        await self._send_raw(
            conn, json.dumps({"response_header": wire.response_header(), **payload})
        )

    @staticmethod
    async def _send_raw(conn: _Conn, frame: str) -> None:
        try:
            await conn.ws.send(frame)
        except ConnectionClosed:
            pass

    async def _publish(
        self, game_id: str, payload: Mapping[str, Any], *, also: list[_Conn] | None = None
    ) -> None:
        """Send to every subscriber of the game, plus ``also`` (each connection once)."""
        recipients = dict.fromkeys([*self._subs.get(game_id, {}), *(also or [])])
        for conn in recipients:
            await self._send(conn, payload)

    async def _error(self, conn: _Conn, text: str, game_id: str | None) -> None:
        payload: dict[str, Any] = {"res": wire.RES_ERROR, "text": text}
        if game_id is not None and self.error_game_id:
            payload["game_id"] = game_id
        await self._send(conn, payload)


def _symbol(name: str) -> str:
    """The API's short symbol: the first three letters of the name, lower-cased."""
    compact = re.sub(r"\s+", "", name.lower())
    return compact[:3] or compact


def simulator_from_args(argv: list[str]) -> Simulator:
    """Build a simulator from ``bot simulate games ...`` options."""
    parser = argparse.ArgumentParser(prog="bot simulate games", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0 = any free)")
    parser.add_argument("--source-id", default=DEFAULT_SOURCE_ID, help="the game source id")
    parser.add_argument(
        "--session-key", default=DEFAULT_ADMIN_KEY, help="session key of the source admin"
    )
    parser.add_argument(
        "--player-key",
        action="append",
        default=None,
        help="session key of a non-admin player (repeatable)",
    )
    parser.add_argument("--admin-limit", type=int, default=2, help="admins allowed per game")
    parser.add_argument("--seed", type=int, default=None, help="seed for generated ids")
    parser.add_argument(
        "--times-in-seconds", action="store_true", help="send times in seconds, not millis"
    )
    parser.add_argument(
        "--open-reply-code",
        type=int,
        choices=(wire.RES_OPENED, wire.RES_CREATED_AND_OPENED),
        default=3402,
    )
    parser.add_argument(
        "--demo", action="store_true", help="start with an open demo game to list and join"
    )
    parser.add_argument(
        "--require-digest",
        action="store_true",
        help="refuse connections without the vendor's ?id=&n=&h= login query",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if args.admin_limit < 1:
        parser.error("--admin-limit must be at least 1")
    sessions = {args.session_key: SimUser(1, "games-bot", source_admin=True)}
    for number, key in enumerate(args.player_key or [DEFAULT_PLAYER_KEY], start=2):
        sessions[key] = SimUser(number, f"player{number - 1}")
    sim = GamesSimulator(
        args.host,
        args.port,
        source_id=args.source_id,
        sessions=sessions,
        admin_limit=args.admin_limit,
        seed=args.seed,
        times_in_seconds=args.times_in_seconds,
        open_reply_code=args.open_reply_code,
        require_digest=args.require_digest,
    )
    if args.demo:
        sim.add_demo_game()
    return sim
