"""The in-memory link cache of the store: served from memory while nothing changed, and
dropped by every write path (the store's own methods, a plugin's raw SQL, sqlite-utils, a
claim approved, another connection's or process's commit) and never filled inside a
transaction. In a running loop, other connections' commits are asked about once per turn."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import KEY_ENV, Proof, Store
from bot_migrations.core import migrations as core


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "bot.db")
    s.migrate([core])
    s.set_link("console", "u1", "deepbot", "alice")
    yield s
    s.close()


class LinkReads:
    """Counts the link look-ups that reached SQLite and the ``data_version`` checks
    (SQLite's own statement trace)."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        self.version_checks = 0
        store.conn.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        if sql.startswith("select platform, user_id, service, account"):
            self.count += 1
        elif sql.lower() == "pragma data_version":
            self.version_checks += 1


def account(store: Store) -> str | None:
    link = store.get_link("console", "u1", "deepbot")
    return None if link is None else link.account


def test_repeated_lookups_are_served_from_memory(store: Store) -> None:
    reads = LinkReads(store)
    assert account(store) == "alice"
    assert account(store) == "alice"
    assert store.get_link("console", "nobody", "deepbot") is None
    assert store.get_link("console", "nobody", "deepbot") is None  # a miss is cached too
    assert reads.count == 1  # u1 was read (and kept) by set_link itself; the miss once
    first, second = (store.get_link("console", "u1", "deepbot") for _ in range(2))
    assert first is not second  # each caller gets its own Link (it caches decrypted data)


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (lambda s: s.set_link("console", "u1", "deepbot", "bob"), "bob"),
        (lambda s: s.delete_link("console", "u1", "deepbot"), None),
        (
            lambda s: s.conn.execute(
                "update links set account = 'raw' where user_id = 'u1'"
            ),  # a plugin's own SQL
            "raw",
        ),
        (
            lambda s: s.db["links"].update(("console", "u1", "deepbot"), {"account": "utils"}),
            "utils",
        ),
    ],
    ids=["set_link", "delete_link", "raw SQL", "sqlite-utils"],
)
def test_every_write_on_the_connection_drops_the_cache(store: Store, write, expected) -> None:  # type: ignore[no-untyped-def]
    assert account(store) == "alice"
    write(store)
    assert account(store) == expected


def test_a_proof_change_is_seen(store: Store) -> None:
    assert store.get_link("console", "u1", "deepbot").proof is Proof.CLAIMED  # type: ignore[union-attr]
    store.set_link_proof("console", "u1", "deepbot", Proof.APPROVED)
    assert store.get_link("console", "u1", "deepbot").proof is Proof.APPROVED  # type: ignore[union-attr]


def test_a_proven_link_displacing_another_user_is_seen_on_both_sides(store: Store) -> None:
    assert account(store) == "alice"
    assert store.get_link("telegram", "9", "deepbot") is None
    store.set_link("telegram", "9", "deepbot", "alice", proof=Proof.PROVEN)
    assert account(store) is None  # the claimed link made way
    assert store.get_link("telegram", "9", "deepbot").account == "alice"  # type: ignore[union-attr]


def test_a_claim_approved_in_a_transaction_is_seen_after_the_commit(store: Store) -> None:
    """What ``links approve`` does (bot/links.py approve): settle and raise the proof in one
    transaction; the link looked up before it must not stay ``claimed``."""
    claim = store.add_claim("console", "u1", "deepbot", "alice", user_name="u1", chat_id="c")
    assert store.get_link("console", "u1", "deepbot").proof is Proof.CLAIMED  # type: ignore[union-attr]
    with store.transaction():
        assert store.settle_claim(claim.id, "approved", "admin")
        store.set_link_proof("console", "u1", "deepbot", Proof.APPROVED)
    assert store.get_link("console", "u1", "deepbot").proof is Proof.APPROVED  # type: ignore[union-attr]


def test_another_connections_commit_is_seen(store: Store) -> None:
    assert account(store) == "alice"
    assert store.path is not None
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("update links set account = 'elsewhere' where user_id = 'u1'")
    finally:
        other.close()
    assert account(store) == "elsewhere"


def test_reads_inside_a_transaction_see_it_and_are_not_kept_after_a_rollback(
    store: Store,
) -> None:
    assert account(store) == "alice"
    with pytest.raises(RuntimeError), store.transaction():
        store.delete_link("console", "u1", "deepbot")
        assert account(store) is None  # the transaction's own view
        raise RuntimeError("roll back")
    assert account(store) == "alice"


def _commit_elsewhere(store: Store, account: str) -> None:
    assert store.path is not None
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("update links set account = ? where user_id = 'u1'", (account,))
    finally:
        other.close()


async def test_in_a_running_loop_data_version_is_asked_once_per_turn(store: Store) -> None:
    reads = LinkReads(store)
    for _ in range(3):
        assert account(store) == "alice"
    assert reads.version_checks == 1
    await asyncio.sleep(0)  # the loop turns
    assert account(store) == "alice"
    assert reads.version_checks == 2
    assert reads.count == 0  # every one of them from memory


async def test_in_a_running_loop_a_commit_elsewhere_is_seen_after_the_loop_turns(
    store: Store,
) -> None:
    assert account(store) == "alice"
    _commit_elsewhere(store, "elsewhere")
    await asyncio.sleep(0)
    assert account(store) == "elsewhere"


async def test_in_a_running_loop_this_connections_write_is_seen_in_the_same_turn(
    store: Store,
) -> None:
    assert account(store) == "alice"
    store.set_link("console", "u1", "deepbot", "bob")
    assert account(store) == "bob"
    store.conn.execute("update links set account = 'raw' where user_id = 'u1'")
    assert account(store) == "raw"


_OTHER_PROCESS = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
    for line in sys.stdin:
        conn.execute("update links set account = ? where user_id = 'u1'", (line.strip(),))
        print("committed", line.strip(), flush=True)
    """
)


async def test_a_commit_by_another_process_announced_through_the_loop_is_seen(
    store: Store,
) -> None:
    """What a cluster does: another process commits, then tells this one (a broker message,
    here a pipe). Lookups run in every turn meanwhile, also in the turn that reads the news;
    the lookup after it must see the commit."""
    assert store.path is not None
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _OTHER_PROCESS,
        str(store.path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    looking = True

    async def look_every_turn() -> None:
        while looking:
            account(store)
            await asyncio.sleep(0)

    busy = asyncio.create_task(look_every_turn())
    try:
        for i in range(20):
            proc.stdin.write(f"acct{i}\n".encode())
            await proc.stdin.drain()
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.decode().split() == ["committed", f"acct{i}"]
            assert account(store) == f"acct{i}"
    finally:
        looking = False
        await busy
        proc.stdin.close()
        await proc.wait()


def test_a_loop_stopped_within_a_turn_leaves_nothing_trusted(store: Store) -> None:
    """The turn's "already asked" ends with the loop, even when it stops before turning."""
    loop = asyncio.new_event_loop()
    try:
        seen: list[str | None] = []
        loop.call_soon(lambda: (seen.append(account(store)), loop.stop()))
        loop.run_forever()
        assert seen == ["alice"]
        _commit_elsewhere(store, "elsewhere")
        assert account(store) == "elsewhere"
    finally:
        loop.close()
