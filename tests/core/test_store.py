"""The store: migrations, encrypted tokens, keys, concurrent writes, the ledger."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from bot.store import KEY_ENV, Store, StoreError
from bot_migrations.core import migrations as core


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_migrations_on_a_fresh_and_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = Store(path)
    applied = store.migrate([core])
    assert "core:m001_initial" in applied
    store.set_link("discord", "1", "deepbot", "alice")
    store.close()

    extra = Migrations("extra")

    @extra()
    def m001_notes(db: Database) -> None:
        db["notes"].create({"id": int, "text": str}, pk="id")

    store = Store(path)
    assert store.migrate([core, extra]) == ["extra:m001_notes"]  # core already applied
    assert store.get_link("discord", "1", "deepbot") is not None  # data kept
    assert store.migrate([core, extra]) == []
    assert "notes" in store.db.table_names()
    store.close()


def test_link_token_is_unreadable_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = Store(path)
    store.migrate([core])
    # Values long enough that random ciphertext bytes cannot contain them by chance.
    data = {"id": "data-SECRET-71c3d2"}
    store.set_link("telegram", "42", "chatwars", "hero", token="tok-SECRET-9f8e", data=data)
    link = store.get_link("telegram", "42", "chatwars")
    assert link is not None and link.token == "tok-SECRET-9f8e" and link.data == data
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("bot.db"))
    assert b"tok-SECRET-9f8e" not in raw
    assert b"data-SECRET-71c3d2" not in raw
    key_file = tmp_path / "bot.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_wrong_key_is_a_clear_start_up_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bot.db"
    store = Store(path)
    store.migrate([core])
    store.close()
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    with pytest.raises(StoreError, match="does not match"):
        Store(path).migrate([core])
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(StoreError, match="not a valid key"):
        Store(path)


def test_env_key_is_used_without_a_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    store = Store(tmp_path / "bot.db")
    store.migrate([core])
    store.close()
    assert not (tmp_path / "bot.db.key").exists()


async def test_concurrent_writers_never_see_locked(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = Store(path)
    store.migrate([core])
    # A second connection (another process would do the same) reading while we write.
    other = Store(path, key=None)

    async def writer(i: int) -> None:
        for j in range(20):
            store.set_link("test", f"u{i}", "svc", f"acct{i}-{j}", token=f"t{j}")
            store.subscribe("test", f"c{i}", "topic", f"f{j}")
            store.audit("test", f"u{i}", "cmd", {"j": j}, "ok")
            other.get_link("test", f"u{i}", "svc")
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(i) for i in range(50)))
    assert store.conn.execute("select count(*) from links").fetchone()[0] == 50
    assert store.conn.execute("select count(*) from audit").fetchone()[0] == 1000
    other.close()
    store.close()


def test_ledger_row_is_written_before_sending_and_updated(tmp_path: Path) -> None:
    store = Store(tmp_path / "bot.db")
    store.migrate([core])
    entry = store.ledger_create(
        service="chatwars", kind="payout", platform="test", user_id="1", account="hero", amount=5
    )
    assert entry.status == "pending" and len(entry.transaction_id) == 32
    done = store.ledger_update(entry.transaction_id, status="done", fee=1, debit=6, result="Ok")
    assert (done.status, done.fee, done.debit) == ("done", 1, 6)
    with pytest.raises(ValueError, match="cannot be updated"):
        store.ledger_update(entry.transaction_id, amount=1000)
    assert [e.transaction_id for e in store.ledger_entries("chatwars")] == [entry.transaction_id]
    store.close()


def test_key_file_is_created_only_once(tmp_path: Path) -> None:
    Store(tmp_path / "a.db").close()
    key = (tmp_path / "a.db.key").read_bytes()
    Store(tmp_path / "a.db").close()
    assert (tmp_path / "a.db.key").read_bytes() == key
    assert os.stat(tmp_path / "a.db.key").st_size > 40


def test_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    """The database holds the ledger and the encrypted tokens: 0600 like the key file."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "bot.db"
        store = Store(path)
        store.migrate([core])
        store.set_link("discord", "1", "deepbot", "alice")
        wal, shm = tmp_path / "bot.db-wal", tmp_path / "bot.db-shm"
        assert wal.exists() and shm.exists()
        for f in (path, wal, shm):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        store.close()
    finally:
        os.umask(old)


def test_an_existing_readable_database_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bot.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    Store(path).close()
    assert "is readable by others (mode 644)" in caplog.text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the owner's call, not changed


def test_proof_levels_and_one_chat_user_per_account(tmp_path: Path) -> None:
    from bot.store import LinkTaken, Proof

    store = Store(tmp_path / "bot.db")
    store.migrate([core])
    assert store.set_link("discord", "1", "cw", "5101").proof is Proof.CLAIMED
    claim = store.add_claim("discord", "1", "cw", "5101", user_name="a", chat_id="c")
    with pytest.raises(LinkTaken):
        store.set_link("telegram", "9", "cw", "5101")  # a claim on another platform
    # The API's proof beats a claim: the claimant's link and pending claim go.
    link = store.set_link("telegram", "9", "cw", "5101", token="t", proof=Proof.PROVEN)
    assert link.proof is Proof.PROVEN
    assert store.get_link("discord", "1", "cw") is None
    settled = store.get_claim(claim.id)
    assert settled is not None and settled.status == "withdrawn"
    # ...but a proof does not beat another proof.
    with pytest.raises(LinkTaken):
        store.set_link("discord", "1", "cw", "5101", proof=Proof.PROVEN)
    store.close()


def test_links_made_before_proof_levels(tmp_path: Path) -> None:
    """Old links proved nothing, except those holding a token (only the ChatWars code did)."""
    path = tmp_path / "bot.db"
    old = Migrations("core")
    for m in core._migrations[:2]:
        old(name=m.name)(m.fn)
    store = Store(path)
    store.migrate([old])
    store.conn.execute(
        "insert into links (platform, user_id, service, account, token) "
        "values ('telegram', '1', 'chatwars', '5101', ?), ('discord', '2', 'deepbot', 'bob', null)",
        (store.encrypt("tok"),),
    )
    assert store.migrate([core])[0] == "core:m003_link_proof"
    assert store.get_link("telegram", "1", "chatwars").proof == "proven"
    assert store.get_link("discord", "2", "deepbot").proof == "claimed"
    store.close()
