"""The ConcertPOS websocket client: typed commands, reply routing, rate budget, caches.

Why it is shaped like this:

* **Replies carry no request id.** They are matched by ``result.event`` (``payitems`` answers
  as ``payitem``) in order per event. Error replies name no event, so they go to the oldest
  request still waiting (``ratelimit`` names its command, and is routed by that). A request
  that times out leaves a placeholder that swallows its late reply, so the reply can never be
  handed to the next caller; if the reply never comes, the connection is recycled to get
  back in step.
* **The server's rate limit must never trip.** Every command spends its documented points
  from a :class:`~.ratelimit.RateBudget` before it is sent, waiting or refusing with "try
  again in N s". Lists of products and payment methods and the deposit price are cached until
  an ``updatepos`` broadcast (or a reconnect, which may have missed one); the license is
  fetched once; version and status are reused for a short while. Concurrent callers of a
  cached command share one request.
* **Money moves once.** ``payitems`` is never retried: if its confirmation is lost the caller
  gets :class:`~.errors.OutcomeUnknown` and must check the transactions first.
* **Shards.** Connection failures move on to the next URL in the list; after a whole round
  fails the client backs off (``bot.backoff``) and starts over.

The api key is added to every request here and nowhere else; it is never logged.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import uuid as uuid_module
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.backoff import backoff_delays

from .errors import (
    AmbiguousName,
    ConcertPOSError,
    ConcertPOSNotConnected,
    ConcertPOSTimeout,
    InvalidRequest,
    OutcomeUnknown,
    RateLimited,
    UnknownPaymentMethod,
    UnknownProduct,
    error_from_reply,
)
from .lookup import find_by_id_or_name
from .models import (
    BudgetSnapshot,
    ConnectionState,
    Deposit,
    DeviceRegistration,
    InstanceConfig,
    License,
    PaymentMethod,
    PosEvent,
    Product,
    Sale,
    SaleItem,
    SaleLine,
    ServiceStatus,
    TransactionList,
    as_text,
    parse_items_booked,
    parse_payment_methods,
    parse_products,
)
from .ratelimit import DEFAULT_COSTS, DEFAULT_LIMIT, DEFAULT_WINDOW, RateBudget

if TYPE_CHECKING:
    from .config import ConcertPOSConfig

log = logging.getLogger(__name__)
#: websockets logs every frame at DEBUG, and every frame carries the api key: its logger for
#: our connections never goes below INFO, whatever level the rest of the bot runs at.
wire_log = logging.getLogger(f"{__name__}.wire")
wire_log.setLevel(logging.INFO)

T = TypeVar("T")
Listener = Callable[[PosEvent], Awaitable[None] | None]

#: reply event name -> the command it answers (when they differ)
_COMMAND_OF_EVENT = {"payitem": "payitems"}
#: cache keys dropped by ``updatepos`` and by a reconnect
_POS_CACHES = frozenset({"listproducts", "listpm", "getdeposit"})
#: a connection that lived this long resets the reconnect backoff
_STABLE_AFTER = 10.0
#: the largest ``listtransactions`` Limit we ask for (the frame must stay readable)
MAX_TRANSACTIONS = 1000
#: the largest frame we accept; an unlimited transaction list can be big
_MAX_FRAME = 16 * 1024 * 1024


def redact_url(url: str) -> str:
    """Scheme, host and path only: a query string may carry something private."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(eq=False, slots=True)
class _Pending:
    """A request waiting for its reply; ``abandoned`` once its caller stopped waiting."""

    seq: int
    command: str
    future: asyncio.Future[Mapping[str, Any]]
    abandoned: bool = False


