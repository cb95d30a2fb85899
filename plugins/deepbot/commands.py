"""The DeepBot chat commands: chat words in, one or a few client calls, a sentence out.

The client's typed errors already carry plain sentences, so most handlers simply let them
through to the dispatcher, which shows them to the caller. Handlers catch errors only where
chat needs more than the client knows: ``give`` says how far it got (see ``transfer.py``),
and reads say that DeepBot stays silent for names it does not know. Text DeepBot sends
(ranks) is clipped with ``bot.clip`` before it reaches chat; names are validated on reading.

``points [user]`` is the path a benchmark drives at a thousand users at once: it does one
link lookup at most and one DeepBot call, and logs nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, TypeVar

from bot import Permission, Proof, Topic, UserError, clip, command, subscription_command

from .errors import DeepBotError, DeepBotTimeout, NoPointsInEscrow
from .gives import (
    IN_FLIGHT,
    NEEDS_ADMIN,
    UNSETTLED,
    GiveRecord,
    GiveStatus,
    get_give,
    gives_with_status,
    new_give,
    set_status,
    settle_held,
    unsettled_of,
)
from .protocol import ALL_USERS, MAX_POINTS, MAX_WHOLE_POINTS, PAGE_LIMIT, format_decimal
from .replies import balance, describe_profile, describe_vip, points_phrase
from .transfer import advance

if TYPE_CHECKING:
    from bot import Command, Context

    from .client import DeepBotClient

T = TypeVar("T")

SERVICE = "deepbot"

#: Gives that stopped where the balances cannot tell what happened; admins subscribe with
#: ``deepbot alerts on``. (The name is from the former escrow design; kept for subscribers.)
ESCROW_TOPIC = "deepbot.escrow"

TOPICS = [
    Topic(
        ESCROW_TOPIC,
        "Gives that stopped halfway and need an admin to check two balances",
    )
]

#: A leaderboard in chat shows at most this many lines.
MAX_TOP = 25
#: The hours leaderboard reads at most this many viewers (DeepBot sorts by points only).
MAX_HOURS_SCAN = 2000

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


def _amount(ctx: Context, n: Decimal, *, allow_zero: bool = False) -> Decimal:
    """Refuse amounts DeepBot cannot take before it is asked: whole points up to Int32
    unless the config says this install takes two decimals."""
    if n < 0 or (n == 0 and not allow_zero):
        raise UserError(
            "The number of points cannot be negative."
            if allow_zero
            else "The number of points must be more than zero."
        )
    client: DeepBotClient = ctx.client
    whole = client.whole_points
    limit = MAX_WHOLE_POINTS if whole else MAX_POINTS
    if n > limit:
        raise UserError(f"DeepBot cannot take more than {limit:,.0f} points at once.")
    exponent = n.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < (0 if whole else -2):
        raise UserError(
            "Points are whole numbers here." if whole else "Points can have at most two decimals."
        )
    return n + 0  # -0 becomes 0


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
    return f"{name}'s rank is {clip(await _read(ctx.client.get_rank(name)), 100)}"


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
    return describe_profile(record, clip(title, 100), _now())


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

    The points are taken from you, then added to the other viewer; if DeepBot refuses to
    add them, they go back to you.

    Args:
        user: the DeepBot user name to give to
        points: how many of your points
    """
    amount = _amount(ctx, points)
    giver = await ctx.linked_account(SERVICE)
    wanted = await _viewer(ctx, user)
    if wanted.lower() == giver.lower():
        raise UserError("You cannot give points to yourself.")
    client: DeepBotClient = ctx.client
    store = ctx.store
    prefix = ctx.bot.settings.bot.prefix
    # A give that stopped halfway is settled before the next one starts: settling reads the
    # giver's balance, which a second give would change under it.
    for earlier in unsettled_of(store, giver):
        async with client.viewer_lock(earlier.giver, earlier.receiver):
            current = get_give(store, earlier.id) or earlier
            if current.status in IN_FLIGHT:
                current = await advance(client, store, current)
        if current.status in UNSETTLED:
            raise UserError(
                f"Your give {current.id} ({current.amount} points to {current.receiver}) is "
                "not settled yet, so you cannot start another. "
                + (
                    "An admin has to check it."
                    if current.status in NEEDS_ADMIN
                    else "The bot settles it as soon as DeepBot answers; try again later."
                )
            )
    # Checked first: DeepBot answers a bare "failed" for an unknown receiver.
    receiver = (await _read(client.get_user(wanted))).name
    if receiver.lower() == giver.lower():
        raise UserError("You cannot give points to yourself.")
    what = points_phrase(amount)
    async with client.viewer_lock(giver, receiver):
        if unsettled_of(store, giver):  # one started while this one read the receiver
            raise UserError("Another give of yours is still running; try again in a moment.")
        give_id = new_give(
            store,
            platform=ctx.platform,
            user_id=ctx.user_id,
            giver=giver,
            receiver=receiver,
            amount=format_decimal(amount),
        )
        record = await advance(client, store, get_give(store, give_id), fresh=True)
    return _give_reply(ctx, record, what, prefix)


