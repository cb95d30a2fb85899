"""Tables of the rooms plugin. Append new migrations at the end; never edit one that has shipped.

``rooms_presence`` holds one row per chat user kept present in a performer's room, with the
chat they joined from, so that after a restart the plugin can resume or drop each presence and
tell the user where they asked. ``rooms_credits`` holds each chat user's credit balance, the
number sent as ``credits`` on joinRoom and pushed with updateCredits.
"""

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("rooms")


@migrations()
def m001_presence_and_credits(db: Database) -> None:
    db["rooms_presence"].create(
        {
            "performer_id": int,
            "owner": str,  # "<platform>:<user id>", the presence manager's key for the user
            "platform": str,
            "user_id": str,
            "chat_id": str,  # where the user joined: presence-lost notices go there
            "user_name": str,
            "nickname": str,  # as sent to joinRoom
            "display_nickname": str,  # as the API shows it (with _####)
            "customer_id": int,
            "registered": int,
            "credits": int,
            "joined_at": str,  # ISO 8601 with offset
        },
        pk=("performer_id", "owner"),
        not_null={"performer_id", "owner", "platform", "user_id", "chat_id", "nickname"},
    )
    db["rooms_presence"].create_index(["owner"])
    db["rooms_credits"].create(
        {"platform": str, "user_id": str, "credits": int, "updated": float},
        pk=("platform", "user_id"),
        not_null={"platform", "user_id", "credits"},
    )
