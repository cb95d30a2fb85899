"""The ConcertPOS chat commands: chat words in, one or a few client calls, a reply out.

The client already refuses bad input and wraps every API failure in an error whose message
is a plain sentence, so most handlers let those errors through to the dispatcher. Handlers
catch errors only where chat needs more than the client knows: a sale says whether anything
was booked and names its ledger row, and ``pos status`` shows what it could learn even when
one part fails.

Reads that chats repeat (``pos products``, ``pos methods``) are served from the client's
caches, which an ``updatepos`` broadcast clears: a burst of them costs the rate budget one
``listproducts``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bot import Permission, Rest, UserError, command, subscription_command
from bot.errors import PermissionDenied

from .alerts import TOPIC
from .errors import (
    ConcertPOSError,
    OutcomeUnknown,
    UnknownPaymentMethod,
    UnknownProduct,
    seconds_text,
)
from .lookup import find_point_of_sale
from .models import PaymentMethod, PointOfSale, Product
from .order import parse_order
from .replies import (
    budget_line,
    config_text,
    connection_line,
    license_text,
    method_names,
    methods_text,
    money,
    name,
    points_of_sale_text,
    products_text,
    service_line,
    transactions_text,
)
from .sales import (
    may_sell,
    price,
    record,
    requote,
    settle_done,
    settle_failed,
    settle_unknown,
    short_id,
    sold_text,
    who_may_sell,
)
from .selection import chat_pos, forget_chat_pos, set_chat_pos

if TYPE_CHECKING:
    from bot import Command, Context

    from .client import ConcertPOSClient
    from .config import ConcertPOSConfig

#: most transactions one chat message lists (a longer list is split or unreadable)
MAX_SHOWN = 25
#: rate points ``pos status`` leaves free for sales and lists when it asks optional things
STATUS_RESERVE = 20

T = TypeVar("T")


def _client(ctx: Context) -> ConcertPOSClient:
    client: ConcertPOSClient = ctx.client
    return client


async def _ready(ctx: Context) -> ConcertPOSClient:
    """The client, after waiting out its very first connection attempt.

    Right after start-up (a script piped into the console, a command typed at once) the
    first connection is usually a moment away: waiting for it (at most the call timeout)
    beats "not connected". Once an attempt has failed, calls fail fast instead, so an
    outage never makes chat wait.
    """
    client = _client(ctx)
    state = client.state()
    if not state.connected and state.last_error is None and state.reconnects == 0:
        config: ConcertPOSConfig = ctx.config
        await client.wait_connected(config.timeout)
    return client


def _listed(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, list | tuple | set | frozenset) else []


def _roles(ctx: Context) -> list[Any]:
    """The caller's chat roles as the transport reported them: Discord gives role ids in
    ``roles`` and their names in ``role_names``; ``seller_role`` may be either."""
    extra = ctx.message.extra
    return _listed(extra.get("roles", [])) + _listed(extra.get("role_names", []))


def _pos(ctx: Context) -> int:
    """The point of sale this chat sells at: picked with ``pos list``, else ``pos_id``."""
    config: ConcertPOSConfig = ctx.config
    return chat_pos(ctx.store, ctx.platform, ctx.chat_id, default=config.pos_id)


async def _names(fetch: Callable[[], Awaitable[Any]]) -> dict[int, str]:
    """id -> name for a listing; ids alone when the list cannot be had right now."""
    try:
        return {item.id: item.name for item in await fetch()}
    except ConcertPOSError:
        return {}


async def _spare_call(
    client: ConcertPOSClient, command: str, fetch: Callable[[], Awaitable[T]]
) -> tuple[T | None, str]:
    """Call ``fetch`` for ``pos status`` only if its answer is cached or the budget has room
    for it and a sale after it: ``version`` alone costs half the budget, and a status query
    must never be the reason a sale is told to wait."""
    if not client.is_cached(command):
        wait = client.budget_wait(command, reserve=STATUS_RESERVE)
        if wait > 0:
            return None, (
                "not asked now, to keep the rate budget for sales; "
                f"try again in {seconds_text(wait)} s"
            )
    try:
        return await fetch(), ""
    except ConcertPOSError as exc:
        return None, exc.message


async def _payment_method(
    client: ConcertPOSClient, typed: str | None, default: int | str | None, pos: int
) -> PaymentMethod:
    """The method the seller named, else the configured default; a list to pick from if
    neither gives one the point of sale offers."""
    if typed is not None:
        return await client.find_payment_method(typed, pos)
    if default is not None:
        try:
            return await client.find_payment_method(default, pos)
        except UnknownPaymentMethod:
            methods = await client.list_payment_methods(pos)
            raise UserError(
                "The configured default payment method is not offered at this point of sale; "
                f"name one: {method_names(methods)}."
            ) from None
    methods = await client.list_payment_methods(pos)
    raise UserError(f"Name a payment method: {method_names(methods)}.")


# ---------------------------------------------------------------- everyone


@command("pos products")
async def pos_products(ctx: Context) -> str:
    """List the products of the point of sale with their ids and prices."""
    client = await _ready(ctx)
    pos = _pos(ctx)
    products = await client.list_products(pos)
    deposit = None
    if any(p.deposit and not p.problem for p in products):
        try:
            deposit = (await client.get_deposit()).price
        except ConcertPOSError:
            deposit = None  # the list is still worth showing; the line says "+deposit"
    return products_text(pos, products, deposit)


@command("pos methods")
async def pos_methods(ctx: Context) -> str:
    """List the payment methods of the point of sale with their ids."""
    client = await _ready(ctx)
    pos = _pos(ctx)
    return methods_text(pos, await client.list_payment_methods(pos))


@command("pos sell")
async def pos_sell(ctx: Context, order: Rest) -> str:
    """Sell at the point of sale; you confirm the total before anything is booked.

    Args:
        order: a product and optionally how many and the payment method
            (beer 2 cash; quote names with spaces), or several products with amounts,
            separated by commas, and optionally "by <method>" (2 Hidden Ale, 1 Pretzel by card).
            Products and methods go by id, name, or the start of a name if only one matches;
            the method defaults to the configured one.
    """
    config: ConcertPOSConfig = ctx.config
    if not may_sell(config, is_admin=ctx.is_admin, roles=_roles(ctx)):
        raise PermissionDenied(who_may_sell(config))
    wanted = parse_order(str(order), max_amount=config.max_amount)
    client = await _ready(ctx)
    pos = _pos(ctx)
    lines: list[tuple[Product, int]] = [
        (await client.find_product(line.product, pos), line.amount) for line in wanted.lines
    ]
    merged: dict[int, int] = {}
    for product, amount in lines:
        merged[product.id] = merged.get(product.id, 0) + amount
        if merged[product.id] > config.max_amount:
            raise UserError(f"At most {config.max_amount} of one product can be sold at once.")
    pay = await _payment_method(client, wanted.method, config.default_method, pos)
    quote = await price(client, lines, pay, pos_id=pos)

    if not await ctx.confirm(quote.question()):
        return "Sale cancelled; nothing was sold."

    # An updatepos may have come while the seller was deciding: sell only at the price shown.
    try:
        fresh = await requote(client, quote)
    except UnknownProduct as exc:
        gone = next(
            (line.product.name for line in quote.lines if str(line.product.id) == str(exc.query)),
            "A product",
        )
        raise UserError(
            f"{name(gone)} was taken off this point of sale while you were "
            "confirming, so nothing was sold."
        ) from None
    except UnknownPaymentMethod:
        raise UserError(
            f"{name(quote.method.name)} was taken off this point of sale while you were "
            "confirming, so nothing was sold."
        ) from None
    if fresh.total != quote.total:
        changed = [
            new for old, new in zip(quote.lines, fresh.lines, strict=True) if old.unit != new.unit
        ]
        what = (
            f"The price of {name(changed[0].product.name)} changed to {money(changed[0].unit)}"
            if len(changed) == 1
            else "Prices changed"
        )
        raise UserError(
            f"{what} while you were confirming, so nothing was sold. "
            "Sell again to confirm the new price."
        )

    store = ctx.store
    entry = record(
        store,
        fresh,
        platform=ctx.platform,
        user_id=ctx.user_id,
        transaction_id=ctx.transaction_id("pos sell"),
    )
    audit = {
        "products": ",".join(f"{line.product.id}x{line.amount}" for line in fresh.lines),
        "method": fresh.method.id,
        "pos": pos,
        "sale": entry.transaction_id,
    }
    try:
        sale = await client.pay_items(fresh.items(), fresh.method.id, pos_id=pos)
    except OutcomeUnknown as exc:
        settle_unknown(store, entry, exc.code, exc.message)
        ctx.audit("unknown", **audit)
        raise UserError(f"{exc.message} (sale {short_id(entry)})") from None
    except ConcertPOSError as exc:
        settle_failed(store, entry, exc.code, exc.message)
        ctx.audit(f"failed: {exc.code}", **audit)
        raise UserError(f"Nothing was sold: {exc.message}") from None
    except BaseException:
        # Cancelled (the bot is stopping) or a bug: the request may have gone out.
        settle_unknown(store, entry, None, "the sale was interrupted before ConcertPOS answered")
        raise
    settle_done(store, entry, sale)
    ctx.audit("sold", **audit)
    return sold_text(sale, entry)


@command("pos status")
async def pos_status(ctx: Context) -> str:
    """Show ConcertPOS's service status and version, the bot's connection and rate budget."""
    client = _client(ctx)
    lines = [connection_line(client.state(), client.shard_count)]
    if client.refusal is not None:
        lines.append(f"Refused: {client.refusal.message}")
    if client.connected:
        status, why = await _spare_call(client, "getstatus", client.get_status)
        lines.append(service_line(status) if status else f"Service: unknown ({why})")
        version, why = await _spare_call(client, "version", client.version)
        if version is None:
            lines.append(f"Server version: unknown ({why})")
        else:
            lines.append(f"Server version: {name(version) or 'unknown'}")
    lic = client.cached_license
    if lic is not None:
        lines.append("License: " + ("valid" if lic.valid_at(datetime.now(UTC)) else "NOT valid"))
    lines.append(budget_line(client.rate_budget()))
    config: ConcertPOSConfig = ctx.config
    pos = _pos(ctx)
    if pos != config.pos_id:
        lines.append(f"Point of sale: {pos} (picked for this chat; default {config.pos_id})")
    return "\n".join(lines)


pos_alerts = subscription_command(
    "pos alerts",
    TOPIC,
    help="Turn ConcertPOS update alerts (new prices, products, payment methods) on or off here",
)


# ---------------------------------------------------------------- admins


@command("pos transactions", permission=Permission.ADMIN)
async def pos_transactions(ctx: Context, limit: int = 10) -> str:
    """Show the latest transactions of the point of sale.

    Args:
        limit: how many, newest first (1 to 25, default 10)
    """
    if not 1 <= limit <= MAX_SHOWN:
        raise UserError(f"Show between 1 and {MAX_SHOWN} transactions at a time.")
    client = await _ready(ctx)
    pos = _pos(ctx)
    listing = await client.list_transactions(limit, pos_id=pos)
    products = await _names(lambda: client.list_products(pos))
    methods = await _names(lambda: client.list_payment_methods(pos))
    return transactions_text(pos, listing, products, methods)


@command("pos config", permission=Permission.ADMIN, private=True)
async def pos_config(ctx: Context) -> str:
    """Show the ConcertPOS instance's configuration, secret-looking values masked."""
    client = await _ready(ctx)
    return config_text(await client.get_config())


