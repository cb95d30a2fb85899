"""The parcels plugin's table: every move it heard of, since ParcelTrack keeps no history."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("parcels")

HISTORY = "parcels_history"


@migrations()
def m001_history(db: Database) -> None:
    db[HISTORY].create(
        {"id": int, "parcel": str, "status": str, "place": str, "time": float},
        pk="id",
        not_null={"parcel", "status", "place", "time"},
    )
    db[HISTORY].create_index(["parcel", "time"])
