"""The record of every ``give``: written before DeepBot is asked, settled after.

A give is three DeepBot calls, and DeepBot may leave any of them unanswered. The row written
*before* the first call, and its short id quoted in chat, in the audit log and in the admin
alert, is what lets an admin find a give that stopped halfway and settle its escrow. Plain
prepared SQL on the store's connection: one insert and one update per give, no ``await``
in between, so concurrent gives never interleave a write.
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
    PENDING = "pending"  # written, DeepBot not answered yet
    DONE = "done"
    REFUSED = "refused"  # DeepBot refused the escrow: nothing moved
    REFUNDED = "refunded"  # refused after the escrow: the escrow was cancelled
    FAILED = "failed"  # not connected or unanswered before anything was held for sure
    INCOMPLETE = "incomplete"  # stopped where DeepBot's state is unknown: an admin settles it
    SETTLED = "settled"  # was incomplete; an admin committed or cancelled the escrow since


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


def settle_give(store: Store, give_id: str, status: GiveStatus, message: str | None = None) -> None:
    store.conn.execute(
        f"update {TABLE} set status = ?, message = ?, updated = ? where id = ?",
        (status.value, message, time.time(), give_id),
    )


def get_give(store: Store, give_id: str) -> GiveRecord | None:
    row = store.conn.execute(
        f"select id, platform, user_id, giver, receiver, amount, status, message, created, "
        f"updated from {TABLE} where id = ?",
        (give_id,),
    ).fetchone()
    return None if row is None else GiveRecord(*row)


def gives_with_status(store: Store, status: GiveStatus, limit: int = 20) -> list[GiveRecord]:
    """Newest first; ``incomplete`` ones are what an admin has to look at."""
    rows = store.conn.execute(
        f"select id, platform, user_id, giver, receiver, amount, status, message, created, "
        f"updated from {TABLE} where status = ? order by created desc limit ?",
        (status.value, limit),
    ).fetchall()
    return [GiveRecord(*row) for row in rows]


def settle_held(store: Store, giver: str | None, message: str) -> int:
    """Mark the giver's incomplete gives (``None``: everyone's) settled by an admin."""
    sql = f"update {TABLE} set status = ?, message = ?, updated = ? where status = ?"
    args: list[object] = [GiveStatus.SETTLED.value, message, time.time()]
    args.append(GiveStatus.INCOMPLETE.value)
    if giver is not None:
        sql += " and lower(giver) = lower(?)"
        args.append(giver)
    return store.conn.execute(sql, args).rowcount
