"""Chat commands of the rooms plugin: room join/leave, rooms, credits, link rooms.

Handlers only translate between chat and :class:`~.service.RoomsService`: who is asking, what
to say back. Every failure the service or the API reports is a ``RoomsError`` (a
``ServiceError``), whose message the dispatcher shows as is; none of them carries the key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot import Command, PermissionDenied, Proof, UserError, UserRef, clip, command, link_trusted

from .errors import SERVICE
from .records import ChatUser
from .service import RoomsService

if TYPE_CHECKING:
    from bot import Context


def _service(ctx: Context) -> RoomsService:
    service: RoomsService = ctx.state  # raises NotConnected if the plugin is not running
    return service


def _caller(ctx: Context) -> ChatUser:
    return ChatUser(ctx.platform, ctx.user_id, ctx.user_name, ctx.chat_id)


def _prefix(ctx: Context) -> str:
    return ctx.bot.settings.bot.prefix


def _since(joined_at: datetime, now: datetime) -> str:
    """'since 14:03 UTC (12 min ago)'; the date is added when it was not today."""
    joined = joined_at.astimezone(UTC)
    stamp = joined.strftime("%H:%M UTC" if joined.date() == now.date() else "%Y-%m-%d %H:%M UTC")
    seconds = max(0, int((now - joined).total_seconds()))
    if seconds < 60:
        ago = f"{seconds} s"
    elif seconds < 3600:
        ago = f"{seconds // 60} min"
    elif seconds < 86400:
        ago = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    else:
        ago = f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    return f"since {stamp} ({ago} ago)"


@command("room join", cooldown=(3, 10.0))
async def room_join(ctx: Context, performer_id: int) -> str:
    """Enter a performer's room; the bot keeps you present until you leave.

    Your chat display name is your nickname there. Link your customer id first
    (link rooms <customer id>) to join as a registered customer with your credits.

    Args:
        performer_id: the id of the performer whose room to join
    """
    service = _service(ctx)
    presence = await service.join(_caller(ctx), performer_id)
    text = f"You are in performer {performer_id}'s room as {clip(presence.display_nickname, 80)}."
    if not presence.registered:
        claimed = service.claimed_customer(ctx.platform, ctx.user_id)
        if claimed is not None:
            text += (
                f" You joined as a guest: your link to customer {claimed} is waiting for an "
                "admin's approval."
            )
        else:
            text += (
                f" You joined as a guest; link your customer id with {_prefix(ctx)}link rooms "
                "<customer id> to join as a registered customer."
            )
    return text


@command("room leave")
async def room_leave(ctx: Context, performer_id: int | None = None) -> str:
    """Leave a performer's room (the only one you are in, if you name none).

    Args:
        performer_id: the performer whose room to leave
    """
    outcome = await _service(ctx).leave(_caller(ctx), performer_id)
    pid = outcome.presence.performer_id
    if outcome.error is None:
        return f"You left performer {pid}'s room."
    return (
        f"You left performer {pid}'s room on the bot's side, but the rooms service did not "
        f"confirm it: {outcome.error.message} Without keep-alive pings it drops you shortly."
    )


@command("rooms")
async def rooms(ctx: Context) -> str:
    """Show the rooms you are present in, and since when."""
    mine = _service(ctx).presences(_caller(ctx))
    if not mine:
        return f"You are not in any room. Join one with {_prefix(ctx)}room join <performer id>."
    now = datetime.now(UTC)
    lines = ["You are present in:"]
    for p in mine:
        line = f"performer {p.performer_id} as {p.display_nickname}, {_since(p.joined_at, now)}"
        if p.failures:
            line += " - keep-alive pings are failing"
        lines.append(line)
    return "\n".join(lines)


def _target(ctx: Context, ref: UserRef) -> tuple[str, str, str]:
    """(platform, user id, how to name them) for the user an admin named.

    A mention carries the user's id. A bare number is a rooms customer id, found through the
    link its owner made; any other bare word is taken as a user id on this platform (what
    the console uses), which Discord and Telegram users get by mentioning instead.
    """
    if ref.id:
        return ref.platform or ctx.platform, ref.id, ref.name
    name = ref.name.strip()
    if name.isdecimal():
        link = ctx.store.find_link_by_account(SERVICE, str(int(name)))
        if link is None:
            raise UserError(f"No chat user has linked rooms customer id {name}.")
        return link.platform, link.user_id, f"customer {int(name)}"
    if not name:
        raise UserError("Name the user by mention, user id or rooms customer id.")
    return ctx.platform, name, name


def _own_credits(ctx: Context, service: RoomsService) -> str:
    prefix = _prefix(ctx)
    balance = service.balance(ctx.platform, ctx.user_id)
    customer = service.registered_customer(ctx.platform, ctx.user_id)
    if customer is not None:
        return f"You have {balance} credits (customer {customer})."
    claimed = service.claimed_customer(ctx.platform, ctx.user_id)
    if claimed is not None:
        return (
            f"You have {balance} credits (as a guest until an admin approves your link to "
            f"customer {claimed})."
        )
    return (
        f"You have {balance} credits (as a guest; link your customer id with "
        f"{prefix}link rooms <customer id> to be registered)."
    )


@command("credits", cooldown=(5, 10.0), private=True)
async def credits(ctx: Context, n: int | None = None, user: UserRef | None = None) -> str:
    """Show your credits; admins set them (credits <n> [user]).

    Credits are bought through the rooms service; chat users cannot set their own. An admin's
    new balance for a registered customer is sent to the rooms service at once; it is also
    what the customer's next room join announces.

    Args:
        n: (admins) the new balance, a whole number from 0
        user: (admins) whose credits to set: a mention, user id or customer id (default: yours)
    """
    # Refused before anything else: a non-admin's number never reaches the rooms service.
    if n is not None and not ctx.is_admin:
        raise PermissionDenied(
            "Only admins can set credits; credits are bought through the rooms service. "
            f"See yours with {_prefix(ctx)}credits."
        )
    if user is not None and not ctx.is_admin:
        raise PermissionDenied("Only admins can see or set another user's credits.")
    service = _service(ctx)
    if n is None and user is None:
        return _own_credits(ctx, service)
    if user is None:
        platform, user_id, label = ctx.platform, ctx.user_id, "Your"
    else:
        platform, user_id, label = _target(ctx, user)
    if n is None:
        return f"{label} has {service.balance(platform, user_id)} credits."
    try:
        outcome = await service.set_credits(platform, user_id, n)
    except UserError as exc:
        ctx.audit(f"refused: {exc.message}", n=n, user=label)
        raise
    ctx.audit("ok", n=n, user=label)
    whose = "Your" if user is None else f"{label}'s"
    if outcome.pushed:
        return f"{whose} credits are now {outcome.credits}; the rooms service has them too."
    who = "You are" if user is None else f"{label} is"
    return (
        f"{whose} credits are now {outcome.credits}. {who} not a registered customer (no "
        "approved customer id), so the rooms service gets the balance at the next room join."
    )


@command("link rooms", private=True, link_proof=Proof.CLAIMED)
async def link_rooms(ctx: Context, customer_id: int) -> str:
    """Link your rooms customer id, so you join rooms as a registered customer.

    A typed customer id proves nothing, so an admin approves the link first (unless the
    config sets link_approval: none); until then you join as a guest.

    Args:
        customer_id: your customer id in the rooms system
    """
    service = _service(ctx)
    changed = service.check_link(_caller(ctx), customer_id)
    current = ctx.link(SERVICE)
    if not changed and current is not None and link_trusted(current, ctx.config.link_approval):
        return f"You are already linked to rooms customer {customer_id}."
    outcome = await ctx.claim_link(str(customer_id))
    prefix = _prefix(ctx)
    if outcome.pending:
        return (
            f"You claimed rooms customer {customer_id}. {outcome.note(prefix)} Until then you "
            "join rooms as a guest."
        )
    note = outcome.note(prefix)
    return (
        f"Linked: you are rooms customer {customer_id}. Your next room join is as a "
        f"registered customer with your credits.{' ' + note if note else ''}"
    )


COMMANDS: list[Command] = [room_join, room_leave, rooms, credits, link_rooms]