def _give_reply(ctx: Context, record: GiveRecord, what: str, prefix: str) -> str:
    """What the giver reads, from how far the give got; held gives are alerted to admins."""
    status = GiveStatus(record.status)
    giver, receiver, message = record.giver, record.receiver, record.message or ""
    if status is GiveStatus.DONE:
        return f"{giver} gave {what} to {receiver}."
    if status is GiveStatus.REFUSED:
        if message.endswith("to give."):
            raise UserError(f"You do not have {what} to give, so nothing was moved.")
        raise UserError(f"{message} Nothing was moved.")
    if status is GiveStatus.FAILED:
        raise UserError(f"{message} Nothing was given.")
    if status is GiveStatus.REFUNDED:
        raise UserError(f"Nothing was given to {receiver}. {message}")
    if status is GiveStatus.HELD:
        ctx.audit(f"held: {message}", user=receiver, points=record.amount, give=record.id)
        ctx.publish(
            ESCROW_TOPIC,
            f"A give of {what} from {giver} to {receiver} stopped halfway (give {record.id}): "
            f"{message} See {prefix}gives held.",
            {"give": record.id, "giver": giver, "receiver": receiver, "amount": record.amount},
        )
        raise UserError(
            f"The give stopped halfway: {message} It is recorded for an admin as give "
            f"{record.id}; you cannot give again until it is settled."
        )
    raise UserError(
        f"DeepBot did not confirm the give of {what} to {receiver} (give {record.id}). "
        "The bot will check the balances and finish or undo it as soon as DeepBot answers; "
        "until then you cannot start another give."
    )


# --- admins ----------------------------------------------------------------------------------


@command("points set", permission=Permission.ADMIN)
async def points_set(ctx: Context, user: str, n: Decimal) -> str:
    """Set a viewer's points to an exact number.

    Args:
        user: the DeepBot user name
        n: the new number of points (zero or more)
    """
    name = await _viewer(ctx, user)
    amount = _amount(ctx, n, allow_zero=True)
    client: DeepBotClient = ctx.client
    async with client.escrow_guard(name):  # a give of this viewer reads balances meanwhile
        await client.set_points(name, amount)
    return f"{name} now has {balance(amount)} points."


@command("points add", permission=Permission.ADMIN)
async def points_add(ctx: Context, user: str, n: Decimal) -> str:
    """Add points to a viewer.

    Args:
        user: the DeepBot user name
        n: how many points to add
    """
    name = await _viewer(ctx, user)
    amount = _amount(ctx, n)
    client: DeepBotClient = ctx.client
    async with client.escrow_guard(name):
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
    amount = _amount(ctx, n)
    client: DeepBotClient = ctx.client
    async with client.escrow_guard(name):
        # Checked first, and the removal asks DeepBot to refuse too: an install that ignores
        # the flag would take what there is and set the balance to 0.
        have = await _read(client.get_points(name))
        if have < amount:
            raise UserError(f"{name} has only {balance(have)} points, so nothing was removed.")
        await client.del_points(name, amount, fail_if_insufficient=True)
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
    amount = _amount(ctx, n)
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


