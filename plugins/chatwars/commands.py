"""The ChatWars chat commands (``cw ...``): chat words in, a few client calls, a sentence out.

The client's typed errors already carry sentences written for chat, so handlers let most of
them through to the dispatcher. They step in where chat needs more than the client knows:
``Forbidden`` becomes a question asking the player to allow the operation (and the original
request is retried once they did), an invalid token says how to link again, and the money
flows (``payments.py``) say what the ledger knows when an answer is missing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Literal, TypeVar

from bot import Permission, Rest, UserError, UserRef, clip, command

from .alerts import FEED_KINDS, FEED_TOPICS, MarketFilter, stored_filter
from .errors import (
    SERVICE,
    ChatWarsError,
    ChatWarsNotConnected,
    ChatWarsTimeout,
    Forbidden,
    InvalidRequest,
    InvalidToken,
    OperationRequestPending,
)
from .items import item_code, item_name
from .models import UserToken
from .payments import BuyPlaced, buy
from .replies import (
    describe_craftbook,
    describe_entry,
    describe_gear,
    describe_guild,
    describe_profile,
    describe_stock,
    duration,
    gold,
    operation_text,
    pouches,
)
from .requests import WantToBuy, check_pouches, check_user_id, payout_message
from .service import ChatWarsService, service_of

if TYPE_CHECKING:
    from bot import Command, Context
    from bot.store import Link

T = TypeVar("T")

Feed = Literal["deals", "offers", "digest", "shops", "duels", "auction", "off"]
_CANCEL_WORDS = {"cancel", "stop", "no", "abort"}


#: "the application balance will be debited with 100 gold per pouch"
GOLD_PER_POUCH = 100

# --- helpers ---------------------------------------------------------------------------------


def check_user_id_or_refuse(telegram_id: int) -> None:
    """A Telegram id that cannot exist is refused in chat, before any limit is counted."""
    try:
        check_user_id(telegram_id)
    except InvalidRequest as exc:
        raise UserError(exc.message) from None


def check_payout(amount: int, message: str) -> None:
    """Refuse a payout the game would refuse, before the admin is asked to confirm it."""
    try:
        check_pouches(amount)
        payout_message(message)
    except InvalidRequest as exc:
        raise UserError(exc.message) from None


def _prefix(ctx: Context) -> str:
    return str(ctx.bot.settings.bot.prefix)


@contextlib.contextmanager
def _link_hint(ctx: Context) -> Iterator[None]:
    """An invalid token's message also says how to link again."""
    try:
        yield
    except InvalidToken as exc:
        exc.message = f"{exc.message.rstrip('.')} with {_prefix(ctx)}cw link."
        exc.args = (exc.message,)
        raise


def _token_of(link: Link, prefix: str) -> UserToken:
    """The stored Telegram id and token of a link (decrypted only here)."""
    telegram_id = link.data.get("telegram_id", link.account)
    token = link.token
    try:
        user_id = int(telegram_id)
    except (TypeError, ValueError):
        user_id = 0
    if not token or user_id <= 0:
        raise UserError(f"This ChatWars link is incomplete; link again with {prefix}cw link.")
    return UserToken(user_id, token)


def _caller(ctx: Context) -> UserToken:
    link = ctx.link(SERVICE)
    prefix = _prefix(ctx)
    if link is None:
        raise UserError(
            f"Link your ChatWars account first: {prefix}cw link <your Telegram user id>."
        )
    return _token_of(link, prefix)


def _recipient(ctx: Context, user: UserRef) -> Link:
    """The link of a user named in an admin command: a mention, a chat user id on this
    platform, or a linked Telegram id."""
    store = ctx.store
    if user.id is not None:
        link = store.get_link(user.platform or ctx.platform, user.id, SERVICE)
        if link is None:
            raise UserError(f"{user.name} has not linked a ChatWars account.")
        return link
    name = user.name.strip().lstrip("@")
    link = store.get_link(ctx.platform, name, SERVICE) or store.find_link_by_account(SERVICE, name)
    if link is None:
        raise UserError(
            f"Nobody named {name[:40]} has linked a ChatWars account (name a chat user or a "
            "linked Telegram user id)."
        )
    return link


