"""The record of every ``give``: written before DeepBot is asked, updated before each step.

A give is ``del_points`` on the giver, then ``add_points`` on the receiver (and, if that is
refused, ``add_points`` back to the giver). DeepBot may leave any of them unanswered, and the
bot may stop between them. So before each step the row says which step is about to go out and
the balance, just read, of the viewer it changes (``balance_before``). Whoever finds the row
later (the same give, the next give of that viewer, start-up, an admin) compares that balance
with the current one to learn whether the step happened, and only ever moves the points that
this give moved. Plain prepared SQL on the store's connection, no ``await`` in between.
"""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.store import Store

TABLE = "deepbot_gives"


class GiveStatus(enum.StrEnum):
    PENDING = "pending"  # written; nothing sent yet
    DEBITING = "debiting"  # del_points on the giver is in flight (or its answer was lost)
    DEBITED = "debited"  # the giver was debited; the credit is not sent yet
    CREDITING = "crediting"  # add_points on the receiver in flight
    REFUND_DUE = "refund_due"  # the credit was refused or did not happen; refund not sent yet
    REFUNDING = "refunding"  # add_points back to the giver in flight
    DONE = "done"
    REFUSED = "refused"  # refused before anything moved
    FAILED = "failed"  # not answered, and the balance shows nothing moved
    REFUNDED = "refunded"  # the giver got the points back
    HELD = "held"  # the balances cannot tell what happened: an admin settles it
    INCOMPLETE = "incomplete"  # a give of the former escrow design that stopped halfway
    SETTLED = "settled"  # an admin settled a held or incomplete give


#: A step is in flight: the bot settles these itself by reading balances.
IN_FLIGHT = (
    GiveStatus.PENDING,
    GiveStatus.DEBITING,
    GiveStatus.DEBITED,
    GiveStatus.CREDITING,
    GiveStatus.REFUND_DUE,
    GiveStatus.REFUNDING,
)
#: Only an admin can settle these.
NEEDS_ADMIN = (GiveStatus.HELD, GiveStatus.INCOMPLETE)
#: A viewer with a give in one of these states cannot start another.
UNSETTLED = IN_FLIGHT + NEEDS_ADMIN

_COLUMNS = (
    "id, platform, user_id, giver, receiver, amount, status, message, created, updated, "
    "balance_before"
)


@dataclass(frozen=True, slots=True)
class GiveRecord:
    id: str
    platform: str
    user_id: str
    giver: str
    receiver: str
    amount: str
    status: str
    message: str | None
    created: float
    updated: float
    balance_before: str | None = None


def new_give(
    store: Store, *, platform: str, user_id: str, giver: str, receiver: str, amount: str
) -> str:
    """Write a pending give; returns its id (short enough to read out in chat)."""
    give_id = uuid.uuid4().hex[:12]
    now = time.time()
    store.conn.execute(
        f"insert into {TABLE} (id, platform, user_id, giver, receiver, amount, status, "
        "created, updated) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (give_id, platform, str(user_id), giver, receiver, amount, GiveStatus.PENDING, now, now),
    )
    return give_id


def set_status(
    store: Store,
    give_id: str,
    status: GiveStatus,
    message: str | None = None,
    *,
    balance_before: str | None = None,
) -> GiveRecord:
    """Move a give to ``status``; ``balance_before`` is kept unless a new one is given."""
    store.conn.execute(
        f"update {TABLE} set status = ?, message = ?, updated = ?, "
        "balance_before = coalesce(?, balance_before) where id = ?",
        (status.value, message, time.time(), balance_before, give_id),
    )
    record = get_give(store, give_id)
    assert record is not None, give_id
    return record


def get_give(store: Store, give_id: str) -> GiveRecord | None:
    row = store.conn.execute(f"select {_COLUMNS} from {TABLE} where id = ?", (give_id,)).fetchone()
    return None if row is None else GiveRecord(*row)


def gives_with_status(store: Store, *statuses: GiveStatus, limit: int = 20) -> list[GiveRecord]:
    """Newest first."""
    marks = ", ".join("?" for _ in statuses)
    rows = store.conn.execute(
        f"select {_COLUMNS} from {TABLE} where status in ({marks}) order by created desc limit ?",
        (*(status.value for status in statuses), limit),
    ).fetchall()
    return [GiveRecord(*row) for row in rows]


def unsettled_of(store: Store, giver: str) -> list[GiveRecord]:
    """The giver's gives that are not settled yet, oldest first."""
    marks = ", ".join("?" for _ in UNSETTLED)
    rows = store.conn.execute(
        f"select {_COLUMNS} from {TABLE} where lower(giver) = lower(?) and status in ({marks}) "
        "order by created",
        (giver, *(status.value for status in UNSETTLED)),
    ).fetchall()
    return [GiveRecord(*row) for row in rows]


def settle_held(store: Store, giver: str | None, message: str) -> int:
    """Mark the giver's gives of the former escrow design (``None``: everyone's) settled,
    after an admin committed or cancelled that giver's escrow."""
    sql = f"update {TABLE} set status = ?, message = ?, updated = ? where status = ?"
    args: list[object] = [GiveStatus.SETTLED.value, message, time.time()]
    args.append(GiveStatus.INCOMPLETE.value)
    if giver is not None:
        sql += " and lower(giver) = lower(?)"
        args.append(giver)
    return store.conn.execute(sql, args).rowcount