@command("gives held", permission=Permission.ADMIN)
async def gives_held(ctx: Context) -> str:
    """List gives that stopped halfway and need an admin, and gives still being settled."""
    held = gives_with_status(ctx.store, *NEEDS_ADMIN)
    running = gives_with_status(ctx.store, *IN_FLIGHT)
    if not held and not running:
        return "No give is waiting for an admin."
    prefix = ctx.bot.settings.bot.prefix
    lines = [
        f"give {r.id}: {r.giver} -> {r.receiver}, {r.amount} points. {r.message or ''}".rstrip()
        for r in held
    ]
    lines += [
        f"give {r.id}: {r.giver} -> {r.receiver}, {r.amount} points, being settled ({r.status})."
        for r in running
    ]
    if held:
        lines.append(
            f"Check both balances, fix them with {prefix}points add/remove if needed, then "
            f"{prefix}gives settle <id>. Gives of the former escrow design: {prefix}escrow "
            "commit <giver> if the receiver got the points, else escrow cancel <giver>."
        )
    return "\n".join(lines)


@command("gives settle", permission=Permission.ADMIN)
async def gives_settle(ctx: Context, give_id: str) -> str:
    """Settle a give: one still in flight is checked against the balances again; a held one
    is marked settled after you checked (and fixed) both balances by hand.

    Args:
        give_id: the give's id, as the alert and gives held show it
    """
    record = get_give(ctx.store, give_id.strip().lower())
    if record is None:
        raise UserError(f"There is no give {clip(give_id, 20)}.")
    client: DeepBotClient = ctx.client
    status = GiveStatus(record.status)
    if status in IN_FLIGHT:
        async with client.viewer_lock(record.giver, record.receiver):
            record = await advance(client, ctx.store, get_give(ctx.store, record.id) or record)
        return f"give {record.id} is now {record.status}. {record.message or ''}".rstrip()
    if status is GiveStatus.HELD:
        set_status(
            ctx.store, record.id, GiveStatus.SETTLED, f"settled by {clip(ctx.user_name, 50)}"
        )
        return f"give {record.id} is marked settled; the bot moved no points for it."
    if status is GiveStatus.INCOMPLETE:
        raise UserError(
            f"give {record.id} held escrow (the former design): settle it with "
            f"escrow commit or escrow cancel {record.giver}."
        )
    return f"give {record.id} is already {record.status}; nothing to do."


@command("top")
async def top(ctx: Context, n: int = 10, by: Literal["points", "hours"] = "points") -> str:
    """Show the leaderboard: the viewers with the most points (or watch hours).

    Args:
        n: how many viewers to show (1 to 25)
        by: points or hours
    """
    if not 1 <= n <= MAX_TOP:
        raise UserError(f"The leaderboard shows 1 to {MAX_TOP} viewers.")
    client: DeepBotClient = ctx.client
    if by == "points":
        users = await client.get_top_users(0, n)
        rows = [(u.name, f"{balance(u.points)} points") for u in users]
    else:
        scanned = []
        for offset in range(0, MAX_HOURS_SCAN, PAGE_LIMIT):
            page = await client.get_users(offset, PAGE_LIMIT)
            scanned += page
            if len(page) < PAGE_LIMIT:
                break
        scanned.sort(key=lambda u: u.watch_minutes, reverse=True)
        rows = [(u.name, f"{balance(u.hours)} hours") for u in scanned[:n]]
    if not rows:
        return "DeepBot has no viewers yet."
    title = "Most points" if by == "points" else "Most hours watched"
    return "\n".join([f"{title}:"] + [f"{i}. {name}: {v}" for i, (name, v) in enumerate(rows, 1)])


@command("vip expiry", permission=Permission.ADMIN)
async def vip_expiry(ctx: Context, user: str, date: str) -> str:
    """Set the day a viewer's VIP ends (DeepBot's local time).

    Args:
        user: the DeepBot user name
        date: the new expiry, YYYY-MM-DD or YYYY-MM-DDTHH:MM
    """
    name = await _viewer(ctx, user)
    try:
        when = datetime.fromisoformat(date.strip())
    except ValueError:
        raise UserError("The date must look like 2025-12-31 or 2025-12-31T18:00.") from None
    if when.tzinfo is not None or not 2000 <= when.year <= 9998:
        raise UserError("The date must be a local date between 2000 and 9998, without offset.")
    client: DeepBotClient = ctx.client
    await client.set_vip_expiry(name, when)
    try:
        return f"Done: {describe_vip(await client.get_user(name), _now())}"
    except DeepBotError:
        return f"Done: {name}'s VIP now ends on {when.date().isoformat()}."


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
    gives_held,
    gives_settle,
    top,
    vip_expiry,
    deepbot_alerts,
]
