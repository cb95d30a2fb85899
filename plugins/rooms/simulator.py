"""A local VS Media rooms API: ``POST /customer?key=KEY`` with form fields, over real HTTP.

It checks the key and each function's required fields, keeps every performer's member list,
appends ``_####`` to nicknames, purges members not pinged within ``purge_after`` seconds
(configurable, so tests need not wait 10 s), and refuses updateCredits for customers that
never joined as registered (or were not seeded with ``registered``). Replies use the API's
relaxed literal (``{ success: true, message: "" }``, labelled ``text/xml``) unless JSON is
asked for, by ``json_replies=True`` or ``?format=json`` on the request.

Like the real API, every refusal is HTTP 200 with ``success: false``; only the fault hooks
(:meth:`RoomsSimulator.fail`) produce HTTP errors, garbled bodies, hangs or dropped sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import re
import urllib.parse
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from bot.simulation import Simulator

from .http_server import HttpRequest, HttpResponse, HttpServer
from .replies import format_relaxed

if TYPE_CHECKING:
    from .config import RoomsConfig

log = logging.getLogger(__name__)

DEFAULT_KEY = "sim-key"
"""The key the simulator accepts when none is given (also with ``simulate: true``)."""

FaultKind = Literal["malformed", "http_error", "hang", "drop", "body", "lost"]

_INTEGER = re.compile(r"-?\d{1,10}")
_MALFORMED_BODY = '{ success: true, message: "'  # cut off mid-string, as a broken proxy might


class _Refusal(Exception):
    """A request the API answers with ``success: false`` and this message."""


@dataclass(slots=True)
class _Member:
    performer_id: int
    nickname: str
    display_nickname: str
    customer_id: int | None
    registered: bool
    credits: int
    ip_address: str
    joined_at: float
    last_seen: float
    pings: int = 0


@dataclass(frozen=True, slots=True)
class RoomMember:
    """A snapshot of one member for tests; times are the event loop's clock."""

    performer_id: int
    nickname: str
    display_nickname: str
    customer_id: int | None
    registered: bool
    credits: int
    ip_address: str
    joined_at: float
    last_seen: float
    pings: int


@dataclass(frozen=True, slots=True)
class ReceivedCall:
    """One request as received (the key is not kept, only whether it matched)."""

    function: str
    fields: dict[str, str]
    key_ok: bool
    fault: FaultKind | None
    success: bool | None


@dataclass(slots=True)
class _Fault:
    kind: FaultKind
    remaining: int | None
    until: float | None
    status: int
    body: str
    functions: frozenset[str] | None
    hang: float


@dataclass(slots=True)
class _State:
    rooms: dict[int, list[_Member]] = field(default_factory=dict)
    credits: dict[int, int] = field(default_factory=dict)