def _who(link: Link) -> str:
    return f"Telegram user {link.account}"


def _in_group(ctx: Context) -> bool:
    """A chat others read: codes from the game must not be typed there."""
    return ctx.message.chat_kind != "private"


def _private_only(ctx: Context) -> None:
    """Refuse a code typed where others can read it (and so use it first)."""
    if _in_group(ctx):
        raise UserError(
            "Codes from the ChatWars bot are for private chats: send it to me in a private "
            "chat, not here. Nothing was sent."
        )


async def _approve(ctx: Context, service: ChatWarsService, user: UserToken, operation: str) -> None:
    """Ask the player to allow ``operation`` and complete it with the code they send.

    The game is asked at most once per cool-down (the document warns against spamming);
    within it the player is asked again in chat for the code of the earlier request.
    """
    client = service.client
    what = operation_text(operation)
    try:
        request = await client.auth_additional_operation(user, operation)
        intro = f"The bot needs your permission to {what}: ChatWars has sent you a request."
    except OperationRequestPending as pending:
        if pending.request is None:
            raise UserError(
                "ChatWars may already have sent you a request to allow this, but did not "
                f"confirm it in time. Try again in about {duration(pending.retry_after)}."
            ) from None
        request = pending.request
        intro = f"The bot needs your permission to {what}: ChatWars sent you a request earlier."
    simulated = service.simulated_code(user.user_id, "operation")
    hint = f" (Simulated game: the code is {simulated}.)" if simulated else ""
    if _in_group(ctx):
        # A code typed in a group is read by everyone there: continue in private chat.
        raise UserError(
            f"{intro} Send me the code in a private chat with {_prefix(ctx)}cw code <code>, "
            f"then run the command again.{hint}"
        )
    question = f"{intro} Send me the code from that message (or 'cancel').{hint}"
    later = f"You can still send the code later with {_prefix(ctx)}cw code <code>."
    try:
        answer = (await ctx.ask(question)).strip()
    except UserError as exc:  # no answer in time
        raise UserError(f"{exc.message} {later}") from None
    if answer.lower() in _CANCEL_WORDS or answer.startswith(_prefix(ctx)):
        raise UserError(f"Cancelled; nothing was changed. {later}")
    await client.grant_additional_operation(user, request.request_id, answer)


async def _with_permission(
    ctx: Context, service: ChatWarsService, user: UserToken, call: Callable[[], Awaitable[T]]
) -> T:
    """Run ``call``; on Forbidden ask for the required operation, then run it again."""
    with _link_hint(ctx):
        try:
            return await call()
        except Forbidden as exc:
            if exc.required_operation is None:
                raise
            await _approve(ctx, service, user, exc.required_operation)
        return await call()


# --- linking ---------------------------------------------------------------------------------


@command("cw link", private=True, cooldown=(3, 60.0))
async def cw_link(ctx: Context, telegram_id: int | None = None) -> str:
    """Link your ChatWars account: the ChatWars bot sends you a code to give me.

    Args:
        telegram_id: your Telegram user id (on Telegram, yours is used when left out)
    """
    service = service_of(ctx)
    prefix = _prefix(ctx)
    if telegram_id is None:
        if ctx.platform != "telegram":
            raise UserError(
                f"Tell me your Telegram user id: {prefix}cw link <id> (Telegram's @userinfobot "
                "shows it)."
            )
        try:
            telegram_id = int(ctx.user_id)
        except ValueError:
            raise UserError(f"Tell me your Telegram user id: {prefix}cw link <id>.") from None
    client = service.api()
    check_user_id_or_refuse(telegram_id)
    wait = service.link_limit.wait_before(telegram_id)
    if wait > 0:
        raise UserError(
            f"The ChatWars bot has already sent Telegram user {telegram_id} link codes "
            f"recently; to keep it from spamming that player, try again in about "
            f"{duration(wait)}. A code already sent still works with {prefix}cw code <code>."
        )
    service.link_limit.record(telegram_id)  # before sending: a timed-out send counts too
    await client.create_auth_code(telegram_id)
    service.remember_link(ctx.platform, ctx.user_id, telegram_id)
    where = "to me in a private chat" if _in_group(ctx) else "here"
    text = (
        f"The ChatWars bot has sent Telegram user {telegram_id} a code. Send it {where} with "
        f"{prefix}cw code <code> to finish linking."
    )
    simulated = service.simulated_code(telegram_id, "auth")
    if simulated:
        text += f" (Simulated game: the code is {simulated}.)"
    return text


