"""``bot backup`` and ``bot restore``: the store and its key, copied while the bot runs.

The store holds the payments ledger and the linked accounts, whose tokens are encrypted with a
key kept beside the database (or in ``BOT_SECRET_KEY``). A copy of one without the other is
worth little, so a backup always carries both: the key file, or a note saying the key comes
from ``BOT_SECRET_KEY`` (kept wherever the operator keeps that secret, never in the backup).

Why it is done this way:

- The database is copied with SQLite's online backup API in one step: one read transaction,
  so the copy is a consistent snapshot even while the bot keeps writing (WAL lets the writer
  go on). Copying the file could catch a half-written page or miss the WAL.
- Every copy is checked before it is kept: ``PRAGMA integrity_check``, the key opens the
  store's canary and a stored token, and (on restore) the checksum in the manifest.
- Restore writes through SQLite too, into the target opened in exclusive locking mode. That
  lock is refused while any other connection has the database open, which is how a running
  bot (or ``bot migrate``) is detected; it is held until the restored copy is in place.
- Files are created mode 0600 (directories 0700): the backup holds the key to the tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .errors import BotError
from .store import KEY_ENV, key_opens

MANIFEST = "manifest.json"
KEY_NOTE = "KEY-FROM-ENVIRONMENT.txt"
#: written into the manifest; a restore refuses formats it does not know
FORMAT = 1
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


class BackupError(BotError):
    """A backup or restore cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Summary:
    """What a backup holds (also what ``restore`` put back)."""

    path: Path
    database: str
    key: str  # "file" or "env"
    ledger_rows: int
    links: int


# --------------------------------------------------------------------------- backup


