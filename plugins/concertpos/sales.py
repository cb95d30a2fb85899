"""Selling from chat: who may, what it costs, and the ledger row that outlives a lost reply.

Money moves once. ConcertPOS has no idempotency key, so a sale can never safely be sent
twice; what the bot can do is write the sale to its ledger *before* sending (status
``pending``), settle the row with what happened (``done``, ``failed`` or ``unknown``), and
never retry on its own. A row left ``unknown`` (the confirmation was lost) tells an admin to
check ``pos transactions`` before selling again.

Ledger rows: service ``concertpos``, kind ``sale``, ``account`` ``pos:<POSID>``, ``amount``
the quoted total **in cents** (deposits included), ``debit`` the total the server booked in
cents, ``result`` the number of items ConcertPOS reported booked (or the error code).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from .errors import SERVICE
from .models import PaymentMethod, Product, Sale
from .replies import cents, money

if TYPE_CHECKING:
    from bot.store import LedgerEntry, Store

    from .client import ConcertPOSClient
    from .config import ConcertPOSConfig

KIND = "sale"


def may_sell(config: ConcertPOSConfig, *, is_admin: bool, roles: Iterable[object]) -> bool:
    """Admins always may; otherwise ``sell_permission`` decides (roles compare ignoring case,
    since a Discord role's name is typed by hand in the config)."""
    if is_admin or config.sell_permission == "everyone":
        return True
    if config.sell_permission == "admins":
        return False
    wanted = config.seller_role.casefold()
    return any(str(role).casefold() == wanted for role in roles)


def who_may_sell(config: ConcertPOSConfig) -> str:
    if config.sell_permission == "admins":
        return "Only admins can sell at the point of sale."
    return f"Only admins and members with the {config.seller_role} role can sell."


@dataclass(frozen=True, slots=True)
class Quote:
    """What the seller is asked to confirm, priced from the lists the client holds."""

    pos_id: int
    product: Product
    amount: int
    method: PaymentMethod
    deposit: Decimal

    @property
    def unit(self) -> Decimal:
        return self.product.price + self.deposit

    @property
    def total(self) -> Decimal:
        return self.unit * self.amount

    def describe(self) -> str:
        """``2 x Beer (#1) at 4.50 + 2.00 deposit``."""
        deposit = f" + {money(self.deposit)} deposit" if self.deposit else ""
        return (
            f"{self.amount} x {self.product.name} (#{self.product.id}) at "
            f"{money(self.product.price)}{deposit}"
        )

    def question(self) -> str:
        return f"Sell {self.describe()} for {money(self.total)}, paid by {self.method.name}?"


async def price(
    client: ConcertPOSClient, product: Product, amount: int, method: PaymentMethod
) -> Quote:
    """Price a sale from the lists the client holds (the deposit only if the product has one)."""
    deposit = (await client.get_deposit()).price if product.deposit else Decimal(0)
    return Quote(client.pos_id, product, amount, method, deposit)


async def requote(client: ConcertPOSClient, quote: Quote) -> Quote:
    """The same sale priced again now: the lists may have changed since ``quote``
    (an ``updatepos`` while the seller was confirming)."""
    product = await client.find_product(quote.product.id)
    method = await client.find_payment_method(quote.method.id)
    return await price(client, product, quote.amount, method)


def record(store: Store, quote: Quote, *, platform: str, user_id: str) -> LedgerEntry:
    """The ``pending`` row, written before anything is sent."""
    return store.ledger_create(
        service=SERVICE,
        kind=KIND,
        platform=platform,
        user_id=user_id,
        account=f"pos:{quote.pos_id}",
        amount=cents(quote.total),
        message=f"{quote.describe()}, paid by {quote.method.name} (#{quote.method.id})",
    )


def settle_done(store: Store, entry: LedgerEntry, sale: Sale) -> LedgerEntry:
    booked = "" if sale.items_booked is None else str(sale.items_booked)
    return store.ledger_update(
        entry.transaction_id, status="done", debit=cents(sale.total), result=booked
    )


def settle_failed(store: Store, entry: LedgerEntry, code: str | None, why: str) -> LedgerEntry:
    return store.ledger_update(
        entry.transaction_id, status="failed", result=code or "error", message=why
    )


def settle_unknown(store: Store, entry: LedgerEntry, code: str | None, why: str) -> LedgerEntry:
    return store.ledger_update(
        entry.transaction_id, status="unknown", result=code or "unknown", message=why
    )


def short_id(entry: LedgerEntry) -> str:
    """Enough of the ledger id to find the row, short enough for chat."""
    return entry.transaction_id[:8]


def sold_text(sale: Sale, entry: LedgerEntry) -> str:
    parts = []
    for line in sale.lines:
        deposit = f" incl. {money(line.deposit * line.amount)} deposit" if line.deposit else ""
        parts.append(f"{line.amount} x {line.product.name} for {money(line.subtotal)}{deposit}")
    return (
        f"Sold {', '.join(parts)}, paid by {sale.payment_method.name}. "
        f"Total: {money(sale.total)}. (sale {short_id(entry)})"
    )
