"""The ConcertPOS client: every documented command as a typed method, with caches.

Why it is shaped like this:

* **The server's rate limit must never trip**, so what can be reused is: products, payment
  methods and the deposit price are cached until an ``updatepos`` broadcast (or a reconnect,
  which may have missed one); the license is fetched once at start, as the doc asks; version
  (50 points) and status are reused for a short while. Concurrent callers of a cached command
  share one request. Everything else waits for rate budget or is refused with "try again in
  N s" (see :mod:`.ratelimit`).
* **Money moves once.** A sale is checked against the point of sale's lists before it is
  sent, so a typo never reaches the server, and ``payitems`` is never retried: if its
  confirmation is lost the caller gets :class:`~.errors.OutcomeUnknown`.
* **Bad input is refused here**, before any points are spent, with a message for the user.

Connections, shards and reply routing live in :mod:`.connection`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import uuid as uuid_module
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from .connection import PosConnection
from .errors import (
    AmbiguousName,
    BudgetExhausted,
    ConcertPOSAuthError,
    ConcertPOSError,
    ConcertPOSInstanceError,
    InvalidRequest,
    RateLimited,
    UnknownPaymentMethod,
    UnknownProduct,
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
    PointOfSale,
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
    parse_points_of_sale,
    parse_products,
)
from .ratelimit import DEFAULT_COSTS, DEFAULT_LIMIT, DEFAULT_WINDOW, BudgetMode, RateBudgets

if TYPE_CHECKING:
    from .config import ConcertPOSConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
Listener = Callable[[PosEvent], Awaitable[None] | None]

#: cache keys dropped by ``updatepos`` and by a reconnect
_POS_CACHES = frozenset({"listproducts", "listpm", "getdeposit"})
#: the largest ``listtransactions`` Limit we ask for (the frame must stay readable)
MAX_TRANSACTIONS = 1000


class ConcertPOSClient:
    """One connection to a ConcertPOS instance, shared by every command of the plugin.

    ``urls`` are tried in order (the shards); ``pos_id`` is the point of sale used when a call
    names none. ``timeout`` bounds both the wait for rate budget and the wait for a reply;
    ``late_reply_grace`` (default: ``timeout``) is how long a timed-out request's reply may
    still come before the connection is recycled. ``rate_*`` and ``costs`` describe the
    server's limit (costs default to the doc's); ``max_amount`` caps one product in a sale.
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
        rate_budget: BudgetMode = "shared",
        max_retry_after: float = 300.0,
        max_frame: int = 16 * 1024 * 1024,
    ) -> None:
        self._pos_id = self._check_pos(pos_id)
        self._pos_password = pos_password
        costs = {**DEFAULT_COSTS, **(costs or {})}
        for command, points in costs.items():
            if points > rate_limit:
                raise ValueError(f"{command} costs more points than the whole rate limit")
        self._costs = costs
        self._budgets = RateBudgets(rate_budget, rate_limit, rate_window, margin=rate_margin)
        self._connection = PosConnection(
            urls,
            api_key,
            budgets=self._budgets,
            costs=costs,
            on_event=self._on_event,
            on_reconnect=self._invalidate,
            timeout=timeout,
            connect_timeout=connect_timeout,
            reconnect_min=reconnect_min,
            reconnect_max=reconnect_max,
            late_reply_grace=late_reply_grace,
            max_retry_after=max_retry_after,
            max_frame=max_frame,
        )
        #: the last refusal of our credentials or instance, until a call succeeds again
        self._refusal: ConcertPOSError | None = None
        #: loop time of the last ``ratelimit`` the server sent (should stay None)
        self._rate_limited_at: float | None = None
        self._ttl = {"version": version_ttl, "getstatus": status_ttl}
        self._max_amount = max_amount
        self._fetch_license = fetch_license

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
            rate_budget=config.rate_budget,
            max_retry_after=config.max_retry_after,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self, wait: float | None = None) -> bool:
        """Start connecting (in the background, for good) and wait up to ``wait`` seconds
        (default: ``connect_timeout`` per URL) for the first connection; then fetch and cache
        the license, as the doc asks. Returns whether a connection is up; a failure to reach
        any shard is not fatal, the client keeps trying and calls fail fast meanwhile."""
        if not await self._connection.start(wait):
            return False
        if self._fetch_license and ("getlicense",) not in self._cache:
            try:
                await self.get_license()
            except ConcertPOSError as exc:
                log.warning("ConcertPOS: could not fetch the license at start: %s", exc.message)
        return self.connected

    async def close(self) -> None:
        """Stop reconnecting, close the connection and fail whatever still waits."""
        await self._connection.close()
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
        return self._connection.connected

    async def wait_connected(self, within: float) -> bool:
        """Wait up to ``within`` seconds for a connection (e.g. after a reconnect)."""
        return await self._connection.wait_connected(within)

    def state(self) -> ConnectionState:
        """Our side of ``pos status``: connected where, for how long, reconnects so far."""
        return self._connection.state()

    def rate_budget(self) -> BudgetSnapshot:
        """The shared budget, or (``per_command``) the busiest command's."""
        return self._budgets.snapshot()

    def budget_wait(self, command: str, *, reserve: int = 0) -> float:
        """Seconds until ``command`` could be sent with ``reserve`` points still left after
        it (0: now). Lets optional calls (``version`` in ``pos status``) give way to sales
        instead of spending the budget a sale needs."""
        points = min(self._budgets.limit, self._costs[command] + max(0, reserve))
        return self._budgets.for_command(command).wait_time(points)

    def is_cached(self, command: str, pos_id: int | None = None) -> bool:
        """Whether ``command``'s answer would come from the cache now (no points spent)."""
        key: tuple[Any, ...] = (
            (command, self._pos(pos_id)) if command in ("listproducts", "listpm") else (command,)
        )
        hit = self._cache.get(key)
        return hit is not None and hit[0] > asyncio.get_running_loop().time()

    @property
    def refusal(self) -> ConcertPOSError | None:
        """Why the server last refused our api key or instance, until a call succeeds again;
        a health check reads it without a round trip."""
        return self._refusal

    @property
    def rate_limited_at(self) -> float | None:
        """Event-loop time of the last ``ratelimit`` error from the server, if any."""
        return self._rate_limited_at

    @property
    def cached_license(self) -> License | None:
        """The license if it was fetched already (no network)."""
        hit = self._cache.get(("getlicense",))
        return None if hit is None else hit[1]

    async def _call(
        self, command: str, params: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        """Send through the connection, remembering what health checks need to know."""
        try:
            reply = await self._connection.call(command, params)
        except (ConcertPOSAuthError, ConcertPOSInstanceError) as exc:
            self._refusal = exc
            raise
        except RateLimited as exc:
            if not isinstance(exc, BudgetExhausted):
                self._rate_limited_at = asyncio.get_running_loop().time()
            raise
        self._refusal = None
        return reply

    @property
    def pos_id(self) -> int:
        return self._pos_id

    @property
    def shard_count(self) -> int:
        """How many endpoints (shards) the client fails over between."""
        return len(self._connection.urls)

    # ------------------------------------------------------------------ events

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every broadcast (``updatepos`` included) and every
        message that answers no request. It may be a coroutine function; a failing listener
        is logged and never stops the connection."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _on_event(self, event: PosEvent) -> None:
        if event.is_updatepos:
            self._invalidate()
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

    # ------------------------------------------------------------------ caches

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

    async def preload(self) -> None:
        """Fill the product, payment-method and deposit caches, as a till does when it opens.

        A cold sale costs 56 rate points (lists, deposit, ``payitems``) of the 100 per
        window; with the lists cached it costs 1, so sales keep working while others look
        around. Failures are logged, not raised: every list is fetched again on demand.
        """
        try:
            products = await self.list_products()
            await self.list_payment_methods()
            if any(p.deposit for p in products):
                await self.get_deposit()
        except ConcertPOSError as exc:
            log.warning("ConcertPOS: could not preload the point of sale: %s", exc.message)

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _check_pos(pos_id: Any) -> int:
        if isinstance(pos_id, bool) or not isinstance(pos_id, int) or pos_id < 1:
            raise InvalidRequest("A point of sale id must be a whole number of 1 or more.")
        return pos_id

    def _pos(self, pos_id: int | None) -> int:
        return self._pos_id if pos_id is None else self._check_pos(pos_id)

    def _pos_params(self, pos: int) -> dict[str, Any]:
        """``POSID``, and ``posPassword`` for the configured point of sale (its password is
        never sent for another one)."""
        params: dict[str, Any] = {"POSID": pos}
        if self._pos_password is not None and pos == self._pos_id:
            params["posPassword"] = self._pos_password
        return params

    def has_password_for(self, pos_id: int) -> bool:
        """Whether the config holds a password for ``pos_id`` (only ever the configured one)."""
        return self._pos_password is not None and pos_id == self._pos_id

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
            if products[product_id].problem:
                raise InvalidRequest(
                    f"Product #{product_id} cannot be sold: ConcertPOS sent bad data for it "
                    f"({products[product_id].problem})."
                )
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

    async def list_points_of_sale(self) -> tuple[PointOfSale, ...]:
        """Every point of sale of the instance (``listpos``; not in the doc, the vendor's
        client calls it at start to let the till pick one)."""
        return parse_points_of_sale(await self._call("listpos"))

    async def verify_auth(self, pos_id: int | None = None) -> bool:
        """Whether ConcertPOS accepts the configured ``pos_password`` for ``pos_id``
        (``verifyauth``, as the vendor's client checks a workplace password). False when no
        password is configured for it."""
        pos = self._pos(pos_id)
        if not self.has_password_for(pos):
            return False
        reply = await self._call("verifyauth", {"password": self._pos_password, "workplace": pos})
        return reply.get("success") is True or as_text(reply.get("success")).lower() == "true"

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