@command("pos device register", permission=Permission.ADMIN)
async def pos_device_register(ctx: Context, device: str) -> str:
    """Register a device with ConcertPOS, or refresh its last ping.

    Args:
        device: the device's UUID, like 13e12ff5-c853-4049-acbc-b1307c00691d
    """
    client = await _ready(ctx)
    registration = await client.register_device(device)
    new = registration.parameters.get("new")
    if new is False:
        return f"Device {registration.uuid} was already registered; its last ping is updated."
    return f"Device {registration.uuid} is registered."


@command("pos license", permission=Permission.ADMIN)
async def pos_license(ctx: Context, *, refresh: bool = False) -> str:
    """Show the instance's license (fetched once and cached, as ConcertPOS asks).

    Args:
        refresh: fetch it again (after renewing the license)
    """
    client = await _ready(ctx)
    lic = await client.get_license(refresh=refresh)
    return license_text(lic, datetime.now(UTC))


@command("pos list", permission=Permission.ADMIN)
async def pos_list(ctx: Context, pick: str | None = None) -> str:
    """List the points of sale, or pick the one this chat sells at.

    Args:
        pick: a point of sale's id or name to sell at from this chat, or "default" to go
            back to the configured one
    """
    config: ConcertPOSConfig = ctx.config
    client = await _ready(ctx)
    current = _pos(ctx)
    if pick is not None and pick.strip().lower() == "default":
        forget_chat_pos(ctx.store, ctx.platform, ctx.chat_id)
        return f"This chat sells at the configured point of sale {config.pos_id} again."
    listing = await client.list_points_of_sale()
    if pick is None:
        return points_of_sale_text(listing, current=current, default=config.pos_id)
    chosen: PointOfSale = find_point_of_sale(listing, pick)
    if chosen.password and not client.has_password_for(chosen.id):
        raise UserError(
            f"Point of sale {chosen.id} ({name(chosen.name)}) is protected by a password; "
            "only the configured pos_id with its pos_password can be used for it."
        )
    if chosen.password and not await client.verify_auth(chosen.id):
        raise UserError(
            f"ConcertPOS refused the configured pos_password for point of sale {chosen.id}."
        )
    set_chat_pos(ctx.store, ctx.platform, ctx.chat_id, chosen.id)
    ctx.audit("pos picked", pos=chosen.id)
    return f"This chat now sells at point of sale {chosen.id} ({name(chosen.name)})."


COMMANDS: list[Command] = [
    pos_products,
    pos_methods,
    pos_sell,
    pos_status,
    pos_alerts,
    pos_transactions,
    pos_config,
    pos_device_register,
    pos_license,
    pos_list,
]