def create_backup(db_path: Path, dest: Path, *, env: Mapping[str, str] = os.environ) -> Summary:
    """Write the database at ``db_path`` and its key into ``dest`` (a directory, or a
    ``.tar.gz`` file when the name ends so). ``dest`` must not exist yet, or be an empty
    directory: a backup never overwrites another."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise BackupError(f"there is no database at {db_path}: nothing to back up")
    archive = dest.name.endswith(_ARCHIVE_SUFFIXES)
    if archive and dest.exists():
        raise BackupError(f"{dest} already exists; a backup never overwrites another")
    if not archive and dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(
            f"{dest} exists and is not an empty directory; a backup never overwrites another"
        )
    key, key_source = _live_key(db_path, env)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Work beside the destination, not in /tmp: a large database may not fit a tmpfs, and the
    # finished files are then renamed into place on the same file system.
    with tempfile.TemporaryDirectory(prefix=".bot-backup-", dir=dest.parent) as tmp:
        work = Path(tmp)
        copy = work / db_path.name
        _online_copy(db_path, copy)
        _check_integrity(copy)
        if not _key_opens(copy, key):
            where = KEY_ENV if key_source == "env" else f"the key file {_key_path(db_path)}"
            raise BackupError(
                f"{where} does not open the tokens of {db_path}: the bot could not read them "
                "either; find the key the database was created with before backing it up"
            )
        ledger_rows, links = _counts(copy)
        files = [copy.name]
        if key_source == "file":
            _write_private(work / _key_path(copy).name, key + b"\n")
        else:
            note = (
                f"The token encryption key of {db_path.name} is not in this backup: the bot "
                f"reads it from the {KEY_ENV} environment variable.\nKeep that value with "
                f"your other secrets; a restore needs {KEY_ENV} set to it.\n"
            )
            _write_private(work / KEY_NOTE, note.encode())
        files.append(_key_path(copy).name if key_source == "file" else KEY_NOTE)
        manifest = {
            "format": FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "database": copy.name,
            "sha256": _sha256(copy),
            "key": key_source,
            "ledger_rows": ledger_rows,
            "links": links,
        }
        _write_private(work / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        files.append(MANIFEST)
        os.chmod(copy, 0o600)
        if archive:
            _write_archive(work, files, dest)
        else:
            dest.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(dest, 0o700)
            for name in files:
                shutil.move(work / name, dest / name)
    return Summary(dest, copy.name, key_source, ledger_rows, links)


def _live_key(db_path: Path, env: Mapping[str, str]) -> tuple[bytes, str]:
    """The key the bot uses for this database, and where it comes from ("env" or "file")."""
    value = env.get(KEY_ENV, "").strip()
    if value:
        return _valid_key(value.encode(), KEY_ENV), "env"
    path = _key_path(db_path)
    if not path.is_file():
        raise BackupError(
            f"no key for {db_path}: neither {KEY_ENV} is set nor is there a key file {path}; "
            "without it the linked accounts' tokens in a backup could never be read"
        )
    return _valid_key(path.read_bytes().strip(), str(path)), "file"


def _online_copy(source: Path, target: Path) -> None:
    """A consistent snapshot of ``source`` through SQLite's backup API, in one step."""
    with (
        closing(sqlite3.connect(source, timeout=30.0)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file


def _write_archive(work: Path, names: list[str], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name in names:
                info = tar.gettarinfo(work / name, arcname=name)
                info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
                with open(work / name, "rb") as fh:
                    tar.addfile(info, fh)
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- restore


def restore_backup(src: Path, db_path: Path, *, env: Mapping[str, str] = os.environ) -> Summary:
    """Put the backup at ``src`` back as the database at ``db_path`` (and its key file).

    Everything is checked before the target is touched: the manifest, the checksum, the
    integrity of the copy, and that the key the bot will use opens its tokens. The previous
    database and key file, if any, are kept beside the target as ``*.before-restore``.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bot-restore-", dir=db_path.parent) as tmp:
        work = Path(tmp)
        _unpack(Path(src), work)
        manifest = _read_manifest(work)
        name = manifest["database"]
        copy = work / name
        if not copy.is_file():
            raise BackupError(f"{src} has no database file {name}")
        if _sha256(copy) != manifest.get("sha256"):
            raise BackupError(f"{src}: {name} does not match its checksum; the backup is damaged")
        key, key_file = _backup_key(src, work, manifest, env)
        _check_integrity(copy)
        if not _key_opens(copy, key):
            where = KEY_ENV if key_file is None else f"the backup's key file {key_file.name}"
            raise BackupError(
                f"{where} does not open the tokens in {src}; restore refused, nothing changed"
            )
        ledger_rows, links = _counts(copy)
        if not db_path.exists():
            _write_private(db_path, b"")  # a new database holds tokens: only its owner reads it
        with _exclusive(db_path) as target:
            stamp = time.strftime("%Y%m%d%H%M%S")
            if db_path.stat().st_size > 0:
                previous = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
                _online_copy_from(target, previous)
            with closing(sqlite3.connect(copy)) as source:
                source.backup(target)
            if key_file is not None:
                old = _key_path(db_path)
                if old.is_file() and old.read_bytes().strip() != key:
                    os.replace(old, old.with_name(f"{old.name}.before-restore-{stamp}"))
                _write_private(old, key + b"\n", replace=True)
    return Summary(db_path, name, manifest["key"], ledger_rows, links)


def _unpack(src: Path, work: Path) -> None:
    """Copy the backup's files (a directory or an archive) into ``work``, safely."""
    if src.is_dir():
        for entry in src.iterdir():
            if entry.is_file() and not entry.is_symlink():
                shutil.copyfile(entry, work / entry.name)
        return
    if not src.is_file():
        raise BackupError(f"there is no backup at {src}")
    try:
        with tarfile.open(src, "r:*") as tar:
            for member in tar:
                # Only plain files at the top: no paths, links or devices from an archive.
                if not member.isfile() or "/" in member.name or member.name in ("", ".", ".."):
                    raise BackupError(f"{src}: unexpected entry {member.name!r}; not a backup")
                data = tar.extractfile(member)
                assert data is not None
                with data, open(work / member.name, "wb") as out:
                    shutil.copyfileobj(data, out)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{src} is not a readable backup archive: {exc}") from None


def _read_manifest(work: Path) -> dict[str, object]:
    try:
        manifest = json.loads((work / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"no {MANIFEST}: this is not a backup made by `bot backup`") from None
    except ValueError as exc:
        raise BackupError(f"{MANIFEST} is damaged: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{MANIFEST}: unknown backup format (this bot reads format {FORMAT})")
    name = manifest.get("database")
    if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
        raise BackupError(f"{MANIFEST}: no valid database name")
    return manifest


def _backup_key(
    src: Path, work: Path, manifest: Mapping[str, object], env: Mapping[str, str]
) -> tuple[bytes, Path | None]:
    """The key the restored bot will use, and the backup's key file if that is where it is."""
    env_value = env.get(KEY_ENV, "").strip()
    if manifest.get("key") == "env":
        if not env_value:
            raise BackupError(
                f"{src} was made with the key in {KEY_ENV} (see {KEY_NOTE}); set {KEY_ENV} "
                "to that key and run restore again. Nothing was changed."
            )
        return _valid_key(env_value.encode(), KEY_ENV), None
    key_file = work / _key_path(Path(str(manifest["database"]))).name
    if not key_file.is_file():
        raise BackupError(
            f"{src} has no key file ({key_file.name}): without it the linked accounts' tokens "
            "cannot be read, so the restore is refused and nothing was changed. Restore a "
            "backup that has its key, or copy the key file into this one."
        )
    key = _valid_key(key_file.read_bytes().strip(), key_file.name)
    if env_value and env_value.encode() != key:
        raise BackupError(
            f"{KEY_ENV} is set, so the bot would use it instead of the backup's key file, "
            f"and it is a different key: unset {KEY_ENV} or set it to the backup's key. "
            "Nothing was changed."
        )
    return key, key_file


@contextmanager
def _exclusive(db_path: Path) -> Iterator[sqlite3.Connection]:
    """The target database, locked against every other connection until the block ends."""
    conn = sqlite3.connect(db_path, timeout=0.5, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("COMMIT")  # the lock stays: exclusive locking mode keeps it
        except sqlite3.OperationalError:
            raise BackupError(
                f"{db_path} is in use (a running bot, or another command, has it open); "
                "stop the bot first. Nothing was changed."
            ) from None
        yield conn
    finally:
        conn.close()


def _online_copy_from(conn: sqlite3.Connection, target: Path) -> None:
    with closing(sqlite3.connect(target)) as dst:
        conn.backup(dst)
    os.chmod(target, 0o600)


# --------------------------------------------------------------------------- checks


def _key_path(db_path: Path) -> Path:
    """Where the store keeps the key file (see :func:`bot.store.load_key`)."""
    return db_path.with_name(db_path.name + ".key")


def _valid_key(key: bytes, where: str) -> bytes:
    try:
        Fernet(key)
    except ValueError:
        raise BackupError(f"{where} does not hold a valid token encryption key") from None
    return key


def _check_integrity(path: Path) -> None:
    try:
        with closing(sqlite3.connect(path)) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path.name} is not a readable SQLite database: {exc}") from None
    if rows != [("ok",)]:
        problems = "; ".join(str(r[0]) for r in rows[:5])
        raise BackupError(f"{path.name} fails the integrity check: {problems}")


def _key_opens(path: Path, key: bytes) -> bool:
    """True if ``key`` opens the store's canary and every stored token of ``path``.

    Read only: the copy's checksum is taken after this check.
    """
    fernet = Fernet(key)
    try:
        with closing(sqlite3.connect(path)) as conn:
            if key_opens(conn, key) is False:
                return False
            for token, data in _secrets(conn):
                for value in (token, data):
                    if value:
                        fernet.decrypt(value.encode())
    except InvalidToken:
        return False
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path.name} cannot be read: {exc}") from None
    return True


def _secrets(conn: sqlite3.Connection) -> Iterator[tuple[str | None, str | None]]:
    try:
        yield from conn.execute("select token, data from links")
    except sqlite3.OperationalError:
        return  # no links table yet: nothing to decrypt


def _counts(path: Path) -> tuple[int, int]:
    with closing(sqlite3.connect(path)) as conn:
        counts = []
        for table in ("ledger", "links"):
            try:
                counts.append(conn.execute(f"select count(*) from {table}").fetchone()[0])
            except sqlite3.OperationalError:
                counts.append(0)
    return counts[0], counts[1]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_private(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write ``data`` to a new file only its owner can read (atomically when replacing)."""
    target = path.with_name(path.name + ".partial") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    if replace:
        os.replace(target, path)


__all__ = ["BackupError", "Summary", "create_backup", "restore_backup"]
