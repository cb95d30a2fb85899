"""The ChatWars plugin's tables. Append new migrations at the end; never edit a shipped one."""

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("chatwars")


@migrations()
def m001_antispam(db: Database) -> None:
    """Requests the game turns into a message to a player, remembered across restarts.

    The API document says of authAdditionalOperation "Do not spam with this request or
    sanctions will follow", and createAuthCode (``cw link <telegram id>``) makes the game
    message whichever player a chat user names. A cool-down kept in memory forgets both at
    every restart; these rows do not. ``kind`` is ``operation`` (``operation`` names it,
    ``request_id`` is the server's id to complete it with, empty while unknown), ``link`` (a
    code sent to ``telegram_id``) or ``pending_link`` (the chat user ``platform``/``user_id``
    waits to send that code: it must still work after a restart, since the limit may keep a
    new one from being sent). ``at`` is wall-clock seconds (time.time), as a restart resets
    monotonic clocks.
    """
    db["chatwars_asks"].create(
        {
            "id": int,
            "kind": str,
            "telegram_id": int,
            "operation": str,
            "request_id": str,
            "platform": str,
            "user_id": str,
            "at": float,
        },
        pk="id",
        not_null={"kind", "telegram_id", "at"},
    )
    db["chatwars_asks"].create_index(["kind", "telegram_id", "operation"])
    db["chatwars_asks"].create_index(["kind", "platform", "user_id"])


@migrations()
def m002_payout_retries(db: Database) -> None:
    """Payouts an admin sent again (``cw retry``) with their own transactionId.

    Replies name only the player, so a late refusal cannot be told apart from the answer to
    an earlier try that may have gone through. Once a payout was retried, no refusal marks it
    failed; this row is what says so, also after a restart.
    """
    db["chatwars_payout_retries"].create(
        {"transaction_id": str, "tries": int, "at": float}, pk="transaction_id"
    )
