"""Processes starting together on one new database (a cluster's first start).

Each real process opens the store, creates the key file and applies every migration set at
the same moment. Before the store waited its turn, about half of them died with "database
is locked" (putting the file in WAL mode, or creating the migrations table).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.store import KEY_ENV, Store

CHILD = r"""
import hashlib, sys, time
from bot.store import Store
from bot_migrations import chatwars, concertpos, core, deepbot, rooms

start = float(sys.argv[2])
while time.time() < start:
    pass
store = Store(sys.argv[1])
applied = store.migrate(
    [core.migrations, deepbot.migrations, chatwars.migrations, concertpos.migrations,
     rooms.migrations]
)
print(hashlib.sha256(store._key).hexdigest(), len(applied))
"""

PROCESSES = 6


@pytest.mark.parametrize("round_", range(3))
def test_processes_starting_at_once_all_start_and_agree(tmp_path: Path, round_: int) -> None:
    db = tmp_path / "bot.db"
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    start = time.time() + 1.5  # every interpreter is up and spinning when the clock strikes
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    failures = [
        err.strip().splitlines()[-1]
        for p, (_, err) in zip(procs, results, strict=True)
        if p.returncode
    ]
    assert failures == []

    keys = {out.split()[0] for out, _ in results}
    assert len(keys) == 1, "every process must use the one key file the first one made"
    applied = sum(int(out.split()[1]) for out, _ in results)

    store = Store(db)  # the key file beside the database is the key they agreed on
    rows = store.db.execute(
        "select migration_set, name, count(*) from _sqlite_migrations group by 1, 2"
    ).fetchall()
    assert rows and all(n == 1 for _, _, n in rows)
    assert applied == len(rows)  # each migration applied by exactly one of the processes
    assert not [p for p in tmp_path.iterdir() if ".key." in p.name]  # no spare key left
    store.close()
