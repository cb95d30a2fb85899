"""The DeepBot plugin's tables. Append new migrations at the end; never edit a shipped one."""

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("deepbot")


@migrations()
def m001_gives(db: Database) -> None:
    """One row per ``give``, written before anything is sent to DeepBot.

    Points move through three DeepBot calls; when one of them goes unanswered the row (and
    its id, quoted to the user and to admins) is what lets an admin settle the held escrow.
    ``amount`` is decimal text: DeepBot points have decimals and must not become floats.
    """
    db["deepbot_gives"].create(
        {
            "id": str,
            "platform": str,
            "user_id": str,
            "giver": str,
            "receiver": str,
            "amount": str,
            "status": str,  # pending, done, refused, refunded, failed, incomplete
            "message": str,
            "created": float,
            "updated": float,
        },
        pk="id",
        not_null={"platform", "user_id", "giver", "receiver", "amount", "status"},
    )
    db["deepbot_gives"].create_index(["status"])
    db["deepbot_gives"].create_index(["platform", "user_id"])


@migrations()
def m002_give_steps(db: Database) -> None:
    """Gives move points with ``del_points`` then ``add_points`` (never escrow, which DeepBot
    commits or cancels whole, its own features' holds included). ``balance_before`` is the
    balance, read just before the step in flight, of the viewer that step changes: comparing
    it with the balance afterwards is how an unanswered step is settled."""
    db["deepbot_gives"].add_column("balance_before", str)
    db["deepbot_gives"].create_index(["giver"])
