"""A local DeepBot: the documented websocket API over a real socket, users kept in memory.

It answers exactly as the protocol document and the observed installs do (see
``shared/protocols``): nothing is accepted before ``api|register|<secret>``, a wrong secret
is answered ``incorrect api secret``, later calls without a registration ``not authorized``,
requests it does not understand get no answer at all, and escrow moves points between a
viewer's balance and a held amount. Tests, benchmarks and ``simulate: true`` use it;
``bot simulate deepbot --port 3337 --secret S`` runs it on its own.

Beyond the document, it follows the public clients that ran against real installs:

- ``del_points|user|n|True/False`` (ekimekim/pylibs ``deepclient.py``, fixed against a real
  install): with ``False`` or no flag, taking more than the viewer has answers ``success`` and
  sets the balance to 0; with ``True`` it answers ``failed`` and changes nothing.
- ``set_vip`` for an unknown user answers ``failed`` (``deepclient.py`` maps it to
  UserNotFound), not "User not found".
- Points are whole numbers (both clients hold them in an ``Int32``; ``deepclient.py`` checks
  ``0 <= points < 2**31``): a fractional or larger amount is ``failed`` unless ``decimals``.
- ``get_users`` and ``get_top_users`` take an optional offset and limit (djkaty/DeepBot
  ``DeepBot.cs``: ``api|get_users|offset|count``), answer a list of ``get_user`` objects, at
  most 100 (both clients page by 100), and ``List empty`` past the end (both check it).
  ``get_users_count`` takes no argument and answers the count (``DeepBot.cs``).
- ``set_vip_expiry|user|yyyy-MM-ddTHH:mm:ss`` (``DeepBot.cs``, .NET's "s" format).
- ``msg_as_json``: ``DeepBot.cs`` runs ``Json.Decode`` on ``msg``, because some builds send an
  object or list as a JSON-encoded string; this option sends them that way.

Test hooks (plain attributes and methods, no patching needed): :attr:`silent` and
:attr:`silent_functions` stop answers, :meth:`fail` makes chosen calls fail, :meth:`cut`
closes the connection when a chosen call arrives (before or after applying it),
:meth:`push` sends stray non-JSON frames, :meth:`drop_connections` and :meth:`restart` cut
clients off, :meth:`forget_registrations` makes DeepBot "forget" who registered,
:attr:`reply_delay` slows every answer, :attr:`accept_delay` slows the websocket handshake,
and :attr:`received` records every frame that arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bot.simulation import Simulator

from .protocol import (
    ADD_POINTS,
    ADD_TO_ESCROW,
    ALL_USERS,
    CANCEL_ESCROW,
    COMMIT_USER_ESCROW,
    DEL_POINTS,
    GET_HOURS,
    GET_POINTS,
    GET_RANK,
    GET_TOP_USERS,
    GET_USER,
    GET_USERS,
    GET_USERS_COUNT,
    MAX_WHOLE_POINTS,
    MSG_BAD_SECRET,
    MSG_BAD_VIP_LENGTH,
    MSG_BAD_VIP_LEVEL,
    MSG_FAILED,
    MSG_LIST_EMPTY,
    MSG_NO_ESCROW,
    MSG_NOT_AUTHORIZED,
    MSG_NOT_ENOUGH_POINTS,
    MSG_POINTS_NOT_POSITIVE,
    MSG_SUCCESS,
    MSG_USER_NOT_FOUND,
    MSG_USER_NOT_FOUND_OLD,
    PAGE_LIMIT,
    PREFIX,
    REGISTER,
    SEPARATOR,
    SET_POINTS,
    SET_VIP,
    SET_VIP_EXPIRY,
    VIP_LEVELS,
)

DEFAULT_PORT = 3337
DEFAULT_SECRET = "simulator-secret"

#: DeepBot writes this for a date that never happened (C#'s DateTime.MinValue).
NEVER = "0001-01-01T00:00:00"

#: Rank names by the watch hours they start at; DeepBot adds a star every 60 hours.
RANKS: tuple[tuple[int, str], ...] = (
    (0, "Recruit"),
    (10, "Private"),
    (40, "Corporal"),
    (100, "Sergeant"),
    (400, "Lieutenant"),
    (1000, "Captain"),
)

_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_PLAIN_INTEGER = re.compile(r"[+-]?\d+")


@dataclass
class SimUser:
    """One viewer; ``rank`` ``None`` means "computed from watch time like DeepBot does"."""

    name: str
    points: Decimal = Decimal(0)
    watch_minutes: Decimal = Decimal(0)
    vip: int = 10
    vip_expiry: datetime | None = None
    mod: int = 0
    rank: str | None = None
    escrow: Decimal = Decimal(0)
    join_date: datetime | None = field(default_factory=lambda: datetime.now(UTC))
    last_seen: datetime | None = field(default_factory=lambda: datetime.now(UTC))

    @property
    def hours(self) -> Decimal:
        return self.watch_minutes / 60

    def rank_name(self) -> str:
        if self.rank is not None:
            return self.rank
        hours = self.hours
        start, name = RANKS[0]
        for threshold, rank in RANKS:
            if hours >= threshold:
                start, name = threshold, rank
        return f"{name} - Star {1 + int((hours - start) // 60)}"


def example_user() -> SimUser:
    """The viewer from the protocol document's ``get_user`` example."""
    return SimUser(
        name="expertsonline",
        points=Decimal("720.0"),
        watch_minutes=Decimal("13125.0"),
        vip=10,
        mod=5,
        rank="Sergeant - Star 2",
        join_date=datetime(2014, 7, 5, 18, 9, 10, 315608, tzinfo=UTC),
        last_seen=datetime(2015, 3, 1, 4, 17, 9, 545139, tzinfo=UTC),
        vip_expiry=datetime(2014, 12, 9, tzinfo=timezone(timedelta(hours=8))),
    )


