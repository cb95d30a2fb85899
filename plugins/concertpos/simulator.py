"""A local ConcertPOS gateway: the documented websocket protocol on real sockets.

It serves one instance on one or more shards (each shard its own server and port, all sharing
the instance's state and broadcasts, as the doc says of the real shards), so tests can take
the first shard down and watch the client fail over.

Where each behaviour comes from:

* **The doc** (``protocols/concertpos-websocket.md``): the request template, the event /
  error / broadcast models, the ten documented commands and their points, ``updatepos``;
  replies named after the command. The rate limit read strictly (``rate_budget="shared"``,
  the default): the points received in any ``rate_window`` seconds, all commands together,
  may not exceed ``rate_limit``.
* **The notes on the real service** (``protocols/README.md``): ``payitems`` answers
  ``payitem`` with an ``Items`` count; the error names (``api_key_mismatch``,
  ``no_api_key``, ``invalid_instance``, ``invalid_json``, ``invalid_json5``,
  ``missing_parameter_api``, ``ratelimit`` with ``{command, retry_after}`` in ms); the
  ``/?instance=SLUG&Content-Type=json`` URL form.
* **The vendor's own client** (PixelcatProductions/ConcertPOS-client, ``src/App.js``,
  ``src/components/Auth.js``, ``SelectWorkplace.js``, ``.env``):
  ``listpos`` answers event ``listpos`` with ``POS``, a list of ``{ID, PointOfSale,
  enabled, special, admin, password}``; ``verifyauth`` takes ``password`` and ``workplace``
  and answers ``{success, password}``. The client connects with ``Content-Type=json5`` and
  sends ``JSON5.stringify`` output, so in that mode this server parses JSON5 (refusing
  what is not with ``invalid_json5``); with ``Content-Type=json`` or none it parses strict
  JSON (``invalid_json``). Its start-up (``listpos``, ``getlicense``, ``getconfig``,
  ``registerdevice``, ``getstatus``, then lists) spends more than 100 points at once without
  being limited, which suggests a budget per command: ``rate_budget="per_command"`` plays that.
  The vendor's production URL in ``.env`` reads ``&Content-Typejson5`` (no ``=``): a URL
  without a proper ``Content-Type=json5`` gets strict JSON here.
* **Our own choices** where all of those are silent: ``unknown_command``,
  ``missing_parameter_<Name>`` and ``invalid_parameter``; the costs of ``listpos`` (25) and
  ``verifyauth`` (10).

A URL may name the instance as its last path segment (``/INSTANCE_SLUG``) or as a query.

Test hooks: :meth:`broadcast_updatepos`, :meth:`set_price`, :attr:`ratelimit_errors`,
:attr:`command_counts`, :attr:`muted` (commands left unanswered), :attr:`skip_next` (the next
N requests of a command left unanswered), :attr:`delays` (replies held back),
:meth:`send_raw`, :meth:`drop_connections`, :meth:`stop_shard` / :meth:`start_shard`,
:attr:`transactions`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import random
import time
import uuid as uuid_module
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import json5
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bot.simulation import Simulator

from .ratelimit import DEFAULT_COSTS, DEFAULT_LIMIT, DEFAULT_WINDOW, BudgetMode
from .wire import wants_json5

if TYPE_CHECKING:
    from .config import ConcertPOSConfig

log = logging.getLogger(__name__)
#: frames carry the api key (with ``simulate: true`` the configured one): never log them
wire_log = logging.getLogger(f"{__name__}.wire")
# A filter, not a level: the level stays inherited (quiet at the bot's WARNING), and DEBUG
# records, the ones with frames, never pass even when the bot runs at DEBUG.
wire_log.addFilter(lambda record: record.levelno >= logging.INFO)

DEFAULT_API_KEY = "sim-api-key"
DEFAULT_INSTANCE = "demo"
DEFAULT_LICENSE_KEY = "CPOS-DEMO-7F3A-91C2-55E0"

Reply = dict[str, Any]


@dataclass
class SimProduct:
    id: int
    name: str
    price: Decimal
    deposit: bool = False
    crew_blocked: bool = False


@dataclass
class SimPaymentMethod:
    id: int
    name: str
    color: str


@dataclass
class SimPointOfSale:
    id: int
    name: str
    products: list[int]
    payment_methods: list[int]
    password: str | None = None
    enabled: bool = True
    special: bool = False
    admin: bool = False

    @property
    def selectable(self) -> bool:
        return self.enabled and not self.special and not self.admin


@dataclass
class SimTransaction:
    id: int
    payment_id: int
    pos_id: int
    product_id: int
    amount_product: int
    amount_money: Decimal
    timestamp: datetime
    note: str | None = None
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        # A chained digest would need history; a digest of the row is enough to show shape.
        raw = "|".join(
            str(v)
            for v in (
                self.id,
                self.payment_id,
                self.pos_id,
                self.product_id,
                self.amount_product,
                self.amount_money,
                _iso(self.timestamp),
            )
        )
        self.hash = hashlib.sha512(raw.encode()).hexdigest()

    def wire(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Payment_ID": self.payment_id,
            "PointOfSaleID": self.pos_id,
            "Product_ID": self.product_id,
            "AmountProduct": self.amount_product,
            "AmountMoney": _num(self.amount_money),
            "timestamp": _iso(self.timestamp),
            "hash": self.hash,
            "Note": self.note,
        }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _num(value: Decimal) -> int | float:
    """JSON numbers the way a JavaScript server prints them (18, not 18.0)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _default_products() -> list[SimProduct]:
    return [
        SimProduct(1, "Beer", Decimal("4.50"), deposit=True),
        SimProduct(2, "Cola", Decimal("3.00"), deposit=True),
        SimProduct(3, "Water", Decimal("2.50"), deposit=True),
        SimProduct(4, "Bratwurst", Decimal("4.00")),
        SimProduct(5, "Fries", Decimal("3.50")),
        SimProduct(6, "Tour Shirt", Decimal("25.00"), crew_blocked=True),
    ]


