"""Typed results of the ConcertPOS commands, and the tolerant parsing that builds them.

The server is a JavaScript service: numbers may arrive as strings, flags as ``0``/``1``,
``"0"``/``"1"`` or booleans, and fields may be missing. Parsing accepts all of those and turns
them into one shape, so code above the client never meets a raw dict. Money is ``Decimal``:
totals of many small prices must add up exactly in a sale reply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ProtocolError

#: the largest amount of money believed from the API (a till's prices and totals are far
#: below; 1e308 would overflow every sum and every rounding)
MAX_MONEY = Decimal(10) ** 9
#: ids and counts beyond JavaScript's safe integers cannot be what the server meant
MAX_ID = 2**53 - 1
#: the longest name kept from the API (names are clipped again where chat shows them)
MAX_NAME = 200

# ---------------------------------------------------------------- tolerant scalar parsing


def as_int(value: Any, what: str) -> int:
    """An integer from an int, an integral float or a numeric string, within ±``MAX_ID``."""
    number: int | None = None
    if isinstance(value, bool):
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and len(value) <= 32:
        try:
            number = int(value.strip())
        except ValueError:
            pass
    if number is None:
        raise ProtocolError(f"{what} is not a whole number")
    if abs(number) > MAX_ID:
        raise ProtocolError(f"{what} is out of range")
    return number


def as_optional_int(value: Any, what: str) -> int | None:
    return None if value is None or value == "" else as_int(value, what)


def as_money(value: Any, what: str) -> Decimal:
    """A Decimal from a number or a string (a comma decimal is accepted too)."""
    if isinstance(value, bool) or value is None:
        raise ProtocolError(f"{what} is not an amount of money")
    if isinstance(value, str) and len(value) > 40:
        raise ProtocolError(f"{what} is not an amount of money")
    text = str(value).strip().replace(",", ".")
    try:
        result = Decimal(text)
    except (InvalidOperation, ValueError):
        raise ProtocolError(f"{what} is not an amount of money") from None
    if not result.is_finite():
        raise ProtocolError(f"{what} is not an amount of money")
    if abs(result) > MAX_MONEY:
        raise ProtocolError(f"{what} is out of range")
    return result


def as_flag(value: Any) -> bool:
    """``Active: "0"`` must be False: plain ``bool("0")`` would say True."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "null")
    return bool(value)


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


def as_name(value: Any) -> str:
    """A display name from the API: text, stripped, at most ``MAX_NAME`` characters."""
    if value is None or isinstance(value, dict | list):
        return ""
    text = str(value).strip()
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1] + "…"


def as_time(value: Any) -> datetime | None:
    """An ISO timestamp (``Z`` or an offset); unreadable or missing values become None."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _record(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{what} is not an object")
    return value


# ---------------------------------------------------------------- products and methods


@dataclass(frozen=True, slots=True)
class Product:
    """A product sold at a point of sale. ``deposit`` means the deposit price is added.

    ``problem`` is set (and ``price`` is 0) when the API sent a product the bot cannot
    believe, e.g. a price of 1e308: it is listed as bad, and never sold.
    """

    id: int
    name: str
    price: Decimal
    deposit: bool = False
    crew_blocked: bool = False
    problem: str | None = None

    @classmethod
    def parse(cls, data: Any) -> Product:
        rec = _record(data, "a product")
        pid = as_int(rec.get("ID"), "a product's ID")
        return cls(
            id=pid,
            name=as_name(rec.get("ProductName")) or f"#{pid}",
            price=as_money(rec.get("Price"), "a product's Price"),
            deposit=as_flag(rec.get("Deposit")),
            crew_blocked=as_flag(rec.get("CrewBlocked")),
        )

    @classmethod
    def parse_or_flag(cls, data: Any) -> Product | None:
        """The product, or a flagged stand-in when only its ID can be read; None when not
        even that (nothing to show or to sell)."""
        try:
            return cls.parse(data)
        except ProtocolError as exc:
            if not isinstance(data, Mapping):
                return None
            try:
                pid = as_int(data.get("ID"), "a product's ID")
            except ProtocolError:
                return None
            return cls(
                id=pid,
                name=as_name(data.get("ProductName")) or f"#{pid}",
                price=Decimal(0),
                problem=exc.what,
            )


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    """A way to pay at a point of sale (cash, card, ...). ``color`` is the UI's button colour."""

    id: int
    name: str
    color: str | None = None

    @classmethod
    def parse(cls, data: Any) -> PaymentMethod:
        rec = _record(data, "a payment method")
        color = rec.get("color", rec.get("Color"))
        pid = as_int(rec.get("ID"), "a payment method's ID")
        return cls(
            id=pid,
            name=as_name(rec.get("Payment", rec.get("Name"))) or f"#{pid}",
            color=None if color is None else as_name(color)[:32],
        )


