"""The DeepBot chat commands: chat words in, one or a few client calls, a sentence out.

The client's typed errors already carry plain sentences, so most handlers simply let them
through to the dispatcher, which shows them to the caller. Handlers catch errors only where
chat needs more than the client knows: ``give`` says whether points went back or are held
for an admin, and reads say that DeepBot stays silent for names it does not know.

``points [user]`` is the path a benchmark drives at a thousand users at once: it does one
link lookup at most and one DeepBot call, and logs nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, TypeVar

from bot import Permission, Proof, Topic, UserError, command, subscription_command

from .errors import (
    ConnectionLost,
    DeepBotError,
    DeepBotNotConnected,
    DeepBotTimeout,
    NoPointsInEscrow,
    NotEnoughPoints,
    TransferFailed,
    TransferIncomplete,
    UserNotFound,
)
from .gives import (
    GiveStatus,
    gives_with_status,
    new_give,
    settle_give,
    settle_held,
)
from .protocol import ALL_USERS, format_decimal
from .replies import balance, describe_profile, describe_vip, points_phrase

if TYPE_CHECKING:
    from bot import Command, Context

    from .client import DeepBotClient

T = TypeVar("T")

SERVICE = "deepbot"

#: Gives that stopped halfway; admins subscribe with ``deepbot alerts on``.
ESCROW_TOPIC = "deepbot.escrow"

TOPICS = [
    Topic(
        ESCROW_TOPIC,
        "Gives that stopped halfway: points held in escrow until an admin settles them",
    )
]

VipChoice = Literal["normal", "bronze", "silver", "gold", "0", "1", "2", "3", "10"]
_VIP_NAMES = {"normal": 10, "bronze": 1, "silver": 2, "gold": 3}


# --- helpers ---------------------------------------------------------------------------------


async def _viewer(ctx: Context, user: str | None) -> str:
    """The DeepBot name a command is about: typed, a linked chat mention, or the caller's."""
    if user is None:
        return await ctx.linked_account(SERVICE)
    mention = ctx.message.mentions.get(user)
    if mention is not None and mention.id is not None:
        link = ctx.store.get_link(mention.platform or ctx.platform, mention.id, SERVICE)
        if link is None:
            raise UserError(f"{mention.name} has not linked a DeepBot account.")
        return link.account
    return _without_at(user)


def _without_at(name: str) -> str:
    # Stream chats write names as @name; DeepBot knows them without the @.
    return name[1:] if name.startswith("@") and len(name) > 1 else name


async def _read(call: Awaitable[T]) -> T:
    """Await a read; a timeout also says that DeepBot ignores names it does not know."""
    try:
        return await call
    except DeepBotTimeout as exc:
        raise DeepBotTimeout(
            f"{exc.message} Check the spelling of the name: DeepBot does not answer for "
            "users it does not know.",
            code=exc.code,
            function=exc.function,
            user=exc.user,
        ) from None


def _amount(n: Decimal, *, allow_zero: bool = False) -> Decimal:
    """Refuse amounts that make no sense in chat before DeepBot is asked."""
    if n < 0 or (n == 0 and not allow_zero):
        raise UserError(
            "The number of points cannot be negative."
            if allow_zero
            else "The number of points must be more than zero."
        )
    exponent = n.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise UserError("Points can have at most two decimals.")
    return n


async def _balance_note(client: DeepBotClient, name: str) -> str:
    """The new balance after a change, or nothing if DeepBot does not say: best effort,
    because the change itself already succeeded."""
    try:
        return f" {name} now has {balance(await client.get_points(name))} points."
    except DeepBotError:
        return ""


def _now() -> datetime:
    return datetime.now(UTC)


# --- everyone --------------------------------------------------------------------------------


@command("points")
async def points(ctx: Context, user: str | None = None) -> str:
    """Show a viewer's points (yours if you linked your DeepBot user).

    Args:
        user: a DeepBot user name (default: your linked one)
    """
    name = await _viewer(ctx, user)
    return f"{name} has {balance(await _read(ctx.client.get_points(name)))} points"


@command("hours")
async def hours(ctx: Context, user: str | None = None) -> str:
    """Show how many hours a viewer has watched the stream.

    Args:
        user: a DeepBot user name (default: your linked one)
    """
    name = await _viewer(ctx, user)
    return f"{name} has watched {balance(await _read(ctx.client.get_hours(name)))} hours"


@command("rank")
async def rank(ctx: Context, user: str | None = None) -> str:
    """Show a viewer's rank.

    Args:
        user: a DeepBot user name (default: your linked one)
    """
    name = await _viewer(ctx, user)
    return f"{name}'s rank is {await _read(ctx.client.get_rank(name))}"


@command("vip")
async def vip(ctx: Context, user: str | None = None) -> str:
    """Show a viewer's VIP level and when it ends.

    Args:
        user: a DeepBot user name (default: your linked one)
    """
    name = await _viewer(ctx, user)
    return describe_vip(await _read(ctx.client.get_user(name)), _now())