@command("cw code", private=True, cooldown=(5, 60.0))
async def cw_code(ctx: Context, code: str) -> str:
    """Finish linking (or allow an operation) with the code the ChatWars bot sent you.

    Args:
        code: the code from the ChatWars bot's message
    """
    service = service_of(ctx)
    _private_only(ctx)
    client = service.api()
    prefix = _prefix(ctx)
    pending = service.pending_link(ctx.platform, ctx.user_id)
    if pending is not None:
        granted = await client.grant_token(pending.telegram_id, code)
        ctx.store.set_link(
            ctx.platform,
            ctx.user_id,
            SERVICE,
            str(granted.user_id),
            token=granted.token,
            data={"telegram_id": granted.user_id, "game_id": granted.game_id},
            proof="proven",  # the auth code reached the account's owner: the API proved it
        )
        service.forget_link(ctx.platform, ctx.user_id)
        return (
            f"Your ChatWars account is linked (Telegram user {granted.user_id}). "
            f"Try {prefix}cw profile."
        )
    link = ctx.link(SERVICE)
    if link is not None:
        user = _token_of(link, prefix)
        request = client.pending_operation_request(user.user_id)
        if request is not None:
            with _link_hint(ctx):
                await client.grant_additional_operation(user, request.request_id, code)
            return (
                f"Thank you: the bot may now {operation_text(request.operation)}. "
                "Run your command again."
            )
    raise UserError(
        f"Nothing is waiting for a code from you. Start linking with {prefix}cw link "
        "<your Telegram user id>."
    )


@command("cw unlink", private=True)
async def cw_unlink(ctx: Context) -> str:
    """Forget your ChatWars link and its token."""
    service_of(ctx).forget_link(ctx.platform, ctx.user_id)
    if ctx.store.delete_link(ctx.platform, ctx.user_id, SERVICE):
        return (
            "Your ChatWars link is removed. The game still lists this bot's access; you can "
            "revoke it there."
        )
    return "You had no ChatWars link."


# --- reading ---------------------------------------------------------------------------------


@command("cw profile", cooldown=(10, 60.0))
async def cw_profile(ctx: Context) -> str:
    """Show your ChatWars character: level, guild, attack, defense, gold and pouches."""
    service = service_of(ctx)
    user = _caller(ctx)
    client = service.api()
    profile = await _with_permission(ctx, service, user, lambda: client.request_profile(user))
    return describe_profile(profile)


@command("cw stock", private=True, cooldown=(10, 60.0))
async def cw_stock(ctx: Context) -> str:
    """Show what is in your ChatWars stock."""
    service = service_of(ctx)
    user = _caller(ctx)
    client = service.api()
    stock = await _with_permission(ctx, service, user, lambda: client.request_stock(user))
    return describe_stock(stock)


@command("cw guild", cooldown=(10, 60.0))
async def cw_guild(ctx: Context) -> str:
    """Show your ChatWars guild: tag, level, glory, members and its stock."""
    service = service_of(ctx)
    user = _caller(ctx)
    client = service.api()
    guild = await _with_permission(ctx, service, user, lambda: client.guild_info(user))
    return describe_guild(guild)


@command("cw gear", cooldown=(10, 60.0))
async def cw_gear(ctx: Context) -> str:
    """Show what your ChatWars character wears."""
    service = service_of(ctx)
    user = _caller(ctx)
    client = service.api()
    gear = await _with_permission(ctx, service, user, lambda: client.request_gear_info(user))
    return describe_gear(gear)


@command("cw craftbook", private=True, cooldown=(10, 60.0))
async def cw_craftbook(ctx: Context) -> str:
    """Show the recipes your ChatWars character knows."""
    service = service_of(ctx)
    user = _caller(ctx)
    client = service.api()
    book = await _with_permission(ctx, service, user, lambda: client.view_craftbook(user))
    return describe_craftbook(book)