def format_timestamp(moment: datetime | None) -> str:
    """DeepBot's round-trip format: 7-digit fraction, ``Z`` for UTC, offsets otherwise."""
    if moment is None:
        return NEVER
    offset = moment.utcoffset()
    if offset is None or offset == timedelta(0):
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    if moment.microsecond == 0:
        return moment.isoformat(timespec="seconds")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0" + moment.isoformat()[-6:]


def user_from_record(record: dict[str, Any]) -> SimUser:
    """Read one viewer in ``get_user``'s shape (plus optional ``rank`` and ``escrow``)."""
    name = record.get("user")
    if not isinstance(name, str) or not name or SEPARATOR in name:
        raise ValueError("every user needs a 'user' name without '|'")

    def amount(key: str) -> Decimal:
        try:
            value = Decimal(str(record.get(key, 0)))
        except InvalidOperation:
            raise ValueError(f"{name}: {key} is not a number") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"{name}: {key} must be a number, zero or more")
        return value

    def moment(key: str) -> datetime | None:
        value = record.get(key)
        if value in (None, "", NEVER):
            return None
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name}: {key} is not an ISO 8601 date") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    vip = record.get("vip", 10)
    if vip not in VIP_LEVELS:
        raise ValueError(f"{name}: vip must be one of 0, 1, 2, 3, 10")
    rank = record.get("rank")
    return SimUser(
        name=name,
        points=amount("points"),
        watch_minutes=amount("watch_time"),
        vip=int(vip),
        vip_expiry=moment("vip_expiry"),
        mod=int(record.get("mod", 0)),
        rank=str(rank) if rank is not None else None,
        escrow=amount("escrow"),
        join_date=moment("join_date"),
        last_seen=moment("last_seen"),
    )