@command("profile")
async def profile(ctx: Context, user: str | None = None) -> str:
    """Show everything DeepBot knows about a viewer: points, hours, rank, VIP, dates.

    Args:
        user: a DeepBot user name (default: your linked one)
    """
    name = await _viewer(ctx, user)
    client: DeepBotClient = ctx.client
    record = await _read(client.get_user(name))
    title = await _read(client.get_rank(record.name))
    return describe_profile(record, title, _now())


@command("link deepbot", private=True, link_proof=Proof.CLAIMED)
async def link_deepbot(ctx: Context, name: str) -> str:
    """Link your chat account to your DeepBot user, so commands know who you are.

    DeepBot cannot prove who owns a name, so the link is a claim: an admin approves it
    before you can give points (unless the config sets link_approval: none).

    Args:
        name: your user name in DeepBot (your stream chat name)
    """
    # Only a typed name: a mention would link the caller to someone else's account.
    record = await _read(ctx.client.get_user(_without_at(name)))
    outcome = await ctx.claim_link(record.name)  # one chat user per account, all platforms
    prefix = ctx.bot.settings.bot.prefix
    if outcome.pending:
        note = outcome.note(prefix)
        return f"You claimed DeepBot user {record.name}. {note} Try {prefix}points."
    note = outcome.note(prefix)
    note = f"{note} " if note else ""
    return f"You are now linked to DeepBot user {record.name}. {note}Try {prefix}points."


@command("give", trusted_link=True)
async def give(ctx: Context, user: str, points: Decimal) -> str:
    """Give some of your own points to another viewer.

    The points are held in escrow first, so if DeepBot refuses to credit the other viewer
    they go back to you.

    Args:
        user: the DeepBot user name to give to
        points: how many of your points
    """
    amount = _amount(points)
    giver = await ctx.linked_account(SERVICE)
    wanted = await _viewer(ctx, user)
    if wanted.lower() == giver.lower():
        raise UserError("You cannot give points to yourself.")
    client: DeepBotClient = ctx.client
    # Checked first: DeepBot answers a bare "failed" for an unknown receiver, and only
    # after the giver's points were already held.
    receiver = (await _read(client.get_user(wanted))).name
    if receiver.lower() == giver.lower():
        raise UserError("You cannot give points to yourself.")
    what = points_phrase(amount)
    store = ctx.store
    give_id = new_give(
        store,
        platform=ctx.platform,
        user_id=ctx.user_id,
        giver=giver,
        receiver=receiver,
        amount=format_decimal(amount),
    )
    prefix = ctx.bot.settings.bot.prefix
    try:
        await client.transfer(giver, receiver, amount)
    except TransferIncomplete as exc:
        settle_give(store, give_id, GiveStatus.INCOMPLETE, exc.message)
        ctx.audit(
            f"incomplete: {exc.message}",
            user=receiver,
            points=format_decimal(amount),
            giver=giver,
            give=give_id,
        )
        ctx.publish(
            ESCROW_TOPIC,
            f"A give of {what} from {giver} to {receiver} stopped halfway (give {give_id}): "
            f"{exc.message} See {prefix}escrow held.",
            {"give": give_id, "giver": giver, "receiver": receiver, "amount": str(amount)},
        )
        raise UserError(f"{exc.message} It is recorded for an admin as give {give_id}.") from None
    except TransferFailed as exc:
        settle_give(store, give_id, GiveStatus.REFUNDED, exc.message)
        raise UserError(f"Nothing was given to {receiver}. {exc.message}") from None
    except NotEnoughPoints:
        settle_give(store, give_id, GiveStatus.REFUSED, "not enough points")
        raise UserError(f"You do not have {what} to give, so nothing was moved.") from None
    except UserNotFound:
        settle_give(store, give_id, GiveStatus.REFUSED, "giver not found")
        raise UserError(
            f"DeepBot has no user named {giver}, the name you linked. "
            f"Link the right one with {prefix}link deepbot <name>."
        ) from None
    except (DeepBotTimeout, ConnectionLost) as exc:
        # The escrow's answer was lost: the transfer asked DeepBot to return whatever it
        # held, and nothing reached the receiver.
        settle_give(store, give_id, GiveStatus.FAILED, exc.message)
        raise UserError(
            f"{exc.message} Nothing was given, and the bot asked DeepBot to return anything "
            f"it held from you. Check with {prefix}points."
        ) from None
    except DeepBotNotConnected as exc:
        settle_give(store, give_id, GiveStatus.FAILED, exc.message)
        raise
    except DeepBotError as exc:
        settle_give(store, give_id, GiveStatus.REFUSED, exc.message)
        raise
    settle_give(store, give_id, GiveStatus.DONE)
    return f"{giver} gave {what} to {receiver}."


# --- admins ----------------------------------------------------------------------------------


@command("points set", permission=Permission.ADMIN)
async def points_set(ctx: Context, user: str, n: Decimal) -> str:
    """Set a viewer's points to an exact number.

    Args:
        user: the DeepBot user name
        n: the new number of points (zero or more)
    """
    name = await _viewer(ctx, user)
    amount = _amount(n, allow_zero=True)
    await ctx.client.set_points(name, amount)
    return f"{name} now has {balance(amount)} points."


