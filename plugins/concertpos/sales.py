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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from bot import UserError

from .errors import SERVICE
from .models import PaymentMethod, Product, Sale, SaleItem
from .replies import cents, money, name

if TYPE_CHECKING:
    from bot.store import LedgerEntry, Store

    from .client import ConcertPOSClient
    from .config import ConcertPOSConfig

KIND = "sale"


def may_sell(config: ConcertPOSConfig, *, is_admin: bool, roles: Iterable[object]) -> bool:
    """Admins always may; otherwise ``sell_permission`` decides. ``roles`` holds the caller's
    role ids and names (Discord supplies both), so ``seller_role`` may be either; they
    compare ignoring case, since a role's name is typed by hand in the config."""
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
class QuoteLine:
    """One product of a quote and the deposit added to each (0 when it has none)."""

    product: Product
    amount: int
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
            f"{self.amount} x {name(self.product.name)} (#{self.product.id}) at "
            f"{money(self.product.price)}{deposit}"
        )


@dataclass(frozen=True, slots=True)
class Quote:
    """What the seller is asked to confirm, priced from the lists the client holds: one or
    more products, one payment method, one total."""

    pos_id: int
    lines: tuple[QuoteLine, ...]
    method: PaymentMethod

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))

    def describe(self) -> str:
        return ", ".join(line.describe() for line in self.lines)

    def question(self) -> str:
        return f"Sell {self.describe()} for {money(self.total)}, paid by {name(self.method.name)}?"

    def items(self) -> list[SaleItem]:
        return [SaleItem(line.product.id, line.amount) for line in self.lines]


def sellable(product: Product) -> Product:
    """``product``, unless the API sent it with values the bot cannot believe."""
    if product.problem:
        raise UserError(
            f"{name(product.name)} (#{product.id}) cannot be sold: ConcertPOS sent bad data "
            f"for it ({product.problem})."
        )
    return product


async def price(
    client: ConcertPOSClient,
    lines: Sequence[tuple[Product, int]],
    method: PaymentMethod,
    *,
    pos_id: int | None = None,
) -> Quote:
    """Price a sale from the lists the client holds (a deposit only for products with one).
    The same product twice is one line."""
    merged: dict[int, tuple[Product, int]] = {}
    for product, amount in lines:
        sellable(product)
        seen = merged.get(product.id)
        merged[product.id] = (product, amount + (seen[1] if seen else 0))
    deposit = Decimal(0)
    if any(product.deposit for product, _ in merged.values()):
        deposit = (await client.get_deposit()).price
    return Quote(
        client.pos_id if pos_id is None else pos_id,
        tuple(
            QuoteLine(product, amount, deposit if product.deposit else Decimal(0))
            for product, amount in merged.values()
        ),
        method,
    )


async def requote(client: ConcertPOSClient, quote: Quote) -> Quote:
    """The same sale priced again now: the lists may have changed since ``quote``
    (an ``updatepos`` while the seller was confirming)."""
    lines = [
        (await client.find_product(line.product.id, quote.pos_id), line.amount)
        for line in quote.lines
    ]
    method = await client.find_payment_method(quote.method.id, quote.pos_id)
    return await price(client, lines, method, pos_id=quote.pos_id)


def record(
    store: Store,
    quote: Quote,
    *,
    platform: str,
    user_id: str,
    transaction_id: str | None = None,
) -> LedgerEntry:
    """The ``pending`` row, written before anything is sent.

    ``transaction_id`` comes from the command's id when it has one: a sale the cluster runs
    again after a crash finds its row and is refused, never sold twice.
    """
    if transaction_id is not None:
        earlier = store.ledger_get(transaction_id)
        if earlier is not None:
            raise UserError(
                f"This command already recorded sale {transaction_id[:8]} ({earlier.status}); "
                "nothing was sold again. Check pos transactions."
            )
    return store.ledger_create(
        transaction_id=transaction_id,
        service=SERVICE,
        kind=KIND,
        platform=platform,
        user_id=user_id,
        account=f"pos:{quote.pos_id}",
        amount=cents(quote.total),
        message=f"{quote.describe()}, paid by {name(quote.method.name)} (#{quote.method.id})",
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
        parts.append(
            f"{line.amount} x {name(line.product.name)} for {money(line.subtotal)}{deposit}"
        )
    return (
        f"Sold {', '.join(parts)}, paid by {name(sale.payment_method.name)}. "
        f"Total: {money(sale.total)}. (sale {short_id(entry)})"
    )
