"""The in-memory link cache of the store: served from memory while nothing changed, and
dropped by every write path (the store's own methods, a plugin's raw SQL, sqlite-utils, a
claim approved, another connection's commit) and never filled inside a transaction."""

from __future__ import annotations

import sqlite3
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
    """Counts the link look-ups that reached SQLite (SQLite's own statement trace)."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        store.conn.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        if sql.startswith("select platform, user_id, service, account"):
            self.count += 1


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
