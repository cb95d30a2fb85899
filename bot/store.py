"""The SQLite store: links, subscriptions, the payments ledger, the audit log.

Why it is shaped this way:

- The bot is one asyncio process on one thread and SQLite calls here are short, so every call
  runs inline on the event loop: no thread hop (about 200 µs each), and since no ``await``
  ever happens inside a transaction, writes from concurrent handlers are serialized by
  construction and never see "database is locked". WAL plus a busy timeout cover the other
  process (``bot migrate`` or a reader) that may touch the same file.
- Hot reads (a link lookup on every command) use plain prepared SQL on the connection;
  sqlite-utils' ``Table.get`` re-reads the schema on each call. Looked-up links are kept in
  memory while nothing could have changed them: the cache is dropped whenever this
  connection changes any row (``total_changes``, so every write path counts, also a
  plugin's own SQL) or another connection commits (``PRAGMA data_version``: ``bot migrate``,
  a second process of a cluster); reads inside an open transaction are never cached, since
  it may roll back. ``data_version`` is asked at most once per turn of the event loop (a
  fifth of a linked command's dispatch cost; 100 commands in one turn cost 13 µs each
  instead of 18): another process's commit can only matter to this one through something
  the loop polls (a broker message, a socket), and whatever a turn handles arrived before
  that turn's poll returned, so before the turn's first lookup, which asks. Outside a
  running loop every lookup asks.
- Every link carries a proof level (:class:`Proof`): what, if anything, showed that the
  account belongs to the chat user. One account of a service is linked by at most one chat
  user, across platforms; claims waiting for an admin are numbered rows of ``link_claims``.
- The database file (and SQLite's -wal/-shm beside it, which take its mode) is created 0600:
  it holds the ledger and the encrypted tokens.
- Tokens and per-link secrets are encrypted with Fernet. The key comes from
  ``BOT_SECRET_KEY`` or a key file created beside the database on first run; a canary row
  tells a wrong key at start-up instead of failing later on the first decrypt.
- ``cryptography`` is imported with the first secret encrypted or decrypted, not at start-up:
  it costs 8.5 MiB of RSS and most runs answer many commands before touching a token (issue
  19's start-up target is 60 MiB). The start-up checks need only the standard library: a key
  is 32 url-safe base64 bytes, and the canary's HMAC-SHA256 (a Fernet token's signature,
  made with the key's first half) tells whether the key is the one the database was made
  with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

if TYPE_CHECKING:
    from cryptography.fernet import Fernet
    from sqlite_utils.migrations import Migrations

from .entry_points import entry_points
from .errors import BotError, UserError

log = logging.getLogger(__name__)

KEY_ENV = "BOT_SECRET_KEY"
#: links kept in memory at most (the whole cache is dropped when it is full)
_LINK_CACHE_SIZE = 10_000
_CANARY = "bot-key-check"


class StoreError(BotError):
    """The database cannot be used as configured (wrong key, unreadable file)."""


class Proof(StrEnum):
    """How a link was shown to belong to its chat user, strongest first."""

    #: the API proved it (the ChatWars auth code reached the account's owner)
    PROVEN = "proven"
    #: an admin approved the claim
    APPROVED = "approved"
    #: the user said so; nothing proven
    CLAIMED = "claimed"

    @property
    def rank(self) -> int:
        return {Proof.PROVEN: 2, Proof.APPROVED: 1, Proof.CLAIMED: 0}[self]


class LinkTaken(UserError):
    """The account is already linked by another chat user (one per service, all platforms)."""

    def __init__(self, service: str, account: str) -> None:
        super().__init__(
            f"{account} is already linked to another chat user for {service}. "
            "If it is yours, ask an admin."
        )
        self.service = service
        self.account = account


@dataclass(frozen=True)
class LinkClaim:
    """A link claim and how it was settled (``status``: pending, approved, rejected,
    withdrawn)."""

    id: int
    platform: str
    user_id: str
    user_name: str
    chat_id: str
    service: str
    account: str
    status: str
    created: float
    settled: float | None
    settled_by: str | None


def key_opens(conn: sqlite3.Connection, key: bytes) -> bool | None:
    """Whether ``key`` opens this database's canary; None if it has none yet (``bot
    backup`` and ``bot restore`` check a copy with this, without writing to it)."""
    try:
        row = conn.execute("select value from meta where key = ?", (_CANARY,)).fetchone()
    except sqlite3.OperationalError:
        return None  # not migrated yet: no meta table
    if row is None:
        return None
    from cryptography.fernet import Fernet, InvalidToken

    try:
        Fernet(key).decrypt(row[0].encode())
    except InvalidToken:
        return False
    return True


_KEY_ERROR = "Fernet key must be 32 url-safe base64-encoded bytes."


def check_key(key: bytes) -> bytes:
    """The key's 32 raw bytes; ValueError (Fernet's own words) for anything else."""
    try:
        raw = base64.urlsafe_b64decode(key)
    except (binascii.Error, TypeError) as exc:
        raise ValueError(_KEY_ERROR) from exc
    if len(raw) != 32:
        raise ValueError(_KEY_ERROR)
    return raw


def new_key() -> bytes:
    """A new random key, as ``Fernet.generate_key()`` makes them."""
    return base64.urlsafe_b64encode(os.urandom(32))


def signed_with(token: str, key: bytes) -> bool:
    """Whether the Fernet ``token`` is signed with ``key`` (its HMAC-SHA256 under the key's
    first 16 bytes, checked as Fernet checks it before decrypting), standard library only."""
    try:
        data = base64.urlsafe_b64decode(token.encode())
    except (binascii.Error, ValueError):
        return False
    # version byte, timestamp (8), IV (16), at least one AES block (16), HMAC (32)
    if len(data) < 1 + 8 + 16 + 16 + 32 or data[0] != 0x80:
        return False
    digest = hmac.new(check_key(key)[:16], data[:-32], hashlib.sha256).digest()
    return hmac.compare_digest(digest, data[-32:])


class Link:
    """A chat user's account on one outside service.

    The token and data are decrypted on first access only: most lookups (permission checks,
    the account name) never need them, and a Fernet decrypt costs more than the query.
    """

    __slots__ = (
        "_data",
        "_data_enc",
        "_store",
        "_token",
        "_token_enc",
        "account",
        "created",
        "platform",
        "proof",
        "service",
        "updated",
        "user_id",
    )

    def __init__(self, store: Store, row: tuple[Any, ...]) -> None:
        (
            self.platform,
            self.user_id,
            self.service,
            self.account,
            self._token_enc,
            self._data_enc,
            self.created,
            self.updated,
            proof,
        ) = row
        self.proof = Proof(proof)
        self._store = store
        self._token: str | None = None
        self._data: dict[str, Any] | None = None

    @property
    def token(self) -> str | None:
        if self._token is None and self._token_enc:
            self._token = self._store.decrypt(self._token_enc)
        return self._token

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = json.loads(self._store.decrypt(self._data_enc)) if self._data_enc else {}
        return self._data

    def __repr__(self) -> str:
        return (
            f"Link({self.platform}:{self.user_id} -> {self.service}:{self.account}, {self.proof})"
        )


@dataclass(frozen=True)
class Subscription:
    id: int
    platform: str
    chat_id: str
    topic: str
    filter: str | None


@dataclass(frozen=True)
class LedgerEntry:
    transaction_id: str
    service: str
    kind: str
    platform: str
    user_id: str
    account: str
    amount: int
    status: str
    fee: int | None
    debit: int | None
    result: str | None
    message: str | None
    created: float
    updated: float


def now() -> float:
    return time.time()


def load_key(db_path: Path | None) -> bytes:
    """The Fernet key: ``BOT_SECRET_KEY``, else a 0600 key file beside the database."""
    env = os.environ.get(KEY_ENV)
    if env:
        key = env.strip().encode()
        try:
            check_key(key)
        except ValueError:
            raise StoreError(
                f"{KEY_ENV} is not a valid key (it must be 32 url-safe base64-encoded bytes; "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from None
        return key
    if db_path is None:
        return new_key()
    key_path = db_path.with_name(db_path.name + ".key")
    if key_path.exists():
        mode = stat.S_IMODE(key_path.stat().st_mode)
        if mode & 0o077:
            log.warning("key file %s is readable by others (mode %o); chmod 600 it", key_path, mode)
        return key_path.read_bytes().strip()
    # Written aside, then linked into place: processes starting together on a new database
    # all agree on the first key linked, and none ever reads a half-written file.
    key = new_key()
    spare = key_path.with_name(f"{key_path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(spare, key_path)
        except FileExistsError:
            return key_path.read_bytes().strip()
    finally:
        spare.unlink(missing_ok=True)
    log.info("created the token encryption key %s (keep it with the database)", key_path)
    return key


#: seconds a new connection keeps trying to put a fresh database in WAL mode
_WAL_PATIENCE = 30.0


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode, waiting for the processes that open it at the same time.

    Switching a new file to WAL takes an exclusive lock, and SQLite reports "database is
    locked" at once (the busy timeout does not apply) while another connection holds the
    file in the old mode. Once any process has switched it, the mode is in the file.
    """
    deadline = time.monotonic() + _WAL_PATIENCE
    pause = 0.005
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            mode = None
        if mode in ("wal", "memory"):
            return
        if time.monotonic() > deadline:
            raise StoreError(
                f"could not put the database in WAL mode within {_WAL_PATIENCE:.0f} s "
                f"(journal mode {mode or 'locked'}): another process keeps it locked"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite would use 0644 less the
    umask); its -wal and -shm files copy the database file's mode. An existing file readable
    by others is only warned about, like the key file: changing it is the owner's call."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("database %s is readable by others (mode %o); chmod 600 it", path, mode)
        return
    os.close(fd)