#: the most products or payment methods one point of sale can list (a till's screen)
MAX_LISTED = 5000


def _listed(value: Any, what: str, limit: int = MAX_LISTED) -> list[Any]:
    """The raw entries of a list the API sent (a dict keyed by id works too), bounded."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        value = list(value.values())
    if not isinstance(value, list):
        raise ProtocolError(f"{what} is not a list")
    if len(value) > limit:
        raise ProtocolError(f"{what} has more than {limit} entries")
    return value


def parse_products(params: Mapping[str, Any]) -> tuple[Product, ...]:
    """Every product; one the bot cannot believe is kept flagged, so the listing still
    works and shows it as bad (entries without even a readable ID are left out)."""
    products = (Product.parse_or_flag(p) for p in _listed(params.get("Products"), "Products"))
    return tuple(p for p in products if p is not None)


def parse_payment_methods(params: Mapping[str, Any]) -> tuple[PaymentMethod, ...]:
    """Every readable payment method; unreadable entries are left out (none can be used)."""
    methods = []
    for entry in _listed(params.get("PaymentMethods"), "PaymentMethods"):
        try:
            methods.append(PaymentMethod.parse(entry))
        except ProtocolError:
            continue
    return tuple(methods)


@dataclass(frozen=True, slots=True)
class PointOfSale:
    """A point of sale ("workplace" in the vendor's client) from ``listpos``.

    The doc does not describe ``listpos``; the fields are the ones the vendor's client reads:
    ``ID``, ``PointOfSale`` (the name), ``enabled``, ``special``, ``admin`` and ``password``
    (truthy when selling there needs a password). The vendor's client offers only enabled,
    non-special, non-admin ones to pick.
    """

    id: int
    name: str
    enabled: bool = True
    special: bool = False
    admin: bool = False
    password: bool = False

    @property
    def selectable(self) -> bool:
        return self.enabled and not self.special and not self.admin

    @classmethod
    def parse(cls, data: Any) -> PointOfSale:
        rec = _record(data, "a point of sale")
        pid = as_int(rec.get("ID"), "a point of sale's ID")
        return cls(
            id=pid,
            name=as_name(rec.get("PointOfSale", rec.get("Name"))) or f"#{pid}",
            enabled=as_flag(rec.get("enabled", True)),
            special=as_flag(rec.get("special")),
            admin=as_flag(rec.get("admin")),
            password=as_flag(rec.get("password")),
        )


def parse_points_of_sale(params: Mapping[str, Any]) -> tuple[PointOfSale, ...]:
    """Every readable point of sale; unreadable entries are left out."""
    found = []
    for entry in _listed(params.get("POS"), "POS"):
        try:
            found.append(PointOfSale.parse(entry))
        except ProtocolError:
            continue
    return tuple(found)


# ---------------------------------------------------------------- transactions


@dataclass(frozen=True, slots=True)
class Transaction:
    """One booked line: ``amount_money`` is what the line cost (negative for a refund)."""

    id: int
    payment_id: int
    pos_id: int
    product_id: int
    amount_product: int
    amount_money: Decimal
    timestamp: datetime | None
    hash: str
    note: str | None = None

    @classmethod
    def parse(cls, data: Any) -> Transaction:
        rec = _record(data, "a transaction")
        note = rec.get("Note")
        return cls(
            id=as_int(rec.get("ID"), "a transaction's ID"),
            payment_id=as_int(rec.get("Payment_ID"), "a transaction's Payment_ID"),
            pos_id=as_int(rec.get("PointOfSaleID"), "a transaction's PointOfSaleID"),
            product_id=as_int(rec.get("Product_ID"), "a transaction's Product_ID"),
            amount_product=as_int(rec.get("AmountProduct"), "a transaction's AmountProduct"),
            amount_money=as_money(rec.get("AmountMoney"), "a transaction's AmountMoney"),
            timestamp=as_time(rec.get("timestamp")),
            hash=as_text(rec.get("hash")),
            note=None if note is None else str(note),
        )


@dataclass(frozen=True, slots=True)
class TransactionList:
    """``count`` is the server's ``Count`` (it may exceed ``len(transactions)`` with a Limit);
    ``unreadable`` rows the API sent with values the bot cannot believe are left out and
    counted, so one bad row does not hide the others."""

    count: int
    transactions: tuple[Transaction, ...]
    unreadable: int = 0

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> TransactionList:
        rows = _listed(params.get("Transactions"), "Transactions", limit=1_000_000)
        items = []
        for row in rows:
            try:
                items.append(Transaction.parse(row))
            except ProtocolError:
                continue
        try:
            count = as_optional_int(params.get("Count"), "Count")
        except ProtocolError:
            count = None
        total = len(rows) if count is None or count < len(rows) else count
        return cls(count=total, transactions=tuple(items), unreadable=len(rows) - len(items))


# ---------------------------------------------------------------- instance information


def _limit(value: Any, what: str) -> int | None:
    """License limits use 0 for "unlimited"; None says the same without a magic number."""
    number = as_optional_int(value, what)
    return None if not number else number


@dataclass(frozen=True, slots=True)
class License:
    """The instance's license. ``*_limit`` of None means unlimited.

    ``license_key`` is kept out of ``repr`` and should be shown only through :attr:`masked_key`.
    """

    name: str
    active: bool
    type: str
    license_key: str = field(repr=False, default="")
    device_limit: int | None = None
    ticket_limit: int | None = None
    product_limit: int | None = None
    payment_limit: int | None = None
    pos_limit: int | None = None
    created: datetime | None = None
    expires: datetime | None = None

    @property
    def masked_key(self) -> str:
        return mask(self.license_key)

    def valid_at(self, when: datetime) -> bool:
        """Active, already started and not yet expired (the official client's three checks)."""
        if not self.active:
            return False
        if self.created and _comparable(self.created, when) < self.created:
            return False
        return not (self.expires and _comparable(self.expires, when) > self.expires)

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> License:
        rec = _record(params.get("License", params), "License")
        return cls(
            name=as_text(rec.get("Name")),
            active=as_flag(rec.get("Active")),
            type=as_text(rec.get("Type")),
            license_key=as_text(rec.get("LicenseKey")),
            device_limit=_limit(rec.get("DeviceLimit"), "DeviceLimit"),
            ticket_limit=_limit(rec.get("TicketLimit"), "TicketLimit"),
            product_limit=_limit(rec.get("ProductLimit"), "ProductLimit"),
            payment_limit=_limit(rec.get("PaymentLimit"), "PaymentLimit"),
            pos_limit=_limit(rec.get("POSLimit"), "POSLimit"),
            created=as_time(rec.get("Created")),
            expires=as_time(rec.get("Expires")),
        )


def _comparable(reference: datetime, when: datetime) -> datetime:
    """Compare naive with naive and aware with aware, whatever the caller passed."""
    if (reference.tzinfo is None) == (when.tzinfo is None):
        return when
    return when.replace(tzinfo=None) if reference.tzinfo is None else when.astimezone()


@dataclass(frozen=True, slots=True)
class Deposit:
    """The price added for each product marked ``deposit``."""

    price: Decimal

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> Deposit:
        """``Deposit`` is an object with ``Price`` in the official client; a bare number works."""
        value = params.get("Deposit", params)
        if isinstance(value, Mapping):
            value = value.get("Price")
        return cls(price=as_money(value, "the deposit Price"))


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """Pixelcat's status page as relayed by ``getstatus``; ``status`` is an alert level."""

    status: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> ServiceStatus:
        return cls(status=as_text(params.get("status")), message=as_text(params.get("message")))


_SECRET_KEY = re.compile(r"key|secret|token|pass|pwd|auth|licen[cs]e", re.IGNORECASE)


def mask(value: str) -> str:
    """Enough of a secret to tell two apart, not enough to use one."""
    if len(value) <= 8:
        return "****" if value else ""
    return f"{value[:2]}…{value[-2:]}"


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    """The instance's key/value configuration (``getconfig``)."""

    values: Mapping[str, Any]

    def masked(self) -> dict[str, str]:
        """The values as text, with anything whose key looks secret masked (for ``pos config``)."""
        return {
            str(k): mask(as_text(v)) if _SECRET_KEY.search(str(k)) else as_text(v)
            for k, v in self.values.items()
        }

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> InstanceConfig:
        """``Config`` is an object in the official client; a list of Key/Value rows also works."""
        raw = params.get("Config", params)
        if isinstance(raw, list):
            rows = [_record(r, "a config row") for r in raw]
            raw = {
                as_text(r.get("Key", r.get("key"))): r.get("Value", r.get("value")) for r in rows
            }
        return cls(values=dict(_record(raw, "Config")))


@dataclass(frozen=True, slots=True)
class DeviceRegistration:
    """The answer to ``registerdevice``; the doc shows no reply fields, so they are kept raw."""

    uuid: str
    parameters: Mapping[str, Any]


# ---------------------------------------------------------------- sales


@dataclass(frozen=True, slots=True)
class SaleItem:
    """What to sell: a product id and how many (the API's Product model)."""

    product_id: int
    amount: int = 1


@dataclass(frozen=True, slots=True)
class SaleLine:
    """One product of a sale, priced from the product list the client checked it against."""

    product: Product
    amount: int
    unit_price: Decimal
    deposit: Decimal

    @property
    def subtotal(self) -> Decimal:
        return (self.unit_price + self.deposit) * self.amount


@dataclass(frozen=True, slots=True)
class Sale:
    """A confirmed ``payitems``. ``items_booked`` is the server's ``Items`` count (if it sent
    one); ``total`` includes deposits."""

    pos_id: int
    payment_method: PaymentMethod
    lines: tuple[SaleLine, ...]
    items_booked: int | None

    @property
    def total(self) -> Decimal:
        return sum((line.subtotal for line in self.lines), Decimal(0))


def parse_items_booked(params: Mapping[str, Any]) -> int | None:
    """``Items`` is a count in the official client; a list of booked rows is counted."""
    items = params.get("Items")
    if isinstance(items, list):
        return len(items)
    try:
        return as_optional_int(items, "Items")
    except ProtocolError:
        return None


# ---------------------------------------------------------------- pushed messages and state


@dataclass(frozen=True, slots=True)
class PosEvent:
    """Anything the server sent that was not a reply: a broadcast, a command model, or an
    error nobody was waiting for. ``name`` is the broadcast's ``message`` (e.g. ``updatepos``)."""

    kind: str
    name: str
    parameters: Mapping[str, Any]

    @property
    def is_updatepos(self) -> bool:
        return self.kind == "broadcast" and self.name == "updatepos"


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    """The rate budget as seen now: points spent or reserved in the current window."""

    limit: int
    window: float
    used: int

    @property
    def available(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """What ``pos status`` tells about our side. ``url`` has no query string (no secrets)."""

    connected: bool
    url: str | None
    shard_index: int | None
    connected_for: float | None
    reconnects: int
    #: why the last connection attempt failed or the last connection ended (no secrets)
    last_error: str | None = None
    #: frames that could not be read, and errors no single request could be tied to
    bad_frames: int = 0
    stray_errors: int = 0
