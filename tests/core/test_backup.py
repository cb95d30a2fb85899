"""``bot backup`` / ``bot restore`` on real databases, with a running bot writing meanwhile."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sqlite3
import stat
import sys
import tarfile
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bot.backup import BackupError, create_backup, restore_backup
from bot.cli import main
from bot.store import KEY_ENV, Store

WRITES = 100


def write_config(directory: Path, database: Path) -> Path:
    config = directory / "bot.yaml"
    config.write_text(f"bot:\n  database: {database}\n")
    return config


def make_store(path: Path, rows: int = 3) -> None:
    """A migrated store with ``rows`` ledger rows and linked accounts with tokens."""
    from bot_migrations.core import migrations

    store = Store(path)
    store.migrate([migrations])
    for i in range(rows):
        store.set_link("console", f"u{i}", "deepbot", f"acct{i}", token=f"token-{i}")
        store.ledger_create(
            service="deepbot",
            kind="give",
            platform="console",
            user_id=f"u{i}",
            account="a",
            amount=i,
        )
    store.close()


def ledger(path: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("select * from ledger order by rowid").fetchall()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


async def test_a_backup_taken_while_100_writes_are_in_flight_restores_consistently(
    bot_harness: Any, tmp_path: Path
) -> None:
    dest = tmp_path / "nightly.tar.gz"
    async with bot_harness() as bot:
        store = bot.bot.store
        config = write_config(tmp_path, store.path)
        written: list[str] = []
        backup_done, busy = asyncio.Event(), asyncio.Event()

        async def writer() -> None:
            # Each row and its link in one transaction, so a snapshot holds both or neither.
            while len(written) < WRITES or not backup_done.is_set() or len(written) < 2:
                i = len(written)
                with store.transaction():
                    entry = store.ledger_create(
                        service="chatwars",
                        kind="pay",
                        platform="telegram",
                        user_id=f"user{i}",
                        account=f"acct{i}",
                        amount=i,
                    )
                    store.set_link("telegram", f"user{i}", "chatwars", f"acct{i}", token=f"tk-{i}")
                written.append(entry.transaction_id)
                if len(written) >= 10:
                    busy.set()
                if backup_done.is_set() and len(written) >= WRITES:
                    break
                await asyncio.sleep(0.002)

        task = asyncio.create_task(writer())
        await asyncio.wait_for(busy.wait(), 60)  # the bot is writing before the backup starts
        env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "backup",
            "--config",
            str(config),
            str(dest),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        backup_done.set()
        await asyncio.wait_for(task, 60)
        assert proc.returncode == 0, err.decode()
        assert "with its key file" in out.decode()
        # The restore target is the running bot's database: refused, nothing changed.
        before = ledger(store.path)
        with pytest.raises(BackupError, match=r"in use .*stop the bot first"):
            restore_backup(dest, store.path)
        assert ledger(store.path) == before
        live = {row[0]: row for row in ledger(store.path)}

    assert mode(dest) == 0o600
    restored = tmp_path / "restored" / "bot.db"
    summary = restore_backup(dest, restored)
    rows = ledger(restored)
    with closing(sqlite3.connect(restored)) as conn:
        assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
    # A snapshot: the rows written before it, each exactly as the bot wrote it, none after.
    assert 10 <= len(rows) < len(written)
    assert [r[0] for r in rows] == written[: len(rows)]
    assert all(live[r[0]] == r for r in rows)
    assert summary.ledger_rows == len(rows) == summary.links
    reopened = Store(restored)  # the key file was restored beside it
    try:
        for i in range(len(rows)):
            link = reopened.get_link("telegram", f"user{i}", "chatwars")
            assert link is not None and link.token == f"tk-{i}"
    finally:
        reopened.close()


def test_a_backup_without_its_key_is_refused_at_restore(tmp_path: Path, capsys: Any) -> None:
    db = tmp_path / "live" / "bot.db"
    make_store(db)
    config = write_config(tmp_path, db)
    backup = tmp_path / "backup"
    assert main(["backup", "--config", str(config), str(backup)]) == 0
    assert mode(backup) == 0o700
    assert {p.name: mode(p) for p in backup.iterdir()} == {
        "bot.db": 0o600,
        "bot.db.key": 0o600,
        "manifest.json": 0o600,
    }
    (backup / "bot.db.key").unlink()
    target = tmp_path / "target" / "bot.db"
    make_store(target, rows=1)
    target_before = ledger(target)
    capsys.readouterr()
    target_config = write_config(tmp_path / "target", target)
    assert main(["restore", "--config", str(target_config), str(backup)]) == 2
    err = capsys.readouterr().err
    assert "restore refused:" in err
    assert "has no key file (bot.db.key)" in err and "nothing was changed" in err
    assert ledger(target) == target_before
    assert not list(target.parent.glob("*before-restore*"))


def test_restore_refuses_a_key_that_does_not_open_the_tokens(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    make_store(db)
    backup = tmp_path / "b.tgz"
    create_backup(db, backup)
    with tarfile.open(backup) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    files["bot.db.key"] = Fernet.generate_key() + b"\n"  # a valid key, but another one
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(forged, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BackupError, match="does not open the tokens"):
        restore_backup(forged, tmp_path / "new" / "bot.db")
    assert not (tmp_path / "new" / "bot.db").exists()


def test_the_key_from_the_environment_is_noted_not_copied(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    db = tmp_path / "bot.db"
    os.environ[KEY_ENV] = key
    try:
        make_store(db)
    finally:
        del os.environ[KEY_ENV]
    assert not (tmp_path / "bot.db.key").exists()
    backup = tmp_path / "b"
    with pytest.raises(BackupError, match="no key for"):
        create_backup(db, backup, env={})
    summary = create_backup(db, backup, env={KEY_ENV: key})
    assert summary.key == "env"
    assert sorted(p.name for p in backup.iterdir()) == [
        "KEY-FROM-ENVIRONMENT.txt",
        "bot.db",
        "manifest.json",
    ]
    assert key not in "".join(p.read_text(errors="replace") for p in backup.iterdir())
    target = tmp_path / "restored.db"
    with pytest.raises(BackupError, match=f"set {KEY_ENV} to that key"):
        restore_backup(backup, target, env={})
    with pytest.raises(BackupError, match="does not open the tokens"):
        restore_backup(backup, target, env={KEY_ENV: Fernet.generate_key().decode()})
    restore_backup(backup, target, env={KEY_ENV: key})
    assert len(ledger(target)) == 3


def test_a_damaged_or_foreign_backup_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    make_store(db)
    backup = tmp_path / "b"
    create_backup(db, backup)
    with pytest.raises(BackupError, match="never overwrites"):
        create_backup(db, tmp_path / "b")  # not empty
    data = bytearray((backup / "bot.db").read_bytes())
    data[5000] ^= 0xFF
    (backup / "bot.db").write_bytes(bytes(data))
    with pytest.raises(BackupError, match="does not match its checksum"):
        restore_backup(backup, tmp_path / "t.db")

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(BackupError, match=re.escape("unexpected entry '../escaped'")):
        restore_backup(evil, tmp_path / "t.db")
    assert not (tmp_path / "escaped").exists()
    with pytest.raises(BackupError, match=re.escape("no manifest.json")):
        restore_backup(tmp_path, tmp_path / "t.db")  # a directory that is no backup
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["key"] == "file" and manifest["ledger_rows"] == 3


def test_restore_keeps_the_database_it_replaces(tmp_path: Path) -> None:
    old, new = tmp_path / "old" / "bot.db", tmp_path / "new" / "bot.db"
    make_store(old, rows=2)
    make_store(new, rows=5)
    create_backup(new, tmp_path / "b.tar.gz")
    old_rows, old_key = ledger(old), (tmp_path / "old" / "bot.db.key").read_bytes()
    restore_backup(tmp_path / "b.tar.gz", old)
    assert len(ledger(old)) == 5
    (kept,) = old.parent.glob("bot.db.before-restore-*")
    (kept_key,) = old.parent.glob("bot.db.key.before-restore-*")
    assert ledger(kept) == old_rows and kept_key.read_bytes() == old_key
    assert mode(kept) == 0o600


def test_backup_of_a_missing_database_says_so(tmp_path: Path, capsys: Any) -> None:
    config = write_config(tmp_path, tmp_path / "nothing.db")
    assert main(["backup", "--config", str(config), str(tmp_path / "b")]) == 2
    assert "there is no database at" in capsys.readouterr().err
    assert not (tmp_path / "nothing.db").exists()
