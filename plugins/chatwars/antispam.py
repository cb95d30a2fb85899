"""Requests that make the game message a player, limited and remembered across restarts.

Two of the API's actions make the ChatWars bot write to a player: authAdditionalOperation
("Do not spam with this request or sanctions will follow") and createAuthCode, which
``cw link <telegram id>`` sends for whatever Telegram id a chat user types. Both limits must
hold across a restart of the bot, or a crash loop (or an admin's reload) would let the same
player be messaged again at once; so what was asked is kept in the plugin's table
``chatwars_asks`` (``migrations/chatwars.py``), with wall-clock times.

The protocol client knows nothing about storage: it takes any :class:`OperationAsks`.
:class:`MemoryAsks` serves a client used on its own (tests, benchmarks), :class:`StoredAsks`
the running plugin.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .models import OperationRequest

if TYPE_CHECKING:
    from bot.store import Store

TABLE = "chatwars_asks"
OPERATION = "operation"
LINK = "link"
PENDING_LINK = "pending_link"


@dataclass(frozen=True, slots=True)
class Asked:
    """The game was (or may have been) asked at ``at`` (time.time); ``request`` is None
    when the request timed out and its server id is not known."""

    at: float
    request: OperationRequest | None


class OperationAsks(Protocol):
    """Where the client remembers which permission it asked each player for."""

    def get(self, user_id: int, operation: str) -> Asked | None: ...

    def put(self, user_id: int, operation: str, asked: Asked) -> None: ...

    def drop(self, user_id: int, operation: str) -> None: ...

    def drop_request(self, request_id: str) -> None: ...

    def of_user(self, user_id: int) -> list[Asked]: ...


class MemoryAsks:
    """In-process only: forgotten when the process ends."""

    def __init__(self) -> None:
        self._asked: dict[tuple[int, str], Asked] = {}

    def get(self, user_id: int, operation: str) -> Asked | None:
        return self._asked.get((user_id, operation))

    def put(self, user_id: int, operation: str, asked: Asked) -> None:
        self._asked[(user_id, operation)] = asked

    def drop(self, user_id: int, operation: str) -> None:
        self._asked.pop((user_id, operation), None)

    def drop_request(self, request_id: str) -> None:
        for key, asked in list(self._asked.items()):
            if asked.request is not None and asked.request.request_id == request_id:
                del self._asked[key]

    def of_user(self, user_id: int) -> list[Asked]:
        return [asked for (uid, _), asked in self._asked.items() if uid == user_id]


class StoredAsks:
    """Kept in the bot's database, so a restart does not reset the cool-down."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, user_id: int, operation: str) -> Asked | None:
        row = self.store.conn.execute(
            f"select at, request_id from {TABLE} where kind = ? and telegram_id = ? and "
            "operation = ? order by at desc limit 1",
            (OPERATION, user_id, operation),
        ).fetchone()
        return None if row is None else _asked(row[0], row[1], operation, user_id)

    def put(self, user_id: int, operation: str, asked: Asked) -> None:
        request_id = asked.request.request_id if asked.request is not None else ""
        with self.store.transaction() as conn:
            conn.execute(
                f"delete from {TABLE} where kind = ? and telegram_id = ? and operation = ?",
                (OPERATION, user_id, operation),
            )
            conn.execute(
                f"insert into {TABLE} (kind, telegram_id, operation, request_id, at) "
                "values (?, ?, ?, ?, ?)",
                (OPERATION, user_id, operation, request_id, asked.at),
            )

    def drop(self, user_id: int, operation: str) -> None:
        self.store.conn.execute(
            f"delete from {TABLE} where kind = ? and telegram_id = ? and operation = ?",
            (OPERATION, user_id, operation),
        )

    def drop_request(self, request_id: str) -> None:
        if request_id:
            self.store.conn.execute(
                f"delete from {TABLE} where kind = ? and request_id = ?", (OPERATION, request_id)
            )

    def of_user(self, user_id: int) -> list[Asked]:
        rows = self.store.conn.execute(
            f"select at, request_id, operation from {TABLE} where kind = ? and telegram_id = ?",
            (OPERATION, user_id),
        ).fetchall()
        return [_asked(at, rid, operation, user_id) for at, rid, operation in rows]


def _asked(at: float, request_id: str | None, operation: str, user_id: int) -> Asked:
    request = OperationRequest(request_id, operation, user_id) if request_id else None
    return Asked(float(at), request)


class LinkLimit:
    """At most ``per_player`` link codes to one Telegram id per ``window`` seconds, stored.

    Counted per *target* player, not per chat user: several chat users (or one on several
    platforms) typing the same id must not make the game message that player repeatedly.
    """

    def __init__(
        self,
        store: Store,
        *,
        per_player: int,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.per_player = per_player
        self.window = window
        self._clock = clock

    def wait_before(self, telegram_id: int) -> float:
        """Seconds until a code may be sent to this player again (0: now)."""
        now = self._clock()
        rows = self.store.conn.execute(
            f"select at from {TABLE} where kind = ? and telegram_id = ? and at > ? order by at",
            (LINK, telegram_id, now - self.window),
        ).fetchall()
        if len(rows) < self.per_player:
            return 0.0
        oldest = float(rows[len(rows) - self.per_player][0])
        return max(1.0, oldest + self.window - now)

    def record(self, telegram_id: int) -> None:
        """Count one code sent (or maybe sent) to this player; old rows are pruned."""
        now = self._clock()
        with self.store.transaction() as conn:
            conn.execute(
                f"delete from {TABLE} where kind = ? and at <= ?", (LINK, now - self.window)
            )
            conn.execute(
                f"insert into {TABLE} (kind, telegram_id, operation, request_id, at) "
                "values (?, ?, '', '', ?)",
                (LINK, telegram_id, now),
            )


@dataclass(frozen=True, slots=True)
class PendingLink:
    telegram_id: int
    at: float


class PendingLinks:
    """Chat users waiting to send the link code the game sent them, stored.

    After a restart the code the player already got must still finish linking: the per-player
    limit may keep the game from sending another one for a while.
    """

    def __init__(self, store: Store, *, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock

    def remember(self, platform: str, user_id: str, telegram_id: int) -> None:
        now = self._clock()
        with self.store.transaction() as conn:
            conn.execute(
                f"delete from {TABLE} where kind = ? and (at <= ? or (platform = ? and "
                "user_id = ?))",
                (PENDING_LINK, now - self.ttl, platform, str(user_id)),
            )
            conn.execute(
                f"insert into {TABLE} (kind, telegram_id, operation, request_id, platform, "
                "user_id, at) values (?, ?, '', '', ?, ?, ?)",
                (PENDING_LINK, telegram_id, platform, str(user_id), now),
            )

    def get(self, platform: str, user_id: str) -> PendingLink | None:
        row = self.store.conn.execute(
            f"select telegram_id, at from {TABLE} where kind = ? and platform = ? and "
            "user_id = ? and at > ?",
            (PENDING_LINK, platform, str(user_id), self._clock() - self.ttl),
        ).fetchone()
        return None if row is None else PendingLink(int(row[0]), float(row[1]))

    def forget(self, platform: str, user_id: str) -> None:
        self.store.conn.execute(
            f"delete from {TABLE} where kind = ? and platform = ? and user_id = ?",
            (PENDING_LINK, platform, str(user_id)),
        )
