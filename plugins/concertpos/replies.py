"""How ConcertPOS results read in chat: short lines, ids first, money with two decimals.

Kept apart from the commands so every reply has one wording, whichever command shows it
(``pos sell`` and ``pos transactions`` both name products), and so the wording can be read
and changed without touching the flows that move money.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from bot import clip

from .models import (
    BudgetSnapshot,
    ConnectionState,
    InstanceConfig,
    License,
    PaymentMethod,
    PointOfSale,
    Product,
    ServiceStatus,
    TransactionList,
    mask,
)

_CENT = Decimal("0.01")
#: the longest product, method or point-of-sale name shown (API text is clipped, with a marker)
NAME_LIMIT = 60


def name(value: object) -> str:
    """A name the API sent, fit for one chat line (clipped, control characters blanked)."""
    return clip(value, NAME_LIMIT)


#: a value that looks like a credential whatever its key is called: long, no spaces, and
#: letters mixed with digits (license keys, api keys, hashes)
_SECRET_VALUE = re.compile(r"^(?=.*[A-Za-z])(?=.*\d)[A-Za-z0-9_.~+/=-]{16,}$")


def money(value: Decimal) -> str:
    """Two decimals, rounded half up as a till does (never binary-float rounding)."""
    return str(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def cents(value: Decimal) -> int:
    """Whole cents, the unit the bot's ledger stores sale amounts in."""
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def product_line(product: Product, deposit: Decimal | None) -> str:
    """``#1 Beer 4.50 (+2.00 deposit)``; the deposit is shown only when it is known. A
    product the API sent with values the bot cannot believe is shown as bad."""
    if product.problem:
        return (
            f"#{product.id} {name(product.name)}: bad product data from ConcertPOS "
            f"({product.problem})"
        )
    text = f"#{product.id} {name(product.name)} {money(product.price)}"
    if product.deposit:
        text += f" (+{money(deposit)} deposit)" if deposit is not None else " (+deposit)"
    if product.crew_blocked:
        text += " [crew blocked]"
    return text


def products_text(pos_id: int, products: Iterable[Product], deposit: Decimal | None) -> str:
    items = list(products)
    if not items:
        return f"Point of sale {pos_id} has no products."
    lines = [f"Products at point of sale {pos_id}:"]
    lines += [product_line(p, deposit) for p in items]
    return "\n".join(lines)


def methods_text(pos_id: int, methods: Iterable[PaymentMethod]) -> str:
    items = list(methods)
    if not items:
        return f"Point of sale {pos_id} offers no payment methods."
    lines = [f"Payment methods at point of sale {pos_id}:"]
    lines += [f"#{m.id} {name(m.name)}" for m in items]
    return "\n".join(lines)


def method_names(methods: Iterable[PaymentMethod]) -> str:
    return ", ".join(f"{name(m.name)} (#{m.id})" for m in methods) or "none"


def _when(value: datetime | None) -> str:
    """Minutes are enough in chat; aware times are shown in UTC, as the API sends them."""
    if value is None:
        return "?"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M")


