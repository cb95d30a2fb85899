"""Moving points between viewers: ``del_points`` on the giver, then ``add_points``.

Why not escrow: DeepBot's ``commit_user_escrow`` and ``cancel_escrow`` settle *everything* a
viewer holds, including escrow DeepBot placed itself for its own features (and escrow an
earlier give left behind), so a give built on them can settle points it did not place.
``del_points`` and ``add_points`` touch exactly the amount named.

Each step is written to the give's row before it is sent (:mod:`.gives`): the step, and the
balance of the viewer it changes, read just before. When DeepBot's answer is lost (a timeout,
a cut connection, the bot stopping), the step is settled by reading that balance again:
``before - amount`` (debit) or ``before + amount`` (credit) means it happened, ``before``
means it did not, anything else cannot be told apart and the give is held for an admin.
Nothing is ever sent twice on a guess, and compensation (a refund) only returns points this
give took. ``del_points`` is sent with ``fail_if_insufficient=True`` *and* the balance is
checked first: an install that ignores the flag answers success and sets the balance to 0.

:func:`advance` drives one give from whatever its row says to a final state, or leaves it
in flight when DeepBot cannot be asked (the plugin settles it later: at start-up, every
minute, and before the same viewer's next give).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from .errors import (
    ConnectionLost,
    DeepBotError,
    DeepBotNotConnected,
    DeepBotTimeout,
)
from .gives import IN_FLIGHT, GiveRecord, GiveStatus, get_give, gives_with_status, set_status
from .protocol import format_decimal

if TYPE_CHECKING:
    from bot.store import Store

    from .client import DeepBotClient

log = logging.getLogger(__name__)

#: Errors after which DeepBot may or may not have applied the change.
UNKNOWN_ERRORS = (DeepBotTimeout, ConnectionLost, DeepBotNotConnected)


class Result(enum.Enum):
    HAPPENED = "happened"
    NOT_HAPPENED = "not happened"
    REFUSED = "refused"  # DeepBot said no: nothing changed
    UNKNOWN = "unknown"  # no answer, and the balance could not be read either
    AMBIGUOUS = "ambiguous"  # the balance moved by something else meanwhile
    EMPTIED = "emptied"  # "success", but the balance is 0: the install ignored the flag


#: The step each waiting state sends next: (state while in flight, whose balance, sign).
_NEXT = {
    GiveStatus.PENDING: (GiveStatus.DEBITING, "giver", -1),
    GiveStatus.DEBITED: (GiveStatus.CREDITING, "receiver", +1),
    GiveStatus.REFUND_DUE: (GiveStatus.REFUNDING, "giver", +1),
}
_SIGN = {GiveStatus.DEBITING: -1, GiveStatus.CREDITING: +1, GiveStatus.REFUNDING: +1}


def _account(record: GiveRecord, status: GiveStatus) -> str:
    return record.receiver if status is GiveStatus.CREDITING else record.giver


def _phrase(amount: str) -> str:
    return f"{amount} point" if Decimal(amount) == 1 else f"{amount} points"


async def advance(
    client: DeepBotClient, store: Store, record: GiveRecord, *, fresh: bool = False
) -> GiveRecord:
    """Drive a give until it is final or held, or DeepBot cannot be asked; returns its row.

    ``fresh``: the row was just written by ``give`` (a ``pending`` row found later was
    never sent, so it fails instead of starting a debit nobody is waiting for). The caller
    holds :meth:`DeepBotClient.viewer_lock` for both viewers.
    """
    if record.status == GiveStatus.PENDING and not fresh:
        return set_status(
            store, record.id, GiveStatus.FAILED, "The bot stopped before asking DeepBot."
        )
    result: Result | None = None
    cause = ""
    sends = 0
    while True:
        status = GiveStatus(record.status)
        if status in _NEXT:
            if sends >= 4:  # a refund that keeps not happening: try again later
                return record
            sends += 1
            record, result, cause = await _send(client, store, record, cause)
            if result is Result.UNKNOWN and GiveStatus(record.status) in _NEXT:
                return record  # the balance could not be read: nothing was sent
            continue
        if status not in _SIGN:
            return record  # final (or held)
        if result is None:
            result = await _observe(client, record, status)
        if result is Result.UNKNOWN:
            return record
        if result is Result.AMBIGUOUS:
            return _hold(store, record, status)
        if result is Result.EMPTIED:
            why = (
                f"DeepBot answered success but took {record.giver}'s whole balance (its "
                "balance fell below the amount meanwhile, and this DeepBot does not refuse "
                "then); nothing was added to the receiver"
            )
            return _hold(store, record, status, why)
        record = _after(store, record, status, result, cause)
        result = None


async def _send(
    client: DeepBotClient, store: Store, record: GiveRecord, cause: str
) -> tuple[GiveRecord, Result, str]:
    """Read the balance, write the step, send it; the step's result as far as known."""
    status, who, _ = _NEXT[GiveStatus(record.status)]
    account = record.giver if who == "giver" else record.receiver
    try:
        before = await _read_balance(client, account)
    except DeepBotError as exc:
        if record.status == GiveStatus.PENDING:
            return set_status(store, record.id, GiveStatus.FAILED, exc.message), Result.REFUSED, ""
        return record, Result.UNKNOWN, cause
    amount = Decimal(record.amount)
    if status is GiveStatus.DEBITING and before < amount:
        message = f"{record.giver} does not have {_phrase(record.amount)} to give."
        return set_status(store, record.id, GiveStatus.REFUSED, message), Result.REFUSED, ""
    record = set_status(store, record.id, status, cause or None, balance_before=str(before))
    try:
        if status is GiveStatus.DEBITING:
            await client.del_points(account, amount, fail_if_insufficient=True)
        else:
            await client.add_points(account, amount)
    except UNKNOWN_ERRORS as exc:
        log.info("Give %s: %s of %s unanswered (%s)", record.id, status, account, exc.code)
        return record, await _observe(client, record, status), exc.message
    except DeepBotError as exc:
        return record, Result.REFUSED, exc.message
    if status is GiveStatus.DEBITING and await _emptied(client, account, before - amount):
        return record, Result.EMPTIED, cause
    return record, Result.HAPPENED, cause