@cache
def _sqlite_utils_plugins() -> bool:
    """Whether any sqlite-utils plugin could want to prepare our connection.

    Why: the first ``sqlite_utils.Database`` with ``execute_plugins`` on scans every installed
    distribution through pluggy (about 13 ms at start-up, before the first reply). The same
    question asked of :func:`bot.entry_points.entry_points` costs about a millisecond (it
    imports ``importlib.metadata`` only if some package declares the group), and the answer
    is almost always no. Plugins registered in code (``sqlite_utils.plugins.pm.register``)
    still count.
    """
    from sqlite_utils.plugins import pm

    return bool(entry_points("sqlite_utils") or pm.get_plugins())


class Store:
    """One SQLite file, opened once for the process."""

    def __init__(self, path: str | Path, key: bytes | None = None) -> None:
        self.path = None if str(path) == ":memory:" else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
        conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        self.conn = conn
        self.db = sqlite_utils.Database(conn, execute_plugins=_sqlite_utils_plugins())
        self._links: dict[tuple[str, str, str], tuple[Any, ...] | None] = {}
        self._links_stamp: tuple[int, int] = (-1, -1)
        #: the running loop in whose current turn data_version was asked (see get_link)
        self._links_turn: Any = None
        self._links_version: sqlite3.Cursor | None = None
        self._key = key if key is not None else load_key(self.path)
        check_key(self._key)
        self._fernet_made: Fernet | None = None

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ migrations

    def migrate(self, sets: Iterable[Migrations]) -> list[str]:
        """Apply pending migrations of every set; returns ``set:name`` of each one applied."""
        applied: list[str] = []
        for m in sets:
            with self._migrating(m) as pending:
                m.apply(self.db)
            applied.extend(f"{m.name}:{n}" for n in pending)
        self._check_key()
        return applied

    @contextmanager
    def _migrating(self, m: Migrations) -> Iterator[list[str]]:
        """Hold the write lock while one set's pending migrations are read and applied.

        Processes of a cluster start together on one file: each would find the same
        migrations pending, and SQLite refuses (without waiting) a write from a connection
        whose snapshot another one changed. ``BEGIN IMMEDIATE`` waits its turn under the busy
        timeout instead, and the next process then finds nothing pending. sqlite-utils
        nests each migration's own transaction as a savepoint. A migration declared
        ``transactional=False`` (a VACUUM, say) cannot run inside a transaction: such a set
        is applied unlocked, as sqlite-utils does on its own.
        """
        if any(not p.transactional for p in m.pending(self.db)):
            yield [p.name for p in m.pending(self.db)]
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield [p.name for p in m.pending(self.db)]
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _check_key(self) -> None:
        row = self.conn.execute("select value from meta where key = ?", (_CANARY,)).fetchone()
        if row is None:
            self.set_meta(_CANARY, self._fernet.encrypt(_CANARY.encode()).decode())
            return
        if not signed_with(row[0], self._key):
            raise StoreError(
                f"the encryption key does not match the one this database ({self.path}) was "
                f"created with: set {KEY_ENV} to the original key or restore the key file"
            ) from None

    # ------------------------------------------------------------------ helpers

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction. Never ``await`` inside it (see the module docstring).

        Nested use joins the outer transaction, so store methods that need one can be called
        from a caller's own."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    @property
    def _fernet(self) -> Fernet:
        """Made (and ``cryptography`` imported) with the first secret, see the module doc."""
        made = self._fernet_made
        if made is None:
            from cryptography.fernet import Fernet

            made = self._fernet_made = Fernet(self._key)
        return made

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(value.encode()).decode()
        except InvalidToken:
            raise StoreError("a stored secret cannot be decrypted with the current key") from None

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("select value from meta where key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "insert into meta (key, value) values (?, ?) "
            "on conflict(key) do update set value = excluded.value",
            (key, value),
        )

    # ------------------------------------------------------------------ links

    _LINK_SQL = (
        "select platform, user_id, service, account, token, data, created, updated, proof "
        "from links where platform = ? and user_id = ? and service = ?"
    )

    def get_link(self, platform: str, user_id: str, service: str) -> Link | None:
        """The link of a chat user to ``service``; from memory when no row changed since it
        was read (see the module docstring), which halves the cost of the lookup."""
        key = (platform, str(user_id), service)
        conn = self.conn
        if conn.in_transaction:  # it may roll back: read the live state, keep nothing
            row = conn.execute(self._LINK_SQL, key).fetchone()
            return None if row is None else Link(self, row)
        self.stamp()  # drops the cached links if a row may have changed
        cache = self._links
        try:
            row = cache[key]
        except KeyError:
            if len(cache) >= _LINK_CACHE_SIZE:
                cache.clear()
            row = cache[key] = conn.execute(self._LINK_SQL, key).fetchone()
        return None if row is None else Link(self, row)

    def stamp(self) -> tuple[int, int]:
        """A value that changes whenever a row may have changed: written on this connection
        (``total_changes``) or committed by another (``data_version``).

        Asked the way the link cache asks (``data_version`` at most once per loop turn), so
        an in-memory copy of any table can compare it on every use at the cost of a tuple
        comparison; in a cluster, :mod:`bot.access` keeps the per-chat switches fresh this way.
        """
        turn = self._links_turn
        if (
            turn is None
            or self.conn.total_changes != self._links_stamp[0]
            or not turn.is_running()  # stopped before the turn ended: ask again
        ):
            self._check_links()
        return self._links_stamp

    def _check_links(self) -> None:
        """Drop the cached links if a row may have changed; in a running loop, trust the
        answer until the loop turns (see the module docstring)."""
        import asyncio  # already imported wherever a loop runs

        conn = self.conn
        version = self._links_version
        if version is None:  # one cursor kept for it: a new one per check costs more
            version = self._links_version = conn.cursor()
        stamp = (conn.total_changes, version.execute("pragma data_version").fetchone()[0])
        if stamp != self._links_stamp:
            self._links.clear()
            self._links_stamp = stamp
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._links_turn = None
            return
        if self._links_turn is not loop:
            self._links_turn = loop
            loop.call_soon(self._links_turned, loop)

    def _links_turned(self, loop: Any) -> None:
        if self._links_turn is loop:
            self._links_turn = None

    def set_link(
        self,
        platform: str,
        user_id: str,
        service: str,
        account: str,
        *,
        token: str | None = None,
        data: dict[str, Any] | None = None,
        proof: Proof | str = Proof.CLAIMED,
    ) -> Link:
        """Link a chat user to an account, or replace their link to ``service``.

        One account is linked by one chat user per service, across platforms: if another
        chat user holds it, :class:`LinkTaken` is raised, unless this link is proven and
        theirs is not (the API's proof beats a claim; their link and pending claims go).
        A different account, or a weaker proof, withdraws the user's own pending claims.
        """
        proof = Proof(proof)
        t = now()
        token_enc = self.encrypt(token) if token else None
        data_enc = self.encrypt(json.dumps(data)) if data else None
        with self.transaction() as conn:
            for other in self._holders(service, account):
                if (other.platform, other.user_id) == (platform, str(user_id)):
                    continue
                if proof is not Proof.PROVEN or other.proof is Proof.PROVEN:
                    raise LinkTaken(service, account)
                log.info("a proven %s link displaces %r", service, other)
                self._delete_link(other.platform, other.user_id, service)
            current = self.get_link(platform, user_id, service)
            if current is not None and (
                current.account.lower() != account.lower() or proof.rank < current.proof.rank
            ):
                self._withdraw_claims(platform, user_id, service)
            conn.execute(
                "insert into links (platform, user_id, service, account, token, data, created, "
                "updated, proof) values (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "on conflict(platform, user_id, service) do update set "
                "account = excluded.account, token = excluded.token, data = excluded.data, "
                "updated = excluded.updated, proof = excluded.proof",
                (platform, str(user_id), service, account, token_enc, data_enc, t, t, proof.value),
            )
        link = self.get_link(platform, user_id, service)  # re-read: `created` may be older
        assert link is not None
        return link

    def set_link_proof(self, platform: str, user_id: str, service: str, proof: Proof) -> None:
        self.conn.execute(
            "update links set proof = ?, updated = ? where platform = ? and user_id = ? "
            "and service = ?",
            (Proof(proof).value, now(), platform, str(user_id), service),
        )

    def links_to_account(self, service: str, account: str) -> list[Link]:
        """Every link to ``account`` of ``service`` (case-insensitive); at most one, except in
        a database from before the one-user-per-account rule."""
        return self._holders(service, account)

    def _holders(self, service: str, account: str) -> list[Link]:
        rows = self.conn.execute(
            "select platform, user_id, service, account, token, data, created, updated, proof "
            "from links where service = ? and lower(account) = lower(?)",
            (service, account),
        ).fetchall()
        return [Link(self, r) for r in rows]

    def delete_link(self, platform: str, user_id: str, service: str) -> bool:
        """Forget a link; its pending claims are withdrawn with it."""
        with self.transaction():
            return self._delete_link(platform, user_id, service)

    def _delete_link(self, platform: str, user_id: str, service: str) -> bool:
        self._withdraw_claims(platform, user_id, service)
        cur = self.conn.execute(
            "delete from links where platform = ? and user_id = ? and service = ?",
            (platform, str(user_id), service),
        )
        return cur.rowcount > 0

    def links_for(self, platform: str, user_id: str) -> list[Link]:
        rows = self.conn.execute(
            "select platform, user_id, service, account, token, data, created, updated, proof "
            "from links where platform = ? and user_id = ? order by service",
            (platform, str(user_id)),
        ).fetchall()
        return [Link(self, r) for r in rows]

    def find_link_by_account(self, service: str, account: str) -> Link | None:
        row = self.conn.execute(
            "select platform, user_id, service, account, token, data, created, updated, proof "
            "from links where service = ? and lower(account) = lower(?) limit 1",
            (service, account),
        ).fetchone()
        return None if row is None else Link(self, row)

    # ------------------------------------------------------------------ link claims

    _CLAIM_SQL = (
        "select id, platform, user_id, user_name, chat_id, service, account, status, created, "
        "settled, settled_by from link_claims"
    )

    def add_claim(
        self,
        platform: str,
        user_id: str,
        service: str,
        account: str,
        *,
        user_name: str = "",
        chat_id: str = "",
    ) -> LinkClaim:
        """Number a claim that waits for an admin; an identical pending one is reused."""
        existing = self.pending_claim_for(platform, user_id, service)
        if existing is not None and existing.account.lower() == account.lower():
            return existing
        with self.transaction() as conn:
            self._withdraw_claims(platform, user_id, service)
            cur = conn.execute(
                "insert into link_claims (platform, user_id, user_name, chat_id, service, "
                "account, status, created) values (?, ?, ?, ?, ?, ?, 'pending', ?)",
                (platform, str(user_id), user_name, str(chat_id), service, account, now()),
            )
        claim = self.get_claim(int(cur.lastrowid or 0))
        assert claim is not None
        return claim

    def get_claim(self, claim_id: int) -> LinkClaim | None:
        row = self.conn.execute(self._CLAIM_SQL + " where id = ?", (claim_id,)).fetchone()
        return None if row is None else LinkClaim(*row)

    def pending_claim_for(self, platform: str, user_id: str, service: str) -> LinkClaim | None:
        row = self.conn.execute(
            self._CLAIM_SQL + " where platform = ? and user_id = ? and service = ? "
            "and status = 'pending' order by id desc limit 1",
            (platform, str(user_id), service),
        ).fetchone()
        return None if row is None else LinkClaim(*row)

    def claims_since(self, platform: str, user_id: str, since: float) -> int:
        """How many claims a chat user made since ``since`` (any service, any outcome)."""
        row = self.conn.execute(
            "select count(*) from link_claims where platform = ? and user_id = ? and created >= ?",
            (platform, str(user_id), since),
        ).fetchone()
        return int(row[0])

    def pending_claims(self, limit: int = 50) -> list[LinkClaim]:
        rows = self.conn.execute(
            self._CLAIM_SQL + " where status = 'pending' order by id limit ?", (limit,)
        ).fetchall()
        return [LinkClaim(*r) for r in rows]

    def pending_claim_count(self) -> int:
        row = self.conn.execute(
            "select count(*) from link_claims where status = 'pending'"
        ).fetchone()
        return int(row[0])

    def settle_claim(self, claim_id: int, status: str, by: str) -> bool:
        """Mark a pending claim settled; False if it was not pending (settled twice)."""
        cur = self.conn.execute(
            "update link_claims set status = ?, settled = ?, settled_by = ? "
            "where id = ? and status = 'pending'",
            (status, now(), by, claim_id),
        )
        return cur.rowcount > 0

    def _withdraw_claims(self, platform: str, user_id: str, service: str) -> None:
        self.conn.execute(
            "update link_claims set status = 'withdrawn', settled = ?, settled_by = '' "
            "where platform = ? and user_id = ? and service = ? and status = 'pending'",
            (now(), platform, str(user_id), service),
        )

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, platform: str, chat_id: str, topic: str, filter: str | None = None) -> bool:
        """True if new; subscribing twice to the same (topic, filter) is a no-op."""
        cur = self.conn.execute(
            "insert or ignore into subscriptions (platform, chat_id, topic, filter, created) "
            "values (?, ?, ?, ?, ?)",
            (platform, str(chat_id), topic, filter or "", now()),
        )
        return cur.rowcount > 0

    def unsubscribe(
        self, platform: str, chat_id: str, topic: str, filter: str | None = None
    ) -> int:
        """Remove one (topic, filter), or every filter of the topic when ``filter`` is None."""
        if filter is None:
            cur = self.conn.execute(
                "delete from subscriptions where platform = ? and chat_id = ? and topic = ?",
                (platform, str(chat_id), topic),
            )
        else:
            cur = self.conn.execute(
                "delete from subscriptions where platform = ? and chat_id = ? and topic = ? "
                "and filter = ?",
                (platform, str(chat_id), topic, filter),
            )
        return cur.rowcount

    def subscriptions(
        self, topic: str | None = None, platform: str | None = None, chat_id: str | None = None
    ) -> list[Subscription]:
        sql = "select id, platform, chat_id, topic, filter from subscriptions where 1=1"
        args: list[Any] = []
        for col, val in (("topic", topic), ("platform", platform), ("chat_id", chat_id)):
            if val is not None:
                sql += f" and {col} = ?"
                args.append(str(val))
        rows = self.conn.execute(sql + " order by id", args).fetchall()
        return [Subscription(r[0], r[1], r[2], r[3], r[4] or None) for r in rows]

    # ------------------------------------------------------------------ audit

    def audit(
        self,
        platform: str,
        user_id: str,
        command: str,
        arguments: dict[str, Any],
        outcome: str,
    ) -> None:
        self.conn.execute(
            "insert into audit (time, platform, user_id, command, arguments, outcome) "
            "values (?, ?, ?, ?, ?, ?)",
            (now(), platform, str(user_id), command, json.dumps(arguments, default=str), outcome),
        )

    def audit_rows(self, limit: int = 50) -> list[dict[str, Any]]:
        return list(self.db["audit"].rows_where(order_by="id desc", limit=limit))

    # ------------------------------------------------------------------ ledger

    @staticmethod
    def new_transaction_id() -> str:
        return uuid.uuid4().hex

    def ledger_create(
        self,
        *,
        service: str,
        kind: str,
        platform: str,
        user_id: str,
        account: str,
        amount: int,
        message: str | None = None,
        transaction_id: str | None = None,
    ) -> LedgerEntry:
        """Write the row *before* anything is sent: the id it holds is the one every retry uses."""
        tid = transaction_id or self.new_transaction_id()
        t = now()
        self.conn.execute(
            "insert into ledger (transaction_id, service, kind, platform, user_id, account, "
            "amount, status, message, created, updated) "
            "values (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            (tid, service, kind, platform, str(user_id), account, amount, message, t, t),
        )
        entry = self.ledger_get(tid)
        assert entry is not None
        return entry

    def ledger_update(self, transaction_id: str, **fields: Any) -> LedgerEntry:
        allowed = {"status", "fee", "debit", "result", "message"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"ledger fields cannot be updated: {sorted(bad)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.conn.execute(
            f"update ledger set {sets}, updated = ? where transaction_id = ?",
            (*fields.values(), now(), transaction_id),
        )
        entry = self.ledger_get(transaction_id)
        if entry is None:
            raise KeyError(transaction_id)
        return entry

    def ledger_get(self, transaction_id: str) -> LedgerEntry | None:
        row = self.conn.execute(
            "select transaction_id, service, kind, platform, user_id, account, amount, status, "
            "fee, debit, result, message, created, updated from ledger where transaction_id = ?",
            (transaction_id,),
        ).fetchone()
        return None if row is None else LedgerEntry(*row)

    def ledger_entries(
        self,
        service: str | None = None,
        *,
        platform: str | None = None,
        user_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
    ) -> list[LedgerEntry]:
        sql = (
            "select transaction_id, service, kind, platform, user_id, account, amount, status, "
            "fee, debit, result, message, created, updated from ledger where 1=1"
        )
        args: list[Any] = []
        for col, val in (
            ("service", service),
            ("platform", platform),
            ("user_id", user_id),
            ("status", status),
        ):
            if val is not None:
                sql += f" and {col} = ?"
                args.append(str(val))
        sql += " order by created desc, rowid desc limit ?"
        args.append(limit)
        return [LedgerEntry(*r) for r in self.conn.execute(sql, args).fetchall()]


def random_token(n: int = 16) -> str:
    return secrets.token_urlsafe(n)