@command("points add", permission=Permission.ADMIN)
async def points_add(ctx: Context, user: str, n: Decimal) -> str:
    """Add points to a viewer.

    Args:
        user: the DeepBot user name
        n: how many points to add
    """
    name = await _viewer(ctx, user)
    amount = _amount(n)
    client: DeepBotClient = ctx.client
    await client.add_points(name, amount)
    return f"Added {points_phrase(amount)} to {name}.{await _balance_note(client, name)}"


@command("points remove", permission=Permission.ADMIN)
async def points_remove(ctx: Context, user: str, n: Decimal) -> str:
    """Take points away from a viewer.

    Args:
        user: the DeepBot user name
        n: how many points to take
    """
    name = await _viewer(ctx, user)
    amount = _amount(n)
    client: DeepBotClient = ctx.client
    await client.del_points(name, amount)
    return f"Removed {points_phrase(amount)} from {name}.{await _balance_note(client, name)}"


@command("vip set", permission=Permission.ADMIN)
async def vip_set(ctx: Context, user: str, level: VipChoice, days: int) -> str:
    """Set a viewer's VIP level and add days to their VIP time.

    Args:
        user: the DeepBot user name
        level: normal, bronze, silver or gold (or DeepBot's number: 10, 1, 2, 3; 0 = normal)
        days: days to add to the VIP expiry (0 changes only the level)
    """
    name = await _viewer(ctx, user)
    number = _VIP_NAMES.get(level) or int(level)
    if days < 0:
        raise UserError("The number of days cannot be negative.")
    client: DeepBotClient = ctx.client
    await client.set_vip(name, number, days)
    try:
        return f"Done: {describe_vip(await client.get_user(name), _now())}"
    except DeepBotError:
        return f"Done: {name}'s VIP level is set and {days} days were added."


@command("escrow add", permission=Permission.ADMIN)
async def escrow_add(ctx: Context, user: str, n: Decimal) -> str:
    """Hold some of a viewer's points in escrow (they cannot spend them meanwhile).

    Args:
        user: the DeepBot user name
        n: how many points to hold
    """
    name = await _viewer(ctx, user)
    amount = _amount(n)
    client: DeepBotClient = ctx.client
    async with client.escrow_guard(name):
        await client.add_to_escrow(name, amount)
    return f"Holding {points_phrase(amount)} of {name} in escrow."


@command("escrow commit", permission=Permission.ADMIN)
async def escrow_commit(ctx: Context, user: str) -> str:
    """Spend everything a viewer holds in escrow.

    Args:
        user: the DeepBot user name
    """
    name = await _viewer(ctx, user)
    client: DeepBotClient = ctx.client
    async with client.escrow_guard(name):
        await client.commit_user_escrow(name)
    settle_held(ctx.store, name, f"escrow committed by {ctx.user_name}")
    return f"{name}'s escrowed points are spent."


@command("escrow cancel", permission=Permission.ADMIN)
async def escrow_cancel(ctx: Context, user: str) -> str:
    """Return a viewer's escrowed points to their balance ("all": every viewer's).

    Args:
        user: the DeepBot user name, or all for every viewer
    """
    client: DeepBotClient = ctx.client
    if user.lower() == ALL_USERS:
        if not await ctx.confirm("Return the escrowed points of every viewer?"):
            return "Nothing was changed."
        try:
            await client.cancel_all_escrow()
        except NoPointsInEscrow:
            return "Nobody has points held in escrow."
        settle_held(ctx.store, None, f"all escrow cancelled by {ctx.user_name}")
        return "Every viewer's escrowed points are back in their balance."
    name = await _viewer(ctx, user)
    async with client.escrow_guard(name):
        await client.cancel_escrow(name)
    settle_held(ctx.store, name, f"escrow cancelled by {ctx.user_name}")
    return f"{name}'s escrowed points are back in their balance."


@command("escrow held", permission=Permission.ADMIN)
async def escrow_held(ctx: Context) -> str:
    """List gives that stopped halfway and still need an admin to settle their escrow."""
    rows = gives_with_status(ctx.store, GiveStatus.INCOMPLETE)
    if not rows:
        return "No give is waiting for an admin."
    prefix = ctx.bot.settings.bot.prefix
    lines = [
        f"give {r.id}: {r.giver} -> {r.receiver}, {r.amount} points. {r.message or ''}".rstrip()
        for r in rows
    ]
    lines.append(
        f"Check both balances, then {prefix}escrow commit <giver> if the receiver got the "
        f"points, or {prefix}escrow cancel <giver> if not."
    )
    return "\n".join(lines)


deepbot_alerts = subscription_command(
    "deepbot alerts",
    ESCROW_TOPIC,
    help="Turn alerts about gives that need an admin on or off in this chat",
    permission=Permission.ADMIN,
)

COMMANDS: list[Command] = [
    points,
    hours,
    rank,
    vip,
    profile,
    link_deepbot,
    give,
    points_set,
    points_add,
    points_remove,
    vip_set,
    escrow_add,
    escrow_commit,
    escrow_cancel,
    escrow_held,
    deepbot_alerts,
]