async def _emptied(client: DeepBotClient, account: str, expected: Decimal) -> bool:
    """Whether a debit answered "success" left 0 where ``expected`` (> 0) should be.

    An install that ignores ``fail_if_insufficient`` takes whatever there is and answers
    success when the balance fell below the amount between our check and the debit (DeepBot's
    own games spend points too). Crediting the full amount then would create points.
    """
    if expected <= 0:
        return False
    try:
        return await client.get_points(account) == 0
    except DeepBotError:
        return False  # the debit itself was confirmed; a failed read proves nothing


async def _read_balance(client: DeepBotClient, account: str) -> Decimal:
    """A balance, read once more if the connection dropped under the first read (reading
    changes nothing, so a second try is safe)."""
    try:
        await client.wait_connected(client.timeout)
        return await client.get_points(account)
    except (ConnectionLost, DeepBotNotConnected):
        await client.wait_connected(client.timeout)
        return await client.get_points(account)


async def _observe(client: DeepBotClient, record: GiveRecord, status: GiveStatus) -> Result:
    """Whether the step in flight happened, from the balance it changes."""
    if record.balance_before is None:
        return Result.UNKNOWN
    try:
        now = await _read_balance(client, _account(record, status))
    except DeepBotError:
        return Result.UNKNOWN
    before = Decimal(record.balance_before)
    if now == before + _SIGN[status] * Decimal(record.amount):
        return Result.HAPPENED
    if now == before:
        return Result.NOT_HAPPENED
    return Result.AMBIGUOUS


def _after(
    store: Store, record: GiveRecord, status: GiveStatus, result: Result, cause: str
) -> GiveRecord:
    """The state a step's known result leads to."""
    amount = _phrase(record.amount)
    happened = result is Result.HAPPENED
    if status is GiveStatus.DEBITING:
        if happened:
            return set_status(store, record.id, GiveStatus.DEBITED)
        if result is Result.REFUSED:
            message = f"DeepBot refused to take {amount} from {record.giver} ({cause})"
            return set_status(store, record.id, GiveStatus.REFUSED, message)
        return set_status(
            store,
            record.id,
            GiveStatus.FAILED,
            f"{cause} {record.giver}'s balance shows nothing was taken.".strip(),
        )
    if status is GiveStatus.CREDITING:
        if happened:
            return set_status(store, record.id, GiveStatus.DONE)
        reason = cause or f"DeepBot did not add the points to {record.receiver}."
        return set_status(store, record.id, GiveStatus.REFUND_DUE, reason)
    # REFUNDING
    if happened:
        return set_status(
            store,
            record.id,
            GiveStatus.REFUNDED,
            f"{cause} The {amount} went back to {record.giver}.".strip(),
        )
    if result is Result.REFUSED:
        return _hold(store, record, status, f"DeepBot refused to return the points ({cause})")
    return set_status(store, record.id, GiveStatus.REFUND_DUE, record.message)


def _hold(
    store: Store, record: GiveRecord, status: GiveStatus, why: str | None = None
) -> GiveRecord:
    account = _account(record, status)
    what = {
        GiveStatus.DEBITING: f"taking {_phrase(record.amount)} from {account}",
        GiveStatus.CREDITING: f"adding {_phrase(record.amount)} to {account}",
        GiveStatus.REFUNDING: f"returning {_phrase(record.amount)} to {account}",
    }[status]
    message = why or (
        f"DeepBot did not confirm {what}, and {account}'s balance changed by another amount "
        f"since (it was {format_decimal(Decimal(record.balance_before or 0))})."
    )
    return set_status(
        store, record.id, GiveStatus.HELD, f"{message.rstrip('.')}. Stopped at: {status}."
    )


async def settle_all(
    client: DeepBotClient, store: Store, on_held: Callable[[GiveRecord], object] | None = None
) -> list[GiveRecord]:
    """Settle every give left in flight (a crash, a lost answer); returns the rows touched.

    Each give is settled under the lock of both its viewers, so a ``give`` running at the
    same time never reads a balance this moves. ``on_held`` is told of each give that turns
    out to need an admin.
    """
    touched = []
    for record in gives_with_status(store, *IN_FLIGHT, limit=1000):
        async with client.viewer_lock(record.giver, record.receiver):
            current = get_give(store, record.id)
            if current is None or current.status not in IN_FLIGHT:
                continue
            settled = await advance(client, store, current)
        touched.append(settled)
        if settled.status == GiveStatus.HELD and on_held is not None:
            on_held(settled)
        log.info("Give %s settled at %s: %s", settled.id, current.status, settled.status)
    return touched