_BUY = re.compile(r"(?P<item>.+?)\s+(?P<quantity>\d{1,7})\s+(?P<price>\d{1,7})")


@command("cw buy", private=True, cooldown=(5, 60.0))
async def cw_buy(ctx: Context, order: Rest) -> str:
    """Buy on the ChatWars exchange with your gold; you confirm the order first.

    Args:
        order: <item> <quantity> <max price>, e.g. "iron ore 10 3" (an item name or code)
    """
    service = service_of(ctx)
    prefix = _prefix(ctx)
    usage = (
        f"Usage: {prefix}cw buy <item> <quantity> <max price>, e.g. {prefix}cw buy iron ore 10 3."
    )
    found = _BUY.fullmatch(" ".join(str(order).split()))
    if found is None:
        raise UserError(usage)
    code = item_code(found["item"])
    if code is None:
        raise UserError(
            f"I do not know the item {clip(found['item'], 40)!r}; give its exchange code "
            f"(for example 08 for iron ore). {usage}"
        )
    quantity, price = int(found["quantity"]), int(found["price"])
    user = _caller(ctx)
    try:  # refuse what the game would refuse before the question
        WantToBuy(user, code, quantity, price, service.client.new_transaction_id())
    except InvalidRequest as exc:
        raise UserError(exc.message) from None
    client = service.api()
    name = item_name(code)
    total = quantity * price
    question = (
        f"Place a buy order on the ChatWars exchange for {quantity:,} {name} ({code}) at "
        f"{gold(price)} each or less, spending at most {gold(total)} of your gold?"
    )
    if not await ctx.confirm(question):
        return "Cancelled; no order was placed."
    description = f"{quantity} x {name} ({code}) at most {price} gold each"

    async def place() -> BuyPlaced:
        # A fresh ledger row per send: a Forbidden one spent nothing and stays failed.
        fresh = WantToBuy(user, code, quantity, price, client.new_transaction_id())
        return await buy(service.money, ctx.platform, ctx.user_id, user, fresh, description)

    placed = await _with_permission(ctx, service, user, place)
    return (
        f"Your buy order for {quantity:,} {name} at {gold(price)} each or less is placed on "
        f"the exchange. (ledger {placed.entry.transaction_id[:8]})"
    )


# --- payments --------------------------------------------------------------------------------


@command("cw pay", private=True, cooldown=(5, 60.0))
async def cw_pay(ctx: Context, amount: int) -> str:
    """Pay the bot gold pouches from your ChatWars account (you confirm with a code).

    Args:
        amount: how many gold pouches (100 gold each)
    """
    service = service_of(ctx)
    user = _caller(ctx)
    prefix = _prefix(ctx)
    service.api()
    with _link_hint(ctx):
        started = await service.money.start_payment(
            ctx.platform, ctx.user_id, user, amount, prefix=prefix
        )
    authorized = started.authorized
    text = (
        f"ChatWars has sent you a confirmation code for {pouches(authorized.pouches)} "
        f"(ChatWars keeps a fee of {gold(authorized.fee_gold)}). Send {prefix}cw confirm "
        f"<code> within {duration(service.config.payment_expiry)} to pay, or {prefix}cw "
        "cancel."
    )
    simulated = service.simulated_code(user.user_id, "payment")
    if simulated:
        text += f" (Simulated game: the code is {simulated}.)"
    return text


@command("cw confirm", private=True)
async def cw_confirm(ctx: Context, code: str) -> str:
    """Confirm your payment with the code the ChatWars bot sent you.

    Args:
        code: the confirmation code
    """
    service = service_of(ctx)
    _private_only(ctx)
    user = _caller(ctx)
    service.api()
    with _link_hint(ctx):
        settled = await service.money.confirm_payment(
            ctx.platform, ctx.user_id, user, code, prefix=_prefix(ctx)
        )
    entry = settled.entry
    if settled.duplicate:
        return (
            f"Your payment of {pouches(entry.amount)} had already gone through; nothing was "
            f"charged twice. (transaction {entry.transaction_id[:8]})"
        )
    fee = f" (fee {gold(entry.fee)})" if entry.fee is not None else ""
    return (
        f"Paid: {pouches(entry.amount)} went to the bot{fee}. Thank you! "
        f"(transaction {entry.transaction_id[:8]})"
    )