def _default_methods() -> list[SimPaymentMethod]:
    return [
        SimPaymentMethod(1, "Cash", "#28a745"),
        SimPaymentMethod(2, "Card", "#007bff"),
        SimPaymentMethod(3, "Voucher", "#ffc107"),
    ]


def _default_pos() -> list[SimPointOfSale]:
    return [
        SimPointOfSale(1, "Bar", [1, 2, 3, 4, 5], [1, 2]),
        SimPointOfSale(2, "Merch", [6], [1, 2, 3]),
        SimPointOfSale(3, "Backstage", [1, 2, 3], [1], password="crew-only"),
        SimPointOfSale(4, "Office", [], [1], admin=True),
    ]


class _Reject(Exception):
    """An error model to answer with (``code`` defaults to 0, as in the doc's example)."""

    def __init__(self, error: str, code: Any = 0) -> None:
        super().__init__(error)
        self.error = error
        self.code = code


class ConcertPOSSimulator(Simulator):
    """One ConcertPOS instance served on ``shards`` (one websocket server each).

    ``api_key=None`` plays an instance without an api key (every command: ``no_api_key``).
    ``port`` is the first shard's port (0: any free one); further shards take the following
    ports, or free ones when ``port`` is 0. ``clock`` is what the rate limit measures with.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        instance: str = DEFAULT_INSTANCE,
        api_key: str | None = DEFAULT_API_KEY,
        shards: Sequence[str] = ("exon",),
        rate_limit: int = DEFAULT_LIMIT,
        rate_window: float = DEFAULT_WINDOW,
        rate_budget: BudgetMode = "shared",
        costs: Mapping[str, int] | None = None,
        products: Iterable[SimProduct] | None = None,
        payment_methods: Iterable[SimPaymentMethod] | None = None,
        points_of_sale: Iterable[SimPointOfSale] | None = None,
        deposit: Decimal = Decimal("2.00"),
        version: str = "1.0.1",
        license_active: bool = True,
        seed: int = 0,
        history: int = 12,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not shards:
            raise ValueError("at least one shard is needed")
        self.host = host
        self.port = port
        self.instance = instance
        self.api_key = api_key
        self.shards = list(dict.fromkeys(shards))
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.rate_budget = rate_budget
        self.costs = {**DEFAULT_COSTS, **(costs or {})}
        self.products = {p.id: p for p in (products or _default_products())}
        self.payment_methods = {m.id: m for m in (payment_methods or _default_methods())}
        self.points_of_sale = {s.id: s for s in (points_of_sale or _default_pos())}
        self.deposit = deposit
        self.version = version
        self.license: dict[str, Any] = {
            "Name": "Demo Festival",
            "LicenseKey": DEFAULT_LICENSE_KEY,
            "Active": "1" if license_active else "0",
            "Type": "Pro",
            "DeviceLimit": "0",
            "TicketLimit": "0",
            "ProductLimit": "0",
            "PaymentLimit": "0",
            "POSLimit": "5",
            "Created": "2020-01-01T00:00:00.000Z",
            "Expires": None,
        }
        self.config: dict[str, Any] = {
            "instance_name": "Demo Festival",
            "currency": "EUR",
            "ticket_limit": "0",
            "license_key": DEFAULT_LICENSE_KEY,
        }
        self.status = {"status": "success", "message": "All systems are operational"}
        self.devices: dict[str, datetime] = {}
        self.transactions: list[SimTransaction] = []
        self._clock = clock

        #: test hooks: what was asked, what was refused, what to leave unanswered
        self.command_counts: Counter[str] = Counter()
        self.errors_sent: Counter[str] = Counter()
        self.ratelimit_errors = 0
        self.muted: set[str] = set()
        #: the next N requests of a command get no reply (a reply lost once, then normal)
        self.skip_next: Counter[str] = Counter()
        #: seconds to hold back the reply to a command (timeouts, late replies)
        self.delays: dict[str, float] = {}

        self.urls: dict[str, str] = {}
        self._ports: dict[str, int] = {}
        self._servers: dict[str, Server] = {}
        self._connections: set[ServerConnection] = set()
        self._spent: dict[str, list[tuple[float, int]]] = {}
        self._seed_history(random.Random(seed), history)

    @classmethod
    def for_config(
        cls, config: ConcertPOSConfig, host: str = "127.0.0.1", port: int = 0
    ) -> ConcertPOSSimulator:
        """The simulator a ``simulate: true`` config runs: same instance, key, limits, and
        a point of sale with the configured id."""
        sim = cls(
            host,
            port,
            instance=config.instance or DEFAULT_INSTANCE,
            api_key=config.api_key.get_secret_value() if config.api_key else DEFAULT_API_KEY,
            rate_limit=config.rate_limit,
            rate_window=config.rate_window,
            rate_budget=config.rate_budget,
            costs=config.costs_table(),
        )
        if config.pos_id not in sim.points_of_sale:
            template = sim.points_of_sale[1]
            sim.points_of_sale[config.pos_id] = SimPointOfSale(
                config.pos_id, "Bot", list(template.products), list(template.payment_methods)
            )
        return sim

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        for index, shard in enumerate(self.shards):
            port = self._ports.get(shard, self.port + index if self.port else 0)
            await self._start_shard(shard, port)
        self.url = self.urls[self.shards[0]]

    async def stop(self) -> None:
        for shard in list(self._servers):
            await self.stop_shard(shard)

    async def _start_shard(self, shard: str, port: int) -> None:
        async def handler(ws: ServerConnection) -> None:
            await self._serve(ws, shard)

        server = await serve(handler, self.host, port, max_size=2**20, logger=wire_log)
        bound = server.sockets[0].getsockname()[1] if server.sockets else port
        self._servers[shard] = server
        self._ports[shard] = bound
        self.urls[shard] = f"ws://{self.host}:{bound}/{self.instance}"
        log.info("ConcertPOS simulator: shard %s serving %s", shard, self.urls[shard])

    async def stop_shard(self, shard: str) -> None:
        """Take one shard down (its port stops listening); the others keep serving."""
        server = self._servers.pop(shard, None)
        if server is not None:
            server.close()
            await server.wait_closed()

    async def start_shard(self, shard: str) -> None:
        """Bring a stopped shard back on the port it had."""
        if shard not in self._servers:
            await self._start_shard(shard, self._ports.get(shard, 0))

    def query_url(self, shard: str | None = None, content_type: str = "json") -> str:
        """The later service's URL form: the instance in the query string (``content_type``
        ``json5`` is the vendor client's)."""
        port = self._ports[shard or self.shards[0]]
        return f"ws://{self.host}:{port}/?instance={self.instance}&Content-Type={content_type}"

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def drop_connections(self) -> None:
        """Close every client connection (the servers keep listening)."""
        for ws in list(self._connections):
            await ws.close(1012, "service restart")

    # ------------------------------------------------------------------ test hooks

    def set_price(self, product_id: int, price: Decimal | str | float) -> None:
        self.products[product_id].price = Decimal(str(price))

    async def broadcast(self, message: str, parameters: Mapping[str, Any] | None = None) -> int:
        """Send a broadcast model to every connection on every shard; returns how many."""
        frame = json.dumps(
            {"type": "broadcast", "result": {"message": message, "parameters": parameters or {}}}
        )
        sent = 0
        for ws in list(self._connections):
            try:
                await ws.send(frame)
                sent += 1
            except ConnectionClosed:
                pass
        return sent

    async def broadcast_updatepos(self) -> int:
        return await self.broadcast("updatepos")

    async def send_raw(self, frame: str) -> None:
        """Send any text to every connection (stray or malformed frames for robustness tests)."""
        for ws in list(self._connections):
            try:
                await ws.send(frame)
            except ConnectionClosed:
                pass

    # ------------------------------------------------------------------ serving

    async def _serve(self, ws: ServerConnection, shard: str) -> None:
        path = ws.request.path if ws.request else ""
        instance = _instance_of(path)
        json5_mode = wants_json5(path)
        self._connections.add(ws)
        try:
            async for raw in ws:
                command, reply = self.respond(raw, instance, json5_mode=json5_mode)
                if reply is None:
                    continue
                delay = self.delays.get(command, 0.0)
                if delay > 0:
                    # Requests on one connection are answered in order, as a single
                    # JavaScript handler would: a slow reply holds back the next.
                    await asyncio.sleep(delay)
                await ws.send(json.dumps(reply))
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(ws)

    def respond(
        self, raw: str | bytes, instance: str | None, *, json5_mode: bool = False
    ) -> tuple[str, Reply | None]:
        """One request frame in; its command name and reply model out (None: no reply).

        The reply is computed when the request arrives (a delayed reply shows the state of
        that moment), which is what lets tests tell a late reply from a fresh one.
        """
        command = ""
        try:
            request = _parse(raw, json5_mode=json5_mode)
            command = str(request.get("command", ""))
            params = request.get("parameters")
            if not isinstance(params, dict):
                raise _Reject("missing_parameter_api")
            self.command_counts[command] += 1
            if command in self.muted:
                return command, None
            if self.skip_next[command] > 0:
                self.skip_next[command] -= 1
                if command in self._actions():
                    self._spend(command)
                    self._actions()[command](params)  # it takes effect; only the reply is lost
                return command, None
            if instance != self.instance:
                raise _Reject("invalid_instance")
            if self.api_key is None:
                raise _Reject("no_api_key")
            if "api_key" not in params:
                raise _Reject("missing_parameter_api")
            if params["api_key"] != self.api_key:
                raise _Reject("api_key_mismatch")
            action = self._actions().get(command)
            if action is None:
                raise _Reject("unknown_command")
            self._spend(command)
            event, result = action(params)
        except _Reject as rejection:
            self.errors_sent[rejection.error] += 1
            return command, {
                "type": "error",
                "result": {"error": rejection.error, "code": rejection.code},
            }
        return command, {"type": "event", "result": {"event": event, "parameters": result}}

    def _spend(self, command: str) -> None:
        """Points received in the last ``rate_window`` seconds, plus these, must fit."""
        cost = self.costs[command]
        now = self._clock()
        key = "" if self.rate_budget == "shared" else command
        spent = [(t, p) for t, p in self._spent.get(key, []) if t > now - self.rate_window]
        self._spent[key] = spent
        used = sum(p for _, p in spent)
        if used + cost > self.rate_limit:
            free_at = now
            for at, points in spent:
                free_at = at + self.rate_window
                used -= points
                if used + cost <= self.rate_limit:
                    break
            self.ratelimit_errors += 1
            retry_ms = max(1, round((free_at - now) * 1000))
            raise _Reject("ratelimit", {"command": command, "retry_after": retry_ms})
        spent.append((now, cost))

    def _actions(self) -> dict[str, Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]]:
        return {
            "getconfig": lambda p: ("getconfig", {"Config": dict(self.config)}),
            "getdeposit": lambda p: (
                "getdeposit",
                {"Deposit": {"ID": 0, "ProductName": "Deposit", "Price": _num(self.deposit)}},
            ),
            "getlicense": lambda p: ("getlicense", {"License": dict(self.license)}),
            "listpm": self._listpm,
            "listproducts": self._listproducts,
            "payitems": self._payitems,
            "registerdevice": self._registerdevice,
            "version": lambda p: ("version", {"Version": self.version}),
            "getstatus": lambda p: ("getstatus", dict(self.status)),
            "listtransactions": self._listtransactions,
            "listpos": self._listpos,
            "verifyauth": self._verifyauth,
        }

    def _listpos(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "listpos", {
            "POS": [
                {
                    "ID": pos.id,
                    "PointOfSale": pos.name,
                    "enabled": int(pos.enabled),
                    "special": int(pos.special),
                    "admin": int(pos.admin),
                    "password": int(pos.password is not None),
                }
                for pos in self.points_of_sale.values()
            ]
        }

    def _verifyauth(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The vendor client's workplace login: ``success``, and the password echoed back
        on success (the client keeps it as ``posPassword``)."""
        pos = self.points_of_sale.get(_int_param(params, "workplace"))
        if pos is None:
            raise _Reject("invalid_parameter")
        password = params.get("password")
        if password is None:
            raise _Reject("missing_parameter_password")
        ok = pos.password is None or password == pos.password
        return "verifyauth", {"success": ok, "password": password if ok else None}

    def _pos(self, params: dict[str, Any]) -> SimPointOfSale:
        pos_id = _int_param(params, "POSID")
        pos = self.points_of_sale.get(pos_id)
        if pos is None:
            raise _Reject("invalid_parameter")
        if pos.password is not None and params.get("posPassword") != pos.password:
            raise _Reject("invalid_password")
        return pos

    def _listpm(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        pos = self._pos(params)
        methods = [self.payment_methods[m] for m in pos.payment_methods]
        return "listpm", {
            "PaymentMethods": [{"ID": m.id, "Payment": m.name, "color": m.color} for m in methods]
        }

    def _listproducts(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        pos = self._pos(params)
        return "listproducts", {
            "Products": [
                {
                    "ID": p.id,
                    "ProductName": p.name,
                    "Price": _num(p.price),
                    "Deposit": int(p.deposit),
                    "CrewBlocked": int(p.crew_blocked),
                    "Amount": 0,
                }
                for p in (self.products[i] for i in pos.products)
            ]
        }

    def _payitems(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        pos = self._pos(params)
        method = _int_param(params, "PaymentMethod")
        if method not in pos.payment_methods:
            raise _Reject("invalid_parameter")
        products = params.get("Products")
        if products is None:
            raise _Reject("missing_parameter_Products")
        if not isinstance(products, list):
            raise _Reject("invalid_parameter")
        wanted: list[tuple[SimProduct, int]] = []
        for entry in products:
            if not isinstance(entry, dict):
                raise _Reject("invalid_parameter")
            amount = _int_param(entry, "Amount")
            product_id = _int_param(entry, "ID")
            if amount < 0:
                raise _Reject("invalid_parameter")
            if amount == 0:
                continue  # the doc: only products with an Amount above 0 are processed
            if product_id not in pos.products:
                raise _Reject("invalid_parameter")
            wanted.append((self.products[product_id], amount))
        now = datetime.now(UTC)
        for product, amount in wanted:
            unit = product.price + (self.deposit if product.deposit else 0)
            self._book(pos.id, method, product.id, amount, unit * amount, now)
        return "payitem", {"Items": sum(amount for _, amount in wanted)}

    def _registerdevice(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        device = params.get("UUID")
        if device is None:
            raise _Reject("missing_parameter_UUID")
        try:
            key = str(uuid_module.UUID(str(device)))
        except ValueError:
            raise _Reject("invalid_parameter") from None
        new = key not in self.devices
        self.devices[key] = datetime.now(UTC)
        return "registerdevice", {"UUID": key, "new": new}

    def _listtransactions(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        pos = self._pos(params)
        rows = [t for t in reversed(self.transactions) if t.pos_id == pos.id]
        if "Limit" in params:
            limit = _int_param(params, "Limit")
            if limit < 1:
                raise _Reject("invalid_parameter")
            rows = rows[:limit]
        return "listtransactions", {"Count": len(rows), "Transactions": [t.wire() for t in rows]}

    def _book(
        self, pos_id: int, method: int, product_id: int, amount: int, money: Decimal, at: datetime
    ) -> SimTransaction:
        next_id = self.transactions[-1].id + 1 if self.transactions else 9000
        row = SimTransaction(next_id, method, pos_id, product_id, amount, money, at)
        self.transactions.append(row)
        return row

    def _seed_history(self, rng: random.Random, count: int) -> None:
        """Plausible past sales, reproducible from ``seed``."""
        at = datetime(2020, 5, 8, 18, 0, tzinfo=UTC)
        tills = sorted(
            pos.id
            for pos in self.points_of_sale.values()
            if pos.products and pos.password is None and pos.selectable
        )
        for _ in range(count if tills else 0):
            pos = self.points_of_sale[rng.choice(tills)]
            product = self.products[rng.choice(pos.products)]
            amount = rng.randint(1, 4)
            unit = product.price + (self.deposit if product.deposit else 0)
            at += timedelta(minutes=rng.randint(1, 90))
            method = rng.choice(pos.payment_methods)
            self._book(pos.id, method, product.id, amount, unit * amount, at)


def _parse(raw: str | bytes, *, json5_mode: bool = False) -> dict[str, Any]:
    """A request: strict JSON, or JSON5 when the connection asked for it."""
    error = "invalid_json5" if json5_mode else "invalid_json"
    try:
        if json5_mode:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            if len(text) > 100_000:
                raise ValueError("too large for the JSON5 parser")
            request = json5.loads(text)
        else:
            request = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _Reject(error) from None
    if not isinstance(request, dict):
        raise _Reject(error)
    return request


def _int_param(params: Mapping[str, Any], name: str) -> int:
    if name not in params:
        raise _Reject(f"missing_parameter_{name}")
    value = params[name]
    if isinstance(value, bool):
        raise _Reject("invalid_parameter")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise _Reject("invalid_parameter")


def _instance_of(path: str) -> str | None:
    """``/SLUG``, ``/shard/SLUG`` or ``/?instance=SLUG&...``."""
    parts = urlsplit(path)
    query = parse_qs(parts.query).get("instance")
    if query:
        return query[0]
    segments = [s for s in parts.path.split("/") if s]
    return segments[-1] if segments else None


def simulator_from_args(argv: list[str]) -> Simulator:
    """``bot simulate concertpos [--host H] [--port P] [--instance SLUG] [--api-key KEY] ...``"""
    parser = argparse.ArgumentParser(
        prog="bot simulate concertpos", description="Run a local ConcertPOS gateway."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="first shard's port (0: any)")
    parser.add_argument("--instance", default=DEFAULT_INSTANCE, help="instance slug")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument(
        "--no-api-key", action="store_true", help="play an instance without an api key"
    )
    parser.add_argument("--shards", default="exon", help="comma-separated shard names")
    parser.add_argument("--rate-limit", type=int, default=DEFAULT_LIMIT)
    parser.add_argument("--rate-window", type=float, default=DEFAULT_WINDOW)
    parser.add_argument(
        "--rate-budget",
        choices=("shared", "per_command"),
        default="shared",
        help="one budget for all commands (the doc, strict) or one per command",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample history")
    parser.add_argument("--history", type=int, default=12, help="sample transactions")
    args = parser.parse_args(argv)
    shards = [s.strip() for s in args.shards.split(",") if s.strip()]
    if not shards:
        parser.error("--shards needs at least one name")
    if args.rate_limit < 1 or args.rate_window <= 0:
        parser.error("--rate-limit and --rate-window must be positive")
    return ConcertPOSSimulator(
        args.host,
        args.port,
        instance=args.instance,
        api_key=None if args.no_api_key else args.api_key,
        shards=shards,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        rate_budget=args.rate_budget,
        seed=args.seed,
        history=max(0, args.history),
    )