class RoomsSimulator(Simulator):
    """The rooms API on ``host:port`` (port 0: any free port); ``url`` is set by start()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str = DEFAULT_KEY,
        purge_after: float = 30.0,
        json_replies: bool = False,
        seed: int | None = None,
        registered: Mapping[int, int] | None = None,
        purge_check: float | None = None,
    ) -> None:
        if not key:
            raise ValueError("the simulator needs a non-empty key")
        if purge_after <= 0:
            raise ValueError("purge_after must be more than 0 seconds")
        self.host = host
        self.port = port
        self.key = key
        self.purge_after = purge_after
        self.json_replies = json_replies
        self.purge_check = purge_check or min(1.0, purge_after / 4)
        self.calls: list[ReceivedCall] = []
        self._rng = random.Random(seed)
        self._state = _State(credits=dict(registered or {}))
        self._faults: list[_Fault] = []
        self._server = HttpServer(self._handle)
        self._purger: asyncio.Task[None] | None = None
        self._running = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        host, port = await self._server.start(self.host, self.port)
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        self._purger = asyncio.create_task(self._purge_loop(), name="rooms-sim-purge")
        self._running = True
        log.info("rooms simulator listening on %s", self.url)

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await self._server.stop()

    # -- test hooks ----------------------------------------------------------------------

    def members(self, performer_id: int) -> list[RoomMember]:
        """Who is in a performer's room now (purging the overdue first)."""
        self.purge()
        return [_snapshot(m) for m in self._state.rooms.get(performer_id, [])]

    def rooms(self) -> dict[int, list[RoomMember]]:
        """Every non-empty room's member list."""
        self.purge()
        return {pid: [_snapshot(m) for m in ms] for pid, ms in self._state.rooms.items() if ms}

    def credits(self, customer_id: int) -> int | None:
        """A registered customer's balance as the API knows it; None if unregistered."""
        return self._state.credits.get(customer_id)

    @property
    def credits_by_customer(self) -> dict[int, int]:
        return dict(self._state.credits)

    def register_customer(self, customer_id: int, credits: int = 0) -> None:
        """Make a customer known as registered without a joinRoom."""
        self._state.credits[customer_id] = credits

    def calls_of(self, function: str) -> list[ReceivedCall]:
        return [c for c in self.calls if c.function == function]

    def fail(
        self,
        kind: FaultKind,
        *,
        times: int | None = 1,
        seconds: float | None = None,
        status: int = 503,
        body: str = "",
        functions: Collection[str] | None = None,
        hang: float = 30.0,
    ) -> None:
        """Misbehave for the next ``times`` requests (None: unlimited) and/or ``seconds``.

        ``malformed``: HTTP 200 with a cut-off body; ``http_error``: ``status`` with a plain
        body; ``hang``: answer nothing for ``hang`` seconds, then drop; ``drop``: close the
        connection at once; ``body``: HTTP 200 with ``body`` verbatim. Only requests for
        ``functions`` (all when None) count. A faulted request changes no state, except
        ``lost``: the request is carried out as usual, then the connection is closed before
        the answer is sent (the reply was lost on the way back).
        """
        loop = asyncio.get_running_loop()
        self._faults.append(
            _Fault(
                kind=kind,
                remaining=times,
                until=None if seconds is None else loop.time() + seconds,
                status=status,
                body=body,
                functions=None if functions is None else frozenset(functions),
                hang=hang,
            )
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def purge(self) -> list[RoomMember]:
        """Remove members not pinged within ``purge_after``; returns who was removed."""
        now = asyncio.get_running_loop().time()
        purged: list[RoomMember] = []
        for performer_id, members in list(self._state.rooms.items()):
            stale = [m for m in members if now - m.last_seen > self.purge_after]
            for member in stale:
                members.remove(member)
                purged.append(_snapshot(member))
            if not members:
                del self._state.rooms[performer_id]
        return purged

    # -- HTTP ----------------------------------------------------------------------------

    async def _handle(self, request: HttpRequest) -> HttpResponse | None:
        if request.path.rstrip("/") != "/customer":
            return HttpResponse(404, b"Not Found\n")
        if request.method != "POST":
            return HttpResponse(405, b"Method Not Allowed\n", headers={"Allow": "POST"})
        fields = _form_fields(request)
        function = fields.get("function", "")
        key_ok = request.query.get("key", [""])[-1] == self.key
        shown = {k: v for k, v in fields.items() if k != "key"}
        fault = self._take_fault(function)
        if fault is not None and fault.kind != "lost":
            self.calls.append(ReceivedCall(function, shown, key_ok, fault.kind, None))
            return await self._faulty(fault)
        as_json = self.json_replies or request.query.get("format", [""])[-1] == "json"
        try:
            if not key_ok:
                raise _Refusal("Invalid API key.")
            self.purge()
            extra = self._dispatch(function, fields)
        except _Refusal as refusal:
            lost = fault.kind if fault is not None else None
            self.calls.append(ReceivedCall(function, shown, key_ok, lost, False))
            return None if lost else _reply({"success": False, "message": str(refusal)}, as_json)
        if fault is not None:  # "lost": done, but the answer never leaves
            self.calls.append(ReceivedCall(function, shown, key_ok, fault.kind, True))
            return None
        self.calls.append(ReceivedCall(function, shown, key_ok, None, True))
        return _reply({"success": True, "message": "", **extra}, as_json)

    def _take_fault(self, function: str) -> _Fault | None:
        now = asyncio.get_running_loop().time()
        for fault in list(self._faults):
            if fault.until is not None and now >= fault.until:
                self._faults.remove(fault)
                continue
            if fault.functions is not None and function not in fault.functions:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            return fault
        return None

    async def _faulty(self, fault: _Fault) -> HttpResponse | None:
        if fault.kind == "malformed":
            return HttpResponse(200, _MALFORMED_BODY.encode(), "text/xml; charset=utf-8")
        if fault.kind == "body":
            return HttpResponse(200, fault.body.encode(), "text/xml; charset=utf-8")
        if fault.kind == "http_error":
            return HttpResponse(fault.status, b"Service Unavailable\n")
        if fault.kind == "hang":
            await asyncio.sleep(fault.hang)
        return None  # hang (after waiting) and drop: close without answering

    # -- the API ------------------------------------------------------------------------

    def _dispatch(self, function: str, fields: dict[str, str]) -> dict[str, object]:
        if function == "joinRoom":
            return self._join(fields)
        if function in ("leaveRoom", "pingRoom"):
            performer_id = _integer(fields, "performerId", minimum=1)
            customer_id = _integer(fields, "customerId", minimum=1, required=False)
            nickname = _text(fields, "nickname")
            member = self._find(performer_id, customer_id, nickname)
            if member is None:
                raise _Refusal("Customer is not in this room.")
            if function == "leaveRoom":
                self._state.rooms[performer_id].remove(member)
                if not self._state.rooms[performer_id]:
                    del self._state.rooms[performer_id]
            else:
                member.last_seen = asyncio.get_running_loop().time()
                member.pings += 1
            return {}
        if function == "updateCredits":
            customer_id = _integer(fields, "customerId", minimum=1)
            credits = _integer(fields, "credits", minimum=0)
            assert customer_id is not None and credits is not None
            if customer_id not in self._state.credits:
                raise _Refusal("Credits can only be updated for registered customers.")
            self._state.credits[customer_id] = credits
            for members in self._state.rooms.values():
                for member in members:
                    if member.customer_id == customer_id:
                        member.credits = credits
            return {}
        if not function:
            raise _Refusal("Missing required field: function.")
        raise _Refusal("Unknown function.")

    def _join(self, fields: dict[str, str]) -> dict[str, object]:
        performer_id = _integer(fields, "performerId", minimum=1)
        nickname = _text(fields, "nickname")
        customer_id = _integer(fields, "customerId", minimum=1, required=False)
        ip_address = _text(fields, "ipAddress")
        registered = _integer(fields, "registered", minimum=0)
        credits = _integer(fields, "credits", minimum=0)
        assert performer_id is not None and registered is not None and credits is not None
        if registered not in (0, 1):
            raise _Refusal("Invalid registered: must be 0 or 1.")
        if registered and customer_id is None:
            raise _Refusal("Missing required field: customerId.")
        now = asyncio.get_running_loop().time()
        room = self._state.rooms.setdefault(performer_id, [])
        if registered:
            assert customer_id is not None
            self._state.credits[customer_id] = credits
        existing = self._find(performer_id, customer_id, None) if customer_id else None
        if existing is not None:  # a second join refreshes, it does not duplicate
            existing.last_seen = now
            existing.credits = credits
            existing.registered = bool(registered)
            return {"nickname": existing.display_nickname}
        taken = {m.display_nickname for m in room}
        display = f"{nickname}_{self._rng.randrange(10000):04d}"
        while display in taken:
            display = f"{nickname}_{self._rng.randrange(10000):04d}"
        room.append(
            _Member(
                performer_id=performer_id,
                nickname=nickname,
                display_nickname=display,
                customer_id=customer_id,
                registered=bool(registered),
                credits=credits,
                ip_address=ip_address,
                joined_at=now,
                last_seen=now,
            )
        )
        return {"nickname": display}

    def _find(
        self, performer_id: int | None, customer_id: int | None, nickname: str | None
    ) -> _Member | None:
        room = self._state.rooms.get(performer_id or 0, [])
        if customer_id is not None:
            for member in room:
                if member.customer_id == customer_id:
                    return member
        if nickname is not None:
            for member in room:
                if member.display_nickname == nickname:
                    return member
            for member in room:
                if member.nickname == nickname:
                    return member
        return None

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(self.purge_check)
            for member in self.purge():
                log.info(
                    "rooms simulator: purged %s from performer %s's room",
                    member.display_nickname,
                    member.performer_id,
                )


def _snapshot(member: _Member) -> RoomMember:
    return RoomMember(**{name: getattr(member, name) for name in RoomMember.__slots__})


def _form_fields(request: HttpRequest) -> dict[str, str]:
    """The form body as a dict (the last of repeated fields wins, as in PHP)."""
    content_type = request.headers.get("content-type", "application/x-www-form-urlencoded")
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return {}
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


def _text(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise _Refusal(f"Missing required field: {name}.")
    return value


def _integer(
    fields: dict[str, str], name: str, *, minimum: int, required: bool = True
) -> int | None:
    raw = fields.get(name, "").strip()
    if not raw:
        if required:
            raise _Refusal(f"Missing required field: {name}.")
        return None
    if not _INTEGER.fullmatch(raw) or int(raw) < minimum:
        raise _Refusal(f"Invalid {name}: must be a whole number of at least {minimum}.")
    return int(raw)


def _reply(fields: dict[str, object], as_json: bool) -> HttpResponse:
    if as_json:
        body = json.dumps(fields)
        return HttpResponse(200, body.encode(), "application/json; charset=utf-8")
    return HttpResponse(200, format_relaxed(fields).encode(), "text/xml; charset=utf-8")


def simulator_for_config(config: RoomsConfig) -> RoomsSimulator:
    """The simulator for ``simulate: true``: any free local port, the config's key if set.

    Connect with ``RoomsClient.from_config(config, url=sim.url, key=sim.key)``.
    """
    key = config.key.get_secret_value() or DEFAULT_KEY
    return RoomsSimulator(key=key, purge_after=max(3 * config.ping_interval, 1.0))


def _registered_pair(text: str) -> tuple[int, int]:
    customer, _, credits = text.partition(":")
    try:
        pair = int(customer), int(credits or 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not CUSTOMER_ID[:CREDITS]") from None
    if pair[0] < 1 or pair[1] < 0:
        raise argparse.ArgumentTypeError(f"{text!r} needs a positive id and credits >= 0")
    return pair


def simulator_from_args(argv: list[str]) -> RoomsSimulator:
    """Build a simulator from ``bot simulate rooms`` options."""
    parser = argparse.ArgumentParser(
        prog="bot simulate rooms",
        description="Serve a local VS Media rooms API (POST /customer?key=KEY).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--key", default=DEFAULT_KEY, help="the API key to accept")
    parser.add_argument(
        "--purge-after",
        type=float,
        default=30.0,
        help="seconds without a ping before a member is purged (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="answer in JSON, not the literal")
    parser.add_argument("--seed", type=int, default=None, help="seed for the _#### suffixes")
    parser.add_argument(
        "--registered",
        type=_registered_pair,
        action="append",
        default=[],
        metavar="ID[:CREDITS]",
        help="a customer known as registered from the start (repeatable)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if args.purge_after <= 0:
        parser.error("--purge-after must be more than 0")
    if not args.key:
        parser.error("--key must not be empty")
    return RoomsSimulator(
        host=args.host,
        port=args.port,
        key=args.key,
        purge_after=args.purge_after,
        json_replies=args.json,
        seed=args.seed,
        registered=dict(args.registered),
    )


__all__ = [
    "DEFAULT_KEY",
    "ReceivedCall",
    "RoomMember",
    "RoomsSimulator",
    "simulator_for_config",
    "simulator_from_args",
]