class ConcertPOSClient:
    """One connection to a ConcertPOS instance, shared by every command of the plugin.

    ``urls`` are tried in order (the shards); ``pos_id`` is the point of sale used when a call
    names none. ``timeout`` bounds both the wait for rate budget and the wait for a reply;
    ``late_reply_grace`` (default: ``timeout``) is how long a timed-out request's reply may
    still come before the connection is recycled.
    Use as ``async with ConcertPOSClient(...) as client`` or call :meth:`start`/:meth:`close`.
    """

    def __init__(
        self,
        urls: Sequence[str],
        api_key: str,
        *,
        pos_id: int = 1,
        pos_password: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 10.0,
        rate_limit: int = DEFAULT_LIMIT,
        rate_window: float = DEFAULT_WINDOW,
        rate_margin: float = 1.0,
        costs: Mapping[str, int] | None = None,
        version_ttl: float = 600.0,
        status_ttl: float = 30.0,
        max_amount: int = 100,
        reconnect_min: float = 0.2,
        reconnect_max: float = 15.0,
        fetch_license: bool = True,
        late_reply_grace: float | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one ConcertPOS URL is needed")
        if not api_key:
            raise ValueError("an api key is needed")
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self._urls = list(urls)
        self._api_key = api_key
        self._pos_id = self._check_pos(pos_id)
        self._pos_password = pos_password
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._costs = {**DEFAULT_COSTS, **(costs or {})}
        self._budget = RateBudget(rate_limit, rate_window, margin=rate_margin)
        for command, points in self._costs.items():
            if points > rate_limit:
                raise ValueError(f"{command} costs more points than the whole rate limit")
        self._ttl = {"version": version_ttl, "getstatus": status_ttl}
        self._max_amount = max_amount
        self._reconnect = (reconnect_min, reconnect_max)
        self._fetch_license = fetch_license
        self._grace = timeout if late_reply_grace is None else late_reply_grace

        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._url_index = 0
        self._current_url: str | None = None
        self._connected_at: float | None = None
        self._ever_connected = False
        self._reconnects = 0

        self._seq = 0
        self._send_lock = asyncio.Lock()
        self._by_command: dict[str, deque[_Pending]] = {}
        self._in_order: dict[int, _Pending] = {}

        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._inflight: dict[tuple[Any, ...], asyncio.Task[Any]] = {}
        self._generation = 0
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_config(
        cls,
        config: ConcertPOSConfig,
        *,
        urls: Sequence[str] | None = None,
        api_key: str | None = None,
    ) -> ConcertPOSClient:
        """Build from the plugin's config; ``urls``/``api_key`` override it (``simulate``)."""
        endpoints = list(urls) if urls else config.endpoints()
        key = api_key or (config.api_key.get_secret_value() if config.api_key else "")
        password = config.pos_password.get_secret_value() if config.pos_password else None
        return cls(
            endpoints,
            key,
            pos_id=config.pos_id,
            pos_password=password,
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            rate_limit=config.rate_limit,
            rate_window=config.rate_window,
            rate_margin=config.rate_margin,
            costs=config.costs_table(),
            version_ttl=config.version_ttl,
            status_ttl=config.status_ttl,
            max_amount=config.max_amount,
            reconnect_min=config.reconnect_min,
            reconnect_max=config.reconnect_max,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self, wait: float | None = None) -> bool:
        """Start connecting (in the background, for good) and wait up to ``wait`` seconds
        (default: ``connect_timeout`` per URL) for the first connection; then fetch and cache
        the license, as the doc asks. Returns whether a connection is up; a failure to reach
        any shard is not fatal, the client keeps trying and calls fail fast meanwhile."""
        if self._supervisor is None or self._supervisor.done():
            self._closing = False
            self._supervisor = asyncio.create_task(self._supervise(), name="concertpos")
        limit = self._connect_timeout * len(self._urls) if wait is None else wait
        try:
            await asyncio.wait_for(self._connected.wait(), limit)
        except TimeoutError:
            log.warning("ConcertPOS: no shard reachable yet; retrying in the background")
            return False
        if self._fetch_license and ("getlicense",) not in self._cache:
            try:
                await self.get_license()
            except ConcertPOSError as exc:
                log.warning("ConcertPOS: could not fetch the license at start: %s", exc.message)
        return self.connected

    async def close(self) -> None:
        """Stop reconnecting, close the connection and fail whatever still waits."""
        self._closing = True
        supervisor, self._supervisor = self._supervisor, None
        ws = self._ws
        if ws is not None:
            await ws.close()
        if supervisor is not None:
            supervisor.cancel()
            try:
                await supervisor
            except asyncio.CancelledError:
                pass
        self._fail_all()
        for task in [*self._inflight.values(), *self._tasks]:
            task.cancel()
        self._inflight.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def wait_connected(self, within: float) -> bool:
        """Wait up to ``within`` seconds for a connection (e.g. after a reconnect)."""
        try:
            await asyncio.wait_for(self._connected.wait(), within)
        except TimeoutError:
            return False
        return True

    def state(self) -> ConnectionState:
        loop_time = asyncio.get_running_loop().time()
        return ConnectionState(
            connected=self.connected,
            url=redact_url(self._current_url) if self.connected and self._current_url else None,
            shard_index=self._url_index if self.connected else None,
            connected_for=(
                loop_time - self._connected_at
                if self.connected and self._connected_at is not None
                else None
            ),
            reconnects=self._reconnects,
        )

    def rate_budget(self) -> BudgetSnapshot:
        return self._budget.snapshot()

    @property
    def pos_id(self) -> int:
        return self._pos_id

    # ------------------------------------------------------------------ events

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every broadcast (``updatepos`` included) and every
        message that answers no request. It may be a coroutine function; a failing listener
        is logged and never stops the connection."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _publish(self, event: PosEvent) -> None:
        for listener in list(self._listeners):
            try:
                result = listener(event)
            except Exception:
                log.exception("ConcertPOS: an event listener failed")
                continue
            if inspect.isawaitable(result):
                self._spawn(self._guard(result))

    @staticmethod
    async def _guard(awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("ConcertPOS: an event listener failed")

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ connection

    def _delays(self) -> Iterator[float]:
        return backoff_delays(base=self._reconnect[0], cap=self._reconnect[1])

    async def _supervise(self) -> None:
        """Connect, serve, and reconnect with backoff, moving through the shards."""
        loop = asyncio.get_running_loop()
        delays = self._delays()
        failures = 0
        while not self._closing:
            url = self._urls[self._url_index]
            try:
                ws = await connect(
                    url,
                    open_timeout=self._connect_timeout,
                    close_timeout=2,
                    max_size=_MAX_FRAME,
                    logger=wire_log,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "ConcertPOS: cannot connect to %s (%s)", redact_url(url), type(exc).__name__
                )
                self._url_index = (self._url_index + 1) % len(self._urls)
                failures += 1
                if failures >= len(self._urls):
                    failures = 0
                    await asyncio.sleep(next(delays))
                continue
            failures = 0
            opened = loop.time()
            await self._serve(ws, url)
            if self._closing:
                break
            self._reconnects += 1
            if loop.time() - opened >= _STABLE_AFTER:
                delays = self._delays()
            await asyncio.sleep(next(delays))

    async def _serve(self, ws: ClientConnection, url: str) -> None:
        loop = asyncio.get_running_loop()
        if self._ever_connected:
            # An updatepos may have been broadcast while we were away.
            self._invalidate()
        self._ever_connected = True
        self._ws, self._current_url, self._connected_at = ws, url, loop.time()
        self._connected.set()
        log.info("ConcertPOS: connected to %s", redact_url(url))
        try:
            async for raw in ws:
                try:
                    self._on_message(raw)
                except Exception:
                    log.exception("ConcertPOS: could not handle a message")
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
            self._connected.clear()
            self._fail_all()
            if not self._closing:
                log.warning("ConcertPOS: connection to %s lost", redact_url(url))

    def _fail_all(self) -> None:
        """The connection is gone: no waiting request can get its reply any more."""
        pending = list(self._in_order.values())
        self._in_order.clear()
        self._by_command.clear()
        for item in pending:
            if item.abandoned or item.future.done():
                continue
            if item.command == "payitems":
                item.future.set_exception(
                    OutcomeUnknown("the connection dropped before ConcertPOS confirmed it")
                )
            else:
                item.future.set_exception(
                    ConcertPOSNotConnected(
                        "The connection to ConcertPOS dropped before it answered; try again."
                    )
                )

    # ------------------------------------------------------------------ routing

    def _register(self, item: _Pending) -> None:
        self._by_command.setdefault(item.command, deque()).append(item)
        self._in_order[item.seq] = item

    def _unregister(self, item: _Pending) -> None:
        self._in_order.pop(item.seq, None)
        queue = self._by_command.get(item.command)
        if queue and item in queue:
            queue.remove(item)

    def _take(self, command: str | None) -> _Pending | None:
        """The oldest request waiting for ``command``'s reply, or the oldest of all."""
        if command is not None:
            queue = self._by_command.get(command)
            if not queue:
                return None
            item = queue.popleft()
            self._in_order.pop(item.seq, None)
            return item
        if not self._in_order:
            return None
        item = self._in_order.pop(next(iter(self._in_order)))
        self._by_command[item.command].remove(item)
        return item

    def _on_message(self, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                log.debug("ConcertPOS: ignoring a binary frame")
                return
        try:
            message = json.loads(raw)
        except ValueError:
            log.debug("ConcertPOS: ignoring a frame that is not JSON")
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        result = message.get("result")
        if kind == "command":
            # "currently unused" per the doc: pass it on rather than guess at a meaning.
            self._publish(PosEvent("command", as_text(message.get("command")), {"result": result}))
            return
        if not isinstance(result, dict):
            log.debug("ConcertPOS: ignoring a %s without a result object", kind)
            return
        params = result.get("parameters")
        if not isinstance(params, dict):
            params = {} if params is None else {"value": params}
        if kind == "event":
            name = as_text(result.get("event")).lower()
            item = self._take(_COMMAND_OF_EVENT.get(name, name))
            if item is None:
                self._publish(PosEvent("event", name, params))
            elif not item.abandoned and not item.future.done():
                item.future.set_result(params)
        elif kind == "error":
            self._on_error(result.get("error"), result.get("code"))
        elif kind == "broadcast":
            name = as_text(result.get("message"))
            if name == "updatepos":
                self._invalidate()
            self._publish(PosEvent("broadcast", name, params))
        else:
            log.debug("ConcertPOS: ignoring a message of type %r", kind)

    def _on_error(self, error: Any, code: Any) -> None:
        name = as_text(error).lower()
        target: str | None = None
        if name == "ratelimit" and isinstance(code, Mapping):
            target = as_text(code.get("command")).lower() or None
        elif name in self._costs or name in _COMMAND_OF_EVENT:
            target = _COMMAND_OF_EVENT.get(name, name)  # e.g. the "getlicense" error
        item = self._take(target) if target else None
        if item is None:
            item = self._take(None)
        exc = error_from_reply(error, code, command=item.command if item else None)
        if isinstance(exc, RateLimited):
            self._budget.pause(exc.retry_after)
            log.warning("ConcertPOS: the server rate-limited us (%s)", exc.command)
        if item is None:
            log.warning("ConcertPOS: error %r with no request waiting", exc.code)
            self._publish(PosEvent("error", exc.code or "unknown", {"message": exc.message}))
        elif not item.abandoned and not item.future.done():
            item.future.set_exception(exc)

    # ------------------------------------------------------------------ requests

    async def _call(
        self, command: str, params: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        """Spend the command's points, send it, and return its reply's ``parameters``."""
        if self._ws is None:
            raise ConcertPOSNotConnected()
        spend = await self._budget.acquire(
            self._costs[command], max_wait=self._timeout, command=command
        )
        payload = json.dumps(
            {"command": command, "parameters": {"api_key": self._api_key, **(params or {})}},
            separators=(",", ":"),
        )
        loop = asyncio.get_running_loop()
        self._seq += 1
        item = _Pending(self._seq, command, loop.create_future())
        async with self._send_lock:
            ws = self._ws
            if ws is None:
                self._budget.refund(spend)
                raise ConcertPOSNotConnected()
            self._register(item)
            try:
                await ws.send(payload)
            except ConnectionClosed:
                self._unregister(item)
                self._budget.refund(spend)
                raise ConcertPOSNotConnected(
                    "The connection to ConcertPOS dropped; nothing was sent. Try again."
                ) from None
        self._budget.mark_sent(spend)
        log.debug("ConcertPOS: sent %s", command)
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), self._timeout)
        except TimeoutError:
            if item.future.done() and not item.future.cancelled():
                return item.future.result()
            self._abandon(item, ws)
            if command == "payitems":
                raise OutcomeUnknown("no confirmation came back in time") from None
            raise ConcertPOSTimeout(command, self._timeout) from None
        except asyncio.CancelledError:
            self._abandon(item, ws)
            raise

    def _abandon(self, item: _Pending, ws: ClientConnection) -> None:
        """Keep the request's place so its late reply is swallowed, not misdelivered; if the
        reply still has not come after another timeout, reconnect to get back in step."""
        item.abandoned = True
        if item.seq not in self._in_order:
            return

        def check() -> None:
            if item.seq in self._in_order and self._ws is ws:
                log.warning("ConcertPOS: %s never answered; reconnecting to resync", item.command)
                self._spawn(ws.close())

        asyncio.get_running_loop().call_later(self._grace, check)

    async def _cached(
        self,
        key: tuple[Any, ...],
        fetch: Callable[[], Awaitable[T]],
        *,
        refresh: bool = False,
        ttl: float = math.inf,
    ) -> T:
        """Serve from cache, join a fetch already under way, or start one.

        The fetch runs as its own task so one caller giving up does not cancel it for the
        others; its result is cached only if no ``updatepos`` arrived meanwhile.
        """
        loop = asyncio.get_running_loop()
        if not refresh:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > loop.time():
                return hit[1]
            running = self._inflight.get(key)
            if running is not None:
                return await asyncio.shield(running)
        generation = self._generation

        async def fill() -> T:
            value = await fetch()
            if self._generation == generation:
                self._cache[key] = (loop.time() + ttl, value)
            return value

        task = asyncio.ensure_future(fill())
        self._inflight[key] = task

        def done(finished: asyncio.Task[Any]) -> None:
            if self._inflight.get(key) is finished:
                del self._inflight[key]
            if not finished.cancelled():
                finished.exception()  # retrieved: every waiter may have gone

        task.add_done_callback(done)
        return await asyncio.shield(task)

    def _invalidate(self) -> None:
        """Prices, products or methods may have changed: forget them."""
        self._generation += 1
        for key in [k for k in self._cache if k[0] in _POS_CACHES]:
            del self._cache[key]
        for key in [k for k in self._inflight if k[0] in _POS_CACHES]:
            del self._inflight[key]

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _check_pos(pos_id: Any) -> int:
        if isinstance(pos_id, bool) or not isinstance(pos_id, int) or pos_id < 1:
            raise InvalidRequest("A point of sale id must be a whole number of 1 or more.")
        return pos_id

    def _pos(self, pos_id: int | None) -> int:
        return self._pos_id if pos_id is None else self._check_pos(pos_id)

    def _pos_params(self, pos: int) -> dict[str, Any]:
        params: dict[str, Any] = {"POSID": pos}
        if self._pos_password is not None:
            params["posPassword"] = self._pos_password
        return params

    # ------------------------------------------------------------------ commands

    async def get_config(self) -> InstanceConfig:
        """The instance's key/value configuration (``getconfig``, 25 points, not cached)."""
        return InstanceConfig.parse(await self._call("getconfig"))

    async def get_deposit(self, *, refresh: bool = False) -> Deposit:
        """The deposit price, cached until ``updatepos``."""

        async def fetch() -> Deposit:
            return Deposit.parse(await self._call("getdeposit"))

        return await self._cached(("getdeposit",), fetch, refresh=refresh)

    async def get_license(self, *, refresh: bool = False) -> License:
        """The license, fetched once and cached for good (the doc asks for exactly that)."""

        async def fetch() -> License:
            return License.parse(await self._call("getlicense"))

        return await self._cached(("getlicense",), fetch, refresh=refresh)

    async def list_payment_methods(
        self, pos_id: int | None = None, *, refresh: bool = False
    ) -> tuple[PaymentMethod, ...]:
        """Payment methods of a point of sale, cached until ``updatepos``."""
        pos = self._pos(pos_id)

        async def fetch() -> tuple[PaymentMethod, ...]:
            return parse_payment_methods(await self._call("listpm", self._pos_params(pos)))

        return await self._cached(("listpm", pos), fetch, refresh=refresh)

    async def list_products(
        self, pos_id: int | None = None, *, refresh: bool = False
    ) -> tuple[Product, ...]:
        """Products of a point of sale, cached until ``updatepos``."""
        pos = self._pos(pos_id)

        async def fetch() -> tuple[Product, ...]:
            return parse_products(await self._call("listproducts", self._pos_params(pos)))

        return await self._cached(("listproducts", pos), fetch, refresh=refresh)

    async def find_product(self, query: int | str, pos_id: int | None = None) -> Product:
        """A product by id, exact name, or unambiguous name prefix (case-insensitive)."""
        return find_by_id_or_name(
            await self.list_products(pos_id), query, unknown=UnknownProduct, ambiguous=AmbiguousName
        )

    async def find_payment_method(
        self, query: int | str, pos_id: int | None = None
    ) -> PaymentMethod:
        """A payment method by id, exact name, or unambiguous name prefix."""
        return find_by_id_or_name(
            await self.list_payment_methods(pos_id),
            query,
            unknown=UnknownPaymentMethod,
            ambiguous=AmbiguousName,
        )

    async def pay_items(
        self, items: Sequence[SaleItem], payment_method: int, *, pos_id: int | None = None
    ) -> Sale:
        """Book a sale (``payitems``) after checking every product and the method against the
        point of sale's lists, so a typo is refused before any money moves.

        Never retried: if the confirmation is lost, :class:`OutcomeUnknown` is raised.
        """
        pos = self._pos(pos_id)
        if isinstance(payment_method, bool) or not isinstance(payment_method, int):
            raise InvalidRequest("A payment method id must be a whole number.")
        amounts = self._sale_amounts(items)
        products = {p.id: p for p in await self.list_products(pos)}
        methods = {m.id: m for m in await self.list_payment_methods(pos)}
        for product_id in amounts:
            if product_id not in products:
                raise UnknownProduct(product_id)
        if payment_method not in methods:
            raise UnknownPaymentMethod(payment_method)
        deposit = Decimal(0)
        if any(products[pid].deposit for pid in amounts):
            deposit = (await self.get_deposit()).price
        lines = tuple(
            SaleLine(
                product=products[pid],
                amount=amount,
                unit_price=products[pid].price,
                deposit=deposit if products[pid].deposit else Decimal(0),
            )
            for pid, amount in amounts.items()
        )
        params = {
            **self._pos_params(pos),
            "PaymentMethod": payment_method,
            "Products": [{"ID": pid, "Amount": amount} for pid, amount in amounts.items()],
        }
        reply = await self._call("payitems", params)
        return Sale(
            pos_id=pos,
            payment_method=methods[payment_method],
            lines=lines,
            items_booked=parse_items_booked(reply),
        )

    def _sale_amounts(self, items: Sequence[SaleItem]) -> dict[int, int]:
        """Product id -> amount, merged, each a whole number from 1 to ``max_amount``."""
        if not items:
            raise InvalidRequest("A sale needs at least one product.")
        amounts: dict[int, int] = {}
        for item in items:
            pid, amount = item.product_id, item.amount
            if isinstance(pid, bool) or not isinstance(pid, int) or pid < 1:
                raise InvalidRequest("A product id must be a whole number of 1 or more.")
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
                raise InvalidRequest("The amount must be a whole number greater than 0.")
            amounts[pid] = amounts.get(pid, 0) + amount
            if amounts[pid] > self._max_amount:
                raise InvalidRequest(
                    f"At most {self._max_amount} of one product can be sold at once."
                )
        return amounts

    async def register_device(self, device_uuid: str | uuid_module.UUID) -> DeviceRegistration:
        """Register a device, or refresh its last ping (``registerdevice``)."""
        try:
            canonical = str(uuid_module.UUID(str(device_uuid)))
        except ValueError:
            raise InvalidRequest(
                "That is not a device UUID (it looks like 13e12ff5-c853-4049-acbc-b1307c00691d)."
            ) from None
        reply = await self._call("registerdevice", {"UUID": canonical})
        return DeviceRegistration(uuid=canonical, parameters=dict(reply))

    async def version(self, *, refresh: bool = False) -> str:
        """The server's version string; reused for ``version_ttl`` s (it costs 50 points)."""

        async def fetch() -> str:
            reply = await self._call("version")
            return as_text(reply.get("Version", reply.get("version")))

        return await self._cached(("version",), fetch, refresh=refresh, ttl=self._ttl["version"])

    async def get_status(self, *, refresh: bool = False) -> ServiceStatus:
        """Pixelcat's service status; reused for ``status_ttl`` s."""

        async def fetch() -> ServiceStatus:
            return ServiceStatus.parse(await self._call("getstatus"))

        return await self._cached(
            ("getstatus",), fetch, refresh=refresh, ttl=self._ttl["getstatus"]
        )

    async def list_transactions(
        self, limit: int | None = 20, *, pos_id: int | None = None
    ) -> TransactionList:
        """The newest transactions of a point of sale; ``limit=None`` asks for all of them."""
        pos = self._pos(pos_id)
        params = self._pos_params(pos)
        if limit is not None:
            if (
                isinstance(limit, bool)
                or not isinstance(limit, int)
                or not 1 <= limit <= MAX_TRANSACTIONS
            ):
                raise InvalidRequest(
                    f"The number of transactions must be between 1 and {MAX_TRANSACTIONS}."
                )
            params["Limit"] = limit
        return TransactionList.parse(await self._call("listtransactions", params))
