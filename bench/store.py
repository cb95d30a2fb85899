"""Benchmark: the store. `python bench/store.py [--rounds 5]`

1. Link lookups with 100,000 links: p50/p99 of ``Store.get_link`` (decrypting the token), and
   of the same lookup without a token; floor: the bare prepared SELECT on the same file.
2. 100 concurrent tasks writing links, subscriptions and audit rows: zero "database is
   locked", rows/s; floor: the same rows inserted with bare sqlite3 in one loop.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import Report, arguments, pct, per_second, us

from bot.store import Store
from bot_migrations.core import migrations

N_LINKS = 100_000
LOOKUPS = 20_000


def build(path: Path) -> Store:
    store = Store(path, key=b"x" * 43 + b"=")
    store.migrate([migrations])
    enc = store.encrypt("token-value")
    t = time.time()
    with store.transaction() as conn:
        conn.executemany(
            "insert into links (platform, user_id, service, account, token, data, created, "
            "updated) values (?, ?, ?, ?, ?, null, ?, ?)",
            (
                ("discord", str(i), "deepbot", f"viewer{i}", enc if i % 2 else None, t, t)
                for i in range(N_LINKS)
            ),
        )
    return store


def bench_lookups(store: Store, path: Path, report: Report) -> None:
    ids = [str(random.randrange(N_LINKS)) for _ in range(LOOKUPS)]
    bare = sqlite3.connect(str(path))
    sql = Store._LINK_SQL
    floor: list[float] = []
    for uid in ids:
        t0 = time.perf_counter()
        bare.execute(sql, ("discord", uid, "deepbot")).fetchone()
        floor.append(time.perf_counter() - t0)
    bare.close()
    plain: list[float] = []
    with_token: list[float] = []
    for uid in ids:
        t0 = time.perf_counter()
        link = store.get_link("discord", uid, "deepbot")
        has_token = link is not None and link.token is not None  # decrypts when present
        dt = time.perf_counter() - t0
        (with_token if has_token else plain).append(dt)
    for label, samples in (("get_link", plain), ("get_link + decrypt token", with_token)):
        for p in (50, 99):
            report.figure(f"{label} p{p}", us, floor_label="bare prepared SELECT").add(
                pct(samples, p), pct(floor, p)
            )


async def bench_writes(store: Store, path: Path, report: Report, round_no: int) -> None:
    tasks, per_task = 100, 30
    locked = 0

    async def writer(i: int) -> None:
        nonlocal locked
        for j in range(per_task):
            try:
                store.set_link("telegram", f"w{i}", "chatwars", f"hero{i}-{j}", token=f"t{j}")
                store.subscribe("telegram", f"c{i}", "chatwars.deals", f"item{j}")
                store.audit("telegram", f"w{i}", "cw payout", {"j": j}, "ok")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc):
                    locked += 1
                else:
                    raise
            await asyncio.sleep(0)

    rows = tasks * per_task * 3
    bare = sqlite3.connect(str(path.with_name(f"floor{round_no}.db")), isolation_level=None)
    bare.execute("PRAGMA journal_mode=WAL")
    bare.execute("PRAGMA synchronous=NORMAL")
    bare.execute("create table l (a, b, c, d, e, primary key (a, b, c))")
    bare.execute("create table s (a, b, c, d, unique (a, b, c, d))")
    bare.execute("create table au (a, b, c, d, e)")
    t0 = time.perf_counter()
    for i in range(tasks):
        for j in range(per_task):
            bare.execute(
                "insert or replace into l values (?, ?, ?, ?, ?)",
                ("telegram", f"w{i}", "chatwars", f"hero{j}", f"t{j}"),
            )
            bare.execute(
                "insert or ignore into s values (?, ?, ?, ?)",
                ("telegram", f"c{i}", "chatwars.deals", f"item{j}"),
            )
            bare.execute(
                "insert into au values (?, ?, ?, ?, ?)",
                ("telegram", f"w{i}", "cw payout", "{}", "ok"),
            )
    floor = time.perf_counter() - t0
    bare.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(tasks)))
    elapsed = time.perf_counter() - t0
    report.figure(
        "100 concurrent writers: rows/s", per_second, floor_label="bare inserts, no encryption"
    ).add(rows / elapsed, rows / floor)
    report.check('"database is locked" errors', locked, locked == 0)


def main() -> None:
    args = arguments(__doc__).parse_args()
    report = Report(f"store: {N_LINKS:,} links, {LOOKUPS:,} random lookups a round", args)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.db"
        t0 = time.perf_counter()
        store = build(path)
        report.note(f"built {N_LINKS:,} links in {time.perf_counter() - t0:.1f} s")
        for round_no in range(args.rounds):
            bench_lookups(store, path, report)
            asyncio.run(bench_writes(store, path, report, round_no))
        store.close()
    report.note("writes: 100 tasks x 30 x (link + subscription + audit) a round")
    report.finish()


if __name__ == "__main__":
    main()