def transactions_text(
    pos_id: int,
    listing: TransactionList,
    products: Mapping[int, str],
    methods: Mapping[int, str],
) -> str:
    """Newest first, one line each; unknown ids (a product since removed) show as ``#id``."""
    rows = listing.transactions
    bad = (
        f"\n({listing.unreadable} row(s) ConcertPOS sent could not be read)"
        if listing.unreadable
        else ""
    )
    if not rows:
        return (
            f"No readable transactions at point of sale {pos_id}.{bad}"
            if bad
            else (f"No transactions at point of sale {pos_id} yet.")
        )
    shown = f"the latest {len(rows)}" if listing.count > len(rows) else f"{len(rows)}"
    lines = [f"Transactions at point of sale {pos_id} ({shown} of {listing.count}, times UTC):"]
    for t in rows:
        product = name(products.get(t.product_id, f"product #{t.product_id}"))
        method = name(methods.get(t.payment_id, f"method #{t.payment_id}"))
        note = f" - {clip(t.note, 100)}" if t.note else ""
        lines.append(
            f"#{t.id} {_when(t.timestamp)} {t.amount_product} x {product} "
            f"{money(t.amount_money)} ({method}){note}"
        )
    return "\n".join(lines) + bad


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def license_text(lic: License, now: datetime) -> str:
    state = "valid" if lic.valid_at(now) else "NOT valid" if lic.active else "inactive"
    lines = [
        f"License: {name(lic.name) or '(no name)'} ({name(lic.type) or 'unknown type'}), {state}",
        f"Key: {lic.masked_key or '(none)'}",
        f"Since: {_when(lic.created)}; expires: {_when(lic.expires) if lic.expires else 'never'}",
        (
            f"Limits: devices {_limit(lic.device_limit)}, tickets {_limit(lic.ticket_limit)}, "
            f"products {_limit(lic.product_limit)}, payment methods {_limit(lic.payment_limit)}, "
            f"points of sale {_limit(lic.pos_limit)}"
        ),
    ]
    return "\n".join(lines)


def masked_config(config: InstanceConfig) -> dict[str, str]:
    """The instance config with secret-looking keys *and* values masked.

    The model masks by key name; a credential under an innocent name ("webhook": "a9f...")
    is caught here by its shape.
    """
    out = {}
    for key, value in config.masked().items():
        out[key] = mask(value) if _SECRET_VALUE.match(value) else value
    return out


def config_text(config: InstanceConfig) -> str:
    values = masked_config(config)
    if not values:
        return "The ConcertPOS instance has no configuration values."
    lines = ["ConcertPOS instance configuration (secret-looking values masked):"]
    lines += [f"{clip(key, 60)}: {clip(value, 200)}" for key, value in sorted(values.items())]
    return "\n".join(lines)


def connection_line(state: ConnectionState, shards: int) -> str:
    if not state.connected:
        why = f" ({state.last_error})" if state.last_error else ""
        return f"Connection: not connected{why}; retrying."
    where = state.url or "?"
    shard = (
        f", shard {(state.shard_index or 0) + 1} of {shards}"
        if shards > 1 and state.shard_index is not None
        else ""
    )
    since = f" for {state.connected_for:.0f} s" if state.connected_for is not None else ""
    noise = ""
    if state.bad_frames or state.stray_errors:
        noise = (
            f"; ignored {state.bad_frames} unreadable frame(s) and "
            f"{state.stray_errors} error(s) no request could be tied to"
        )
    return f"Connection: {where}{shard}{since}, {state.reconnects} reconnect(s){noise}"


def budget_line(budget: BudgetSnapshot) -> str:
    return (
        f"Rate budget: {budget.used} of {budget.limit} points used in the last "
        f"{budget.window:g} s ({budget.available} free)"
    )


def service_line(status: ServiceStatus) -> str:
    text = clip(status.message, 200) or "(no message)"
    return f"Service: {clip(status.status, 20) or 'unknown'} - {text}"


def points_of_sale_text(items: Iterable[PointOfSale], *, current: int, default: int) -> str:
    """One point of sale per line, the chat's marked; ones that cannot be picked say why."""
    rows = list(items)
    if not rows:
        return "ConcertPOS lists no points of sale."
    lines = ["Points of sale (pick one for this chat with pos list <id>):"]
    for pos in rows:
        notes = []
        if pos.id == current:
            notes.append("this chat")
        if pos.id == default:
            notes.append("default")
        if pos.password:
            notes.append("password")
        if not pos.enabled:
            notes.append("disabled")
        elif pos.special or pos.admin:
            notes.append("not for sales")
        tail = f" ({', '.join(notes)})" if notes else ""
        lines.append(f"#{pos.id} {name(pos.name)}{tail}")
    return "\n".join(lines)
