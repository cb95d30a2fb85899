"""Tables of the concertpos plugin. Append new migrations at the end; never edit one that
has shipped.

``concertpos_chat_pos`` holds the point of sale a chat sells at when an admin picked one
with ``pos list <id>``; a chat without a row uses the configured ``pos_id``.
"""

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("concertpos")


@migrations()
def m001_chat_pos(db: Database) -> None:
    db["concertpos_chat_pos"].create(
        {"platform": str, "chat_id": str, "pos_id": int, "updated": float},
        pk=("platform", "chat_id"),
        not_null={"platform", "chat_id", "pos_id"},
    )
