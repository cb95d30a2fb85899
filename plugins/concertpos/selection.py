"""Which point of sale a chat sells at: the one an admin picked there, else ``pos_id``.

Kept in the plugin's own table (``concertpos_chat_pos``, see ``migrations/concertpos.py``)
so a pick survives restarts, and apart from the commands so every command reads it the
same way.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.store import Store

TABLE = "concertpos_chat_pos"


def chat_pos(store: Store, platform: str, chat_id: str, *, default: int) -> int:
    """The point of sale picked for this chat, or ``default``."""
    row = store.conn.execute(
        f"select pos_id from {TABLE} where platform = ? and chat_id = ?", (platform, chat_id)
    ).fetchone()
    return default if row is None else int(row[0])


def set_chat_pos(store: Store, platform: str, chat_id: str, pos_id: int) -> None:
    with store.transaction() as conn:
        conn.execute(
            f"insert into {TABLE} (platform, chat_id, pos_id, updated) values (?, ?, ?, ?) "
            "on conflict(platform, chat_id) do update set pos_id = excluded.pos_id, "
            "updated = excluded.updated",
            (platform, chat_id, pos_id, time.time()),
        )


def forget_chat_pos(store: Store, platform: str, chat_id: str) -> None:
    with store.transaction() as conn:
        conn.execute(f"delete from {TABLE} where platform = ? and chat_id = ?", (platform, chat_id))