def load_users(path: str | Path) -> list[SimUser]:
    """Read a JSON data file: a list of user records, or ``{"users": [...]}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = data.get("users")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError(f"{path}: expected a list of user objects or {{'users': [...]}}")
    return [user_from_record(item) for item in data]


class DeepBotSimulator(Simulator):
    """A DeepBot websocket server on ``host:port`` (port 0 picks a free one).

    ``not_found_message`` is what an unknown user gets from the ``get_*`` and ``set_vip``
    calls: ``"User not found"`` by default, ``"user not found"`` like older builds, or
    ``None`` for the installs that do not answer at all. ``decimal_comma`` writes
    ``get_points``/``get_hours`` as ``"13,37"`` like some locales do.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        secret: str = DEFAULT_SECRET,
        users: Iterable[SimUser] = (),
        seed_example: bool = True,
        data_file: str | Path | None = None,
        not_found_message: str | None = MSG_USER_NOT_FOUND,
        decimal_comma: bool = False,
        received_limit: int = 10_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        decimals: bool = False,
        msg_as_json: bool = False,
    ) -> None:
        self.host = host
        #: Accept amounts with decimals (an install configured so); else whole points only.
        self.decimals = decimals
        #: Send object and list ``msg`` values as JSON-encoded strings (see the module doc).
        self.msg_as_json = msg_as_json
        #: Seconds to hold each new connection before the websocket handshake completes.
        self.accept_delay = 0.0
        #: Act like an install that ignores ``del_points``'s ``True`` (takes what there is).
        self.ignore_fail_flag = False
        #: Called with each request frame before it is handled (e.g. to spend points
        #: meanwhile, as DeepBot's own games do).
        self.before_request: Callable[[str], None] | None = None
        self.port = port
        self.secret = secret
        self.not_found_message = not_found_message
        self.decimal_comma = decimal_comma
        self.clock = clock
        self.users: dict[str, SimUser] = {}
        if seed_example:
            self.add_user(example_user())
        if data_file is not None:
            for user in load_users(data_file):
                self.add_user(user)
        for user in users:
            self.add_user(user)
        #: Answer nothing at all (also not ``register``), as a hung DeepBot would.
        self.silent = False
        #: Functions that get no answer, as DeepBot does for requests it does not understand.
        self.silent_functions: set[str] = set()
        #: Seconds to wait before each answer (answers stay in order).
        self.reply_delay = 0.0
        #: Every text frame received, oldest first (bounded).
        self.received: deque[str] = deque(maxlen=received_limit)
        self.register_attempts = 0
        self.registrations = 0
        self._failures: dict[tuple[str, str], list[Any]] = {}
        self._cuts: list[tuple[str, str | None, bool]] = []
        self._server: Server | None = None
        self._connections: set[ServerConnection] = set()
        self._registered: set[ServerConnection] = set()
        # function -> (fewest arguments, most arguments, handler)
        self._handlers: dict[str, tuple[int, int, Callable[..., tuple[str, Any]]]] = {
            GET_USER: (1, 1, self._get_user),
            GET_POINTS: (1, 1, self._get_points),
            GET_HOURS: (1, 1, self._get_hours),
            GET_RANK: (1, 1, self._get_rank),
            SET_POINTS: (2, 2, self._set_points),
            ADD_POINTS: (2, 2, self._add_points),
            DEL_POINTS: (2, 3, self._del_points),
            ADD_TO_ESCROW: (2, 2, self._add_to_escrow),
            COMMIT_USER_ESCROW: (1, 1, self._commit_user_escrow),
            CANCEL_ESCROW: (1, 1, self._cancel_escrow),
            SET_VIP: (3, 3, self._set_vip),
            SET_VIP_EXPIRY: (2, 2, self._set_vip_expiry),
            GET_USERS: (0, 2, self._get_users),
            GET_TOP_USERS: (0, 2, self._get_top_users),
            GET_USERS_COUNT: (0, 0, self._get_users_count),
        }

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await serve(
            self._serve,
            self.host,
            self.port,
            compression=None,
            ping_interval=None,
            process_request=self._hold_handshake,
        )
        # Keep the port: a restart must come back where the clients reconnect to.
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://{self.host}:{self.port}"

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        self._connections.clear()
        self._registered.clear()

    async def restart(self) -> None:
        """Stop and start again on the same port: every client is cut off and must
        reconnect and register again; the users and their balances are kept."""
        await self.stop()
        await self.start()

    # --- test hooks ----------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def add_user(self, user: SimUser) -> SimUser:
        self.users[user.name.lower()] = user
        return user

    def user(self, name: str) -> SimUser:
        """The viewer by name, case-insensitive; ``KeyError`` if unknown."""
        return self.users[name.lower()]

    def fail(
        self,
        function: str,
        user: str,
        msg: str | None = MSG_FAILED,
        times: int | None = 1,
        *,
        after: int = 0,
    ) -> None:
        """Answer the next ``times`` calls of ``function`` for ``user`` with ``msg`` instead
        of doing them (``None``: until :meth:`clear_failures`); ``msg=None`` is silence.
        ``after`` lets that many matching calls through normally first."""
        self._failures[(function, user.lower())] = [msg, times, after]

    def clear_failures(self) -> None:
        self._failures.clear()

    def cut(self, function: str, *, apply: bool, user: str | None = None) -> None:
        """When the next ``function`` request (for ``user``, if given) arrives, close that
        connection without an answer; ``apply`` decides whether DeepBot applied the request
        first (the answer was lost) or not (the request was lost)."""
        self._cuts.append((function, user.lower() if user else None, apply))

    async def _hold_handshake(self, ws: ServerConnection, request: Any) -> None:
        if self.accept_delay:
            await asyncio.sleep(self.accept_delay)

    async def push(self, frame: str) -> None:
        """Send a raw frame (e.g. ``music|...``) to every connected client."""
        for ws in list(self._connections):
            try:
                await ws.send(frame)
            except ConnectionClosed:
                pass

    async def drop_connections(self) -> None:
        """Close every client connection; the server keeps listening."""
        await asyncio.gather(
            *(ws.close(1011, "simulated outage") for ws in list(self._connections)),
            return_exceptions=True,
        )

    def forget_registrations(self) -> None:
        """Act as if DeepBot restarted its API module: connected clients must register again."""
        self._registered.clear()

    # --- protocol ------------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        self._connections.add(ws)
        try:
            async for frame in ws:
                if not isinstance(frame, str):
                    continue
                self.received.append(frame)
                if self.silent:
                    continue
                if self.before_request is not None:
                    self.before_request(frame)
                cut = self._cut_for(frame)
                if cut is not None:
                    if cut:
                        self.handle(frame, ws)
                    await ws.close(1011, "simulated cut")
                    break
                reply = self.handle(frame, ws)
                if reply is None:
                    continue
                if self.reply_delay:
                    await asyncio.sleep(self.reply_delay)
                await ws.send(reply)
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(ws)
            self._registered.discard(ws)

    def _cut_for(self, frame: str) -> bool | None:
        parts = frame.split(SEPARATOR)
        for index, (function, user, apply) in enumerate(self._cuts):
            if len(parts) > 1 and parts[1] == function:
                if user is not None and (len(parts) < 3 or parts[2].lower() != user):
                    continue
                del self._cuts[index]
                return apply
        return None

    def handle(self, frame: str, ws: ServerConnection | None = None) -> str | None:
        """The reply frame for one request frame, or ``None`` when DeepBot stays silent."""
        parts = frame.split(SEPARATOR)
        if len(parts) < 2 or parts[0] != PREFIX:
            return None
        function, args = parts[1], parts[2:]
        if function == REGISTER:
            self.register_attempts += 1
            if len(args) == 1 and args[0] == self.secret:
                self.registrations += 1
                if ws is not None:
                    self._registered.add(ws)
                return _reply(REGISTER, REGISTER, MSG_SUCCESS)
            return _reply(REGISTER, REGISTER, MSG_BAD_SECRET)
        if function in self.silent_functions:
            return None
        param = args[0] if args else ""
        if ws is not None and ws not in self._registered:
            return _reply(function, param, MSG_NOT_AUTHORIZED)
        handler = self._handlers.get(function)
        if handler is None or not handler[0] <= len(args) <= handler[1]:
            return None
        failure = self._failures.get((function, param.lower()))
        if failure is not None and failure[2] > 0:
            failure[2] -= 1
            failure = None
        if failure is not None:
            msg, times, _ = failure
            if times is not None:
                failure[1] = times - 1
                if failure[1] <= 0:
                    del self._failures[(function, param.lower())]
            return None if msg is None else _reply(function, param, msg)
        name, msg = handler[2](*args)
        if msg is None:
            return None
        if self.msg_as_json and isinstance(msg, dict | list):
            msg = json.dumps(msg)
        return _reply(function, name, msg)

    def _number(self, value: Decimal) -> str:
        text = f"{value:.2f}"
        return text.replace(".", ",") if self.decimal_comma else text

    def _get_user(self, name: str) -> tuple[str, Any]:
        user = self.users.get(name.lower())
        if user is None:
            return name, self.not_found_message
        return user.name, self._record(user)

    def _record(self, user: SimUser) -> dict[str, Any]:
        return {
            "user": user.name,
            "points": float(user.points),
            "watch_time": float(user.watch_minutes),
            "vip": user.vip,
            "mod": user.mod,
            "join_date": format_timestamp(user.join_date),
            "last_seen": format_timestamp(user.last_seen),
            "vip_expiry": format_timestamp(user.vip_expiry),
        }

    def _page(self, users: list[SimUser], offset: str, limit: str) -> tuple[str, Any]:
        if not (_PLAIN_INTEGER.fullmatch(offset or "0") and _PLAIN_INTEGER.fullmatch(limit)):
            return offset, MSG_FAILED
        start, count = int(offset or "0"), min(int(limit), PAGE_LIMIT)
        page = users[start : start + count] if start >= 0 and count > 0 else []
        if not page:
            return offset, MSG_LIST_EMPTY
        return offset, [self._record(user) for user in page]

    def _get_users(self, offset: str = "0", limit: str = str(PAGE_LIMIT)) -> tuple[str, Any]:
        return self._page(list(self.users.values()), offset, limit)

    def _get_top_users(self, offset: str = "0", limit: str = str(PAGE_LIMIT)) -> tuple[str, Any]:
        ranked = sorted(self.users.values(), key=lambda user: user.points, reverse=True)
        return self._page(ranked, offset, limit)

    def _get_users_count(self) -> tuple[str, Any]:
        return "", len(self.users)

    def _set_vip_expiry(self, name: str, when: str) -> tuple[str, Any]:
        user = self.users.get(name.lower())
        if user is None:
            return name, MSG_FAILED
        try:
            moment = datetime.strptime(when, "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return user.name, MSG_FAILED
        user.vip_expiry = moment.replace(tzinfo=UTC)
        return user.name, MSG_SUCCESS

    def _get_points(self, name: str) -> tuple[str, Any]:
        user = self.users.get(name.lower())
        if user is None:
            return name, self.not_found_message
        return user.name, self._number(user.points)

    def _get_hours(self, name: str) -> tuple[str, Any]:
        user = self.users.get(name.lower())
        if user is None:
            return name, self.not_found_message
        return user.name, self._number(user.hours)

    def _get_rank(self, name: str) -> tuple[str, Any]:
        user = self.users.get(name.lower())
        if user is None:
            return name, self.not_found_message
        return user.name, user.rank_name()

    def _amount(self, value: str) -> Decimal | None:
        """An amount as this install reads it: ``Int32`` whole points unless ``decimals``."""
        amount = _amount(value)
        if amount is None or self.decimals:
            return amount
        if amount != amount.to_integral_value() or "." in value or amount > MAX_WHOLE_POINTS:
            return None
        return amount

    def _set_points(self, name: str, value: str) -> tuple[str, Any]:
        user, amount = self.users.get(name.lower()), self._amount(value)
        if user is None or amount is None or amount < 0:
            return name, MSG_FAILED
        user.points = amount
        return user.name, MSG_SUCCESS

    def _add_points(self, name: str, value: str) -> tuple[str, Any]:
        user, amount = self.users.get(name.lower()), self._amount(value)
        if user is None or amount is None or amount <= 0:
            return name, MSG_FAILED
        user.points += amount
        return user.name, MSG_SUCCESS

    def _del_points(self, name: str, value: str, strict: str = "False") -> tuple[str, Any]:
        user, amount = self.users.get(name.lower()), self._amount(value)
        if user is None or amount is None or amount <= 0:
            return name, MSG_FAILED
        if amount > user.points:
            if strict.strip().lower() == "true" and not self.ignore_fail_flag:
                return user.name, MSG_FAILED
            user.points = Decimal(0)  # deepclient.py: "silently set points to 0"
            return user.name, MSG_SUCCESS
        user.points -= amount
        return user.name, MSG_SUCCESS

    def _add_to_escrow(self, name: str, value: str) -> tuple[str, Any]:
        amount = self._amount(value)
        if amount is None or amount <= 0:
            return name, MSG_POINTS_NOT_POSITIVE
        user = self.users.get(name.lower())
        if user is None:
            return name, MSG_USER_NOT_FOUND_OLD
        if user.points < amount:
            return user.name, MSG_NOT_ENOUGH_POINTS
        user.points -= amount
        user.escrow += amount
        return user.name, MSG_SUCCESS

    def _commit_user_escrow(self, name: str) -> tuple[str, Any]:
        user = self.users.get(name.lower())
        if user is None:
            return name, MSG_USER_NOT_FOUND_OLD
        if user.escrow <= 0:
            return user.name, MSG_NO_ESCROW
        user.escrow = Decimal(0)
        return user.name, MSG_SUCCESS

    def _cancel_escrow(self, name: str) -> tuple[str, Any]:
        if name.lower() == ALL_USERS:
            holders = [user for user in self.users.values() if user.escrow > 0]
            for user in holders:
                user.points += user.escrow
                user.escrow = Decimal(0)
            return name, MSG_SUCCESS if holders else MSG_NO_ESCROW
        user = self.users.get(name.lower())
        if user is None:
            return name, MSG_USER_NOT_FOUND_OLD
        if user.escrow <= 0:
            return user.name, MSG_NO_ESCROW
        user.points += user.escrow
        user.escrow = Decimal(0)
        return user.name, MSG_SUCCESS

    def _set_vip(self, name: str, level: str, days: str) -> tuple[str, Any]:
        user = self.users.get(name.lower())
        if user is None:
            return name, MSG_FAILED  # deepclient.py: "failed" means an unknown user here
        if not _PLAIN_INTEGER.fullmatch(level) or int(level) not in VIP_LEVELS:
            return user.name, MSG_BAD_VIP_LEVEL
        if not _PLAIN_INTEGER.fullmatch(days) or int(days) < 0:
            return user.name, MSG_BAD_VIP_LENGTH
        now = self.clock()
        start = user.vip_expiry if user.vip_expiry and user.vip_expiry > now else now
        try:
            user.vip_expiry = start + timedelta(days=int(days))
        except OverflowError:
            return user.name, MSG_BAD_VIP_LENGTH
        user.vip = int(level)
        return user.name, MSG_SUCCESS


def _reply(function: str, param: str, msg: Any) -> str:
    return json.dumps({"function": function, "param": param, "msg": msg})


def _amount(text: str) -> Decimal | None:
    """A number as DeepBot's invariant-culture parser reads it; ``None`` if it is not one."""
    if not _PLAIN_NUMBER.fullmatch(text):
        return None
    return Decimal(text)


def _user_option(text: str) -> SimUser:
    name, _, rest = text.partition(":")
    points, _, minutes = rest.partition(":")
    if not name or SEPARATOR in name:
        raise argparse.ArgumentTypeError(f"not a user name: {text!r}")
    try:
        user = SimUser(
            name=name, points=Decimal(points or "0"), watch_minutes=Decimal(minutes or "0")
        )
    except InvalidOperation:
        user = None
    if (
        user is None
        or not (user.points.is_finite() and user.watch_minutes.is_finite())
        or (user.points < 0 or user.watch_minutes < 0)
    ):
        raise argparse.ArgumentTypeError(f"expected NAME[:POINTS[:MINUTES]], got {text!r}")
    return user


def simulator_from_args(argv: list[str]) -> DeepBotSimulator:
    """Build a simulator from ``bot simulate deepbot`` options."""
    parser = argparse.ArgumentParser(
        prog="bot simulate deepbot", description="Run a local DeepBot websocket API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--secret",
        default=os.environ.get("DEEPBOT_SECRET", DEFAULT_SECRET),
        help="the client API secret to accept (default: $DEEPBOT_SECRET or a fixed test value)",
    )
    parser.add_argument("--data", type=Path, help="JSON file of users in get_user's shape")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        type=_user_option,
        metavar="NAME[:POINTS[:MINUTES]]",
        help="add a user (repeatable)",
    )
    parser.add_argument(
        "--no-example", action="store_true", help="do not seed the doc's example user"
    )
    parser.add_argument(
        "--not-found",
        choices=["upper", "lower", "silent"],
        default="upper",
        help="answer for unknown users: 'User not found', 'user not found' or nothing",
    )
    parser.add_argument(
        "--decimal-comma", action="store_true", help="write numbers as 13,37 like some locales"
    )
    parser.add_argument(
        "--decimals", action="store_true", help="accept amounts with decimals (else whole points)"
    )
    parser.add_argument(
        "--msg-as-json",
        action="store_true",
        help="send object and list replies as JSON-encoded strings, as some builds do",
    )
    options = parser.parse_args(argv)
    if not options.secret or SEPARATOR in options.secret:
        parser.error("--secret must be non-empty and cannot contain '|'")
    not_found = {"upper": MSG_USER_NOT_FOUND, "lower": MSG_USER_NOT_FOUND_OLD, "silent": None}
    try:
        return DeepBotSimulator(
            host=options.host,
            port=options.port,
            secret=options.secret,
            users=options.user,
            seed_example=not options.no_example,
            data_file=options.data,
            not_found_message=not_found[options.not_found],
            decimal_comma=options.decimal_comma,
            decimals=options.decimals,
            msg_as_json=options.msg_as_json,
        )
    except (OSError, ValueError) as exc:
        parser.error(f"--data: {exc}")
