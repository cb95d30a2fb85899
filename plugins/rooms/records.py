"""The plugin's rows in the bot's store: presences (for restarts) and credit balances.

Plain SQL on the store's connection, one statement per call: the store runs inline on the event
loop and never awaits inside a write, so concurrent commands cannot interleave half a change.
The tables are created by ``bot_migrations.rooms``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import RoomsInvalidRequest
from .presence import Presence

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger(__name__)

_PRESENCE_COLUMNS = (
    "performer_id",
    "owner",
    "platform",
    "user_id",
    "chat_id",
    "user_name",
    "nickname",
    "display_nickname",
    "customer_id",
    "registered",
    "credits",
    "joined_at",
)


@dataclass(frozen=True, slots=True)
class ChatUser:
    """A chat user as the plugin needs them: who, under what name, and in which chat."""

    platform: str
    user_id: str
    name: str
    chat_id: str

    @property
    def owner(self) -> str:
        """The presence manager's key for this user; unique across platforms."""
        return owner_of(self.platform, self.user_id)


def owner_of(platform: str, user_id: str) -> str:
    return f"{platform}:{user_id}"


@dataclass(frozen=True, slots=True)
class StoredPresence:
    """A presence row: the presence itself plus the chat it belongs to."""

    presence: Presence
    user: ChatUser


class RoomsRecords:
    """Reads and writes ``rooms_presence`` and ``rooms_credits``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- presences -----------------------------------------------------------------------

    def save_presence(self, presence: Presence, user: ChatUser) -> None:
        """Insert or replace the row for (performer, user)."""
        record = presence.to_record()
        row = {
            **record,
            "platform": user.platform,
            "user_id": user.user_id,
            "chat_id": user.chat_id,
            "user_name": user.name,
            "registered": int(presence.registered),
        }
        self.store.conn.execute(
            f"insert or replace into rooms_presence ({', '.join(_PRESENCE_COLUMNS)}) "
            f"values ({', '.join('?' for _ in _PRESENCE_COLUMNS)})",
            [row[c] for c in _PRESENCE_COLUMNS],
        )

    def update_presence_credits(self, owner: str, credits: int) -> None:
        self.store.conn.execute(
            "update rooms_presence set credits = ? where owner = ?", (credits, owner)
        )

    def delete_presence(self, performer_id: int, owner: str) -> bool:
        cur = self.store.conn.execute(
            "delete from rooms_presence where performer_id = ? and owner = ?",
            (performer_id, owner),
        )
        return cur.rowcount > 0

    def get_presence(self, performer_id: int, owner: str) -> StoredPresence | None:
        row = self.store.conn.execute(
            f"select {', '.join(_PRESENCE_COLUMNS)} from rooms_presence "
            "where performer_id = ? and owner = ?",
            (performer_id, owner),
        ).fetchone()
        if row is None:
            return None
        return _stored(dict(zip(_PRESENCE_COLUMNS, row, strict=True)))

    def stored_presences(self) -> tuple[list[StoredPresence], list[dict[str, Any]]]:
        """Every row as a presence, plus the rows too damaged to rebuild one from."""
        rows = self.store.conn.execute(
            f"select {', '.join(_PRESENCE_COLUMNS)} from rooms_presence order by joined_at"
        ).fetchall()
        good: list[StoredPresence] = []
        damaged: list[dict[str, Any]] = []
        for raw in rows:
            row = dict(zip(_PRESENCE_COLUMNS, raw, strict=True))
            try:
                good.append(_stored(row))
            except RoomsInvalidRequest as exc:
                log.warning("rooms: dropping a damaged presence row: %s", exc.message)
                damaged.append(row)
        return good, damaged

    def delete_row(self, row: dict[str, Any]) -> None:
        """Delete a row by its raw key (used for damaged rows)."""
        self.store.conn.execute(
            "delete from rooms_presence where performer_id is ? and owner is ?",
            (row.get("performer_id"), row.get("owner")),
        )

    # -- credits -------------------------------------------------------------------------

    def balance(self, platform: str, user_id: str) -> int:
        """A chat user's credits; 0 for someone never given any."""
        row = self.store.conn.execute(
            "select credits from rooms_credits where platform = ? and user_id = ?",
            (platform, str(user_id)),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def set_balance(self, platform: str, user_id: str, credits: int) -> None:
        self.store.conn.execute(
            "insert into rooms_credits (platform, user_id, credits, updated) values (?, ?, ?, ?) "
            "on conflict(platform, user_id) do update set credits = excluded.credits, "
            "updated = excluded.updated",
            (platform, str(user_id), credits, time.time()),
        )


def _stored(row: dict[str, Any]) -> StoredPresence:
    """Rebuild a stored presence; a damaged row raises RoomsInvalidRequest."""
    presence = Presence.from_record(row)
    platform, user_id, chat_id = row.get("platform"), row.get("user_id"), row.get("chat_id")
    if not (platform and user_id and chat_id) or presence.owner != owner_of(platform, user_id):
        raise RoomsInvalidRequest("A stored presence names no chat or a different user.")
    user = ChatUser(str(platform), str(user_id), str(row.get("user_name") or user_id), str(chat_id))
    return StoredPresence(presence, user)