@command("cw cancel", private=True)
async def cw_cancel(ctx: Context) -> str:
    """Cancel your payment that is still waiting for its confirmation code."""
    entry = service_of(ctx).money.cancel_payment(ctx.platform, ctx.user_id)
    if entry is None:
        return "You have no payment waiting for a confirmation code."
    return f"Your payment of {pouches(entry.amount)} is cancelled; nothing was charged."


# --- admin -----------------------------------------------------------------------------------


@command("cw payout", permission=Permission.ADMIN)
async def cw_payout(ctx: Context, user: UserRef, amount: int, message: Rest | None = None) -> str:
    """Send gold pouches from the bot's ChatWars balance to a linked player.

    Args:
        user: a chat user (mention) or a linked Telegram user id
        amount: how many gold pouches (100 gold each)
        message: a note the player gets with the pouches (at most 100 characters)
    """
    service = service_of(ctx)
    prefix = _prefix(ctx)
    link = _recipient(ctx, user)
    token = _token_of(link, prefix)
    text = (message or "").strip()
    check_payout(amount, text)  # refuse bad input before asking
    service.api()
    note = f'the message "{clip(text, 120)}"' if text else "no message"
    question = (
        f"Send {pouches(amount)} ({gold(amount * GOLD_PER_POUCH)}) from the bot's ChatWars "
        f"balance to {_who(link)}, with {note}?"
    )
    if not await ctx.confirm(question):
        return "Cancelled; no payout was sent."
    with _link_hint(ctx):
        settled = await service.money.payout(
            link.platform,
            link.user_id,
            token,
            amount,
            text,
            prefix=prefix,
            transaction_id=ctx.transaction_id("cw payout"),
        )
    entry = settled.entry
    note = " (a retry proved it had gone through once)" if settled.duplicate else ""
    return (
        f"Paid {pouches(entry.amount)} to {_who(link)}{note}. "
        f"(transaction {entry.transaction_id[:8]})"
    )


@command("cw retry", permission=Permission.ADMIN)
async def cw_retry(ctx: Context, transaction: str) -> str:
    """Send a payout whose outcome is unknown again, with its own transaction id.

    Args:
        transaction: the transaction id (its first 8 characters are enough)
    """
    service = service_of(ctx)
    prefix = _prefix(ctx)
    found = service.ledger.find(transaction)
    if not found:
        raise UserError(f"No ChatWars transaction starts with {transaction[:40]!r}.")
    if len(found) > 1:
        raise UserError("Several transactions start with that; give more characters.")
    entry = found[0]
    link = ctx.store.get_link(entry.platform, entry.user_id, SERVICE)
    if link is None:
        raise UserError("That player has unlinked their ChatWars account; it cannot be retried.")
    token = _token_of(link, prefix)
    if entry.status == "done":
        return f"Payout {entry.transaction_id[:8]} is already done; nothing was sent."
    service.money.check_retry(entry, token, prefix=prefix)
    client = service.api()
    # The admin decides with the balance in view: if it already dropped by this payout, the
    # money left and the retry only confirms it (a reused id cannot pay twice).
    try:
        info = await client.get_info()
        balance = f"The bot's ChatWars balance is now {gold(info.balance)}."
    except (ChatWarsError, ChatWarsTimeout, ChatWarsNotConnected) as exc:
        reason = clip(exc.message.rstrip("."), 120)
        balance = f"The bot's ChatWars balance could not be read ({reason})."
    note = f'the message "{clip(entry.message, 120)}"' if entry.message else "no message"
    question = (
        f"Payout {entry.transaction_id[:8]}: {pouches(entry.amount)} "
        f"({gold(entry.amount * GOLD_PER_POUCH)}) to {_who(link)} with {note}; its outcome is "
        f"{entry.status} ({entry.result or 'no answer'}). {balance} Send it again with the "
        "same transaction id (the game refuses to pay one id twice)?"
    )
    if not await ctx.confirm(question):
        return f"Cancelled; payout {entry.transaction_id[:8]} was not sent again."
    with _link_hint(ctx):
        settled = await service.money.retry_payout(entry, token, prefix=prefix)
    entry = settled.entry
    how = "it had gone through already" if settled.duplicate else "it is done"
    return f"Payout {entry.transaction_id[:8]} of {pouches(entry.amount)} to {_who(link)}: {how}."


