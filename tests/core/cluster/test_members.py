"""Answered commands: the mark a worker writes before acknowledging a command.

A redelivered command whose mark is in the shared database is not run again, so the mark must
be written (and seen by other processes) when ``mark_answered`` returns; marks of one loop
turn share one transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.cluster.members import Members
from bot.store import Store
from bot_migrations.core import migrations as core_migrations


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "bot.db")
    s.migrate([core_migrations])
    yield s
    s.close()


def commits(store: Store) -> list[str]:
    seen: list[str] = []
    store.conn.set_trace_callback(
        lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    return seen


async def test_marks_of_one_turn_share_one_commit_and_are_visible_on_return(
    store: Store, tmp_path: Path
) -> None:
    members = Members(store, "w1", "worker", 1.0)
    seen = commits(store)
    await asyncio.gather(*(members.mark_answered(f"cmd{i}") for i in range(50)))
    assert len(seen) == 1
    other = sqlite3.connect(tmp_path / "bot.db")  # another process's view
    try:
        (count,) = other.execute("select count(*) from cluster_commands").fetchone()
    finally:
        other.close()
    assert count == 50
    assert all(members.answered(f"cmd{i}") for i in range(50))
    assert not members.answered("cmd50")
    await members.mark_answered("cmd50")  # a later turn: a transaction of its own
    assert len(seen) == 2 and members.answered("cmd50")


async def test_marking_twice_is_harmless(store: Store) -> None:
    members = Members(store, "w1", "worker", 1.0)
    await asyncio.gather(members.mark_answered("a"), members.mark_answered("a"))
    await members.mark_answered("a")
    (count,) = store.conn.execute("select count(*) from cluster_commands").fetchone()
    assert count == 1


async def test_a_cancelled_caller_does_not_cancel_the_others_write(store: Store) -> None:
    members = Members(store, "w1", "worker", 1.0)
    first = asyncio.ensure_future(members.mark_answered("gone"))
    second = asyncio.ensure_future(members.mark_answered("kept"))
    await asyncio.sleep(0)  # both queued their ids for this turn's write
    first.cancel()
    await second
    assert members.answered("kept") and members.answered("gone")
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failed_write_reaches_every_caller_and_marks_nothing(
    store: Store, tmp_path: Path
) -> None:
    members = Members(store, "w1", "worker", 1.0)
    blocker = sqlite3.connect(tmp_path / "bot.db", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    store.conn.execute("PRAGMA busy_timeout = 0")
    try:
        results = await asyncio.gather(
            members.mark_answered("x"), members.mark_answered("y"), return_exceptions=True
        )
    finally:
        blocker.rollback()
        blocker.close()
    assert [type(r) for r in results] == [sqlite3.OperationalError] * 2
    assert not members.answered("x") and not members.answered("y")
    await members.mark_answered("x")  # the next turn writes again
    assert members.answered("x")