@command("cw balance", permission=Permission.ADMIN)
async def cw_balance(ctx: Context) -> str:
    """Show the bot's own ChatWars balance."""
    info = await service_of(ctx).api().get_info()
    return (
        f"The bot's ChatWars balance is {gold(info.balance)} "
        f"({pouches(info.balance // 100)} can be paid out)."
    )


@command("cw ledger", permission=Permission.ADMIN)
async def cw_ledger(ctx: Context, user: UserRef | None = None) -> str:
    """List the latest ChatWars payments and payouts, or one player's.

    Args:
        user: only this chat user or linked Telegram user id
    """
    service = service_of(ctx)
    if user is None:
        entries = service.ledger.entries(limit=15)
        title = "Latest ChatWars payments and payouts"
    else:
        link = _recipient(ctx, user)
        entries = service.ledger.entries(platform=link.platform, user_id=link.user_id, limit=15)
        title = f"ChatWars payments and payouts of {_who(link)}"
    if not entries:
        return "The ChatWars ledger has no entries" + ("." if user is None else " for them.")
    return "\n".join([f"{title} (newest first):", *(describe_entry(e) for e in entries)])


# --- alerts ----------------------------------------------------------------------------------


@command("cw alerts")
async def cw_alerts(ctx: Context, feed: Feed | None = None, filter: Rest | None = None) -> str:
    """Send this chat ChatWars market alerts, or stop them.

    Args:
        feed: deals, offers, digest, shops, duels or auction; off to stop (all, or one feed)
        filter: [item] [max price], e.g. "iron ore 5", "charcoal" or "10"
    """
    service = service_of(ctx)
    prefix = _prefix(ctx)
    alerts = ctx.bot.alerts
    topics = set(FEED_TOPICS.values())
    if feed is None:
        subs = [
            s
            for s in ctx.store.subscriptions(platform=ctx.platform, chat_id=ctx.chat_id)
            if s.topic in topics
        ]
        if not subs:
            return (
                "This chat gets no ChatWars alerts. Subscribe with "
                f"{prefix}cw alerts deals|offers|digest|shops|duels|auction [item] [max price]."
            )
        names = {v: k for k, v in FEED_TOPICS.items()}
        parts = [f"{names[s.topic]} ({stored_filter(s.filter or '').describe()})" for s in subs]
        return "This chat gets ChatWars alerts: " + ", ".join(parts) + "."
    if feed == "off":
        which = (filter or "").strip().lower()
        if which and which not in FEED_TOPICS:
            raise UserError(
                f"There is no {which[:20]!r} feed: deals, offers, digest, shops, duels or auction."
            )
        selected = [FEED_TOPICS[which]] if which else list(FEED_TOPICS.values())
        removed = sum(alerts.unsubscribe(ctx.platform, ctx.chat_id, t) for t in selected)
        if not removed:
            return "This chat had no such ChatWars alerts."
        return f"ChatWars {which or 'market'} alerts are off in this chat."
    if FEED_KINDS[feed] not in service.config.feeds.selected:
        raise UserError(
            f"This bot does not read the ChatWars {feed} feed (see chatwars.feeds in its "
            "config), so there would be no alerts."
        )
    wanted = MarketFilter.parse(filter)
    alerts.subscribe(ctx.platform, ctx.chat_id, FEED_TOPICS[feed], wanted.text or None)
    text = f"This chat now gets ChatWars {feed} alerts for {wanted.describe()}."
    if feed in ("deals", "offers"):
        text += (
            f" They come together, at most once every {duration(service.config.alert_interval)}."
        )
    return text


COMMANDS: list[Command] = [
    cw_link,
    cw_code,
    cw_unlink,
    cw_profile,
    cw_stock,
    cw_guild,
    cw_gear,
    cw_craftbook,
    cw_buy,
    cw_pay,
    cw_confirm,
    cw_cancel,
    cw_payout,
    cw_retry,
    cw_balance,
    cw_ledger,
    cw_alerts,
]
