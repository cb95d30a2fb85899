"""Who is in the cluster: each process's heartbeat row in the shared database.

The database is the one place every process of a one-host cluster already shares, and
``status`` reads it from whichever worker answers. A process silent for three heartbeats is
taken for dead; rows older than an hour are removed.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store import Store


@dataclass(frozen=True)
class Member:
    id: str
    role: str
    host: str
    pid: int
    started: float
    seen: float
    owns: tuple[str, ...]
    #: plugin -> (state, reason) of the plugins this process owns
    health: dict[str, tuple[str, str]]


class Members:
    def __init__(self, store: Store, process_id: str, role: str, heartbeat: float) -> None:
        self.store = store
        self.id = process_id
        self.role = role
        self.heartbeat = heartbeat
        self.started = time.time()
        self._cache: tuple[float, list[Member]] = (0.0, [])
        #: ids waiting for this loop turn's write, and the future that write settles
        self._marks: tuple[list[tuple[str, float]], asyncio.Future[None]] | None = None

    def beat(self, owns: list[str], health: dict[str, tuple[str, str]] | None = None) -> None:
        now = time.time()
        with self.store.transaction() as conn:
            conn.execute(
                "insert into cluster_members (id, role, host, pid, started, seen, owns) "
                "values (?, ?, ?, ?, ?, ?, ?) on conflict(id) do update set "
                "seen = excluded.seen, owns = excluded.owns",
                (
                    self.id,
                    self.role,
                    socket.gethostname(),
                    os.getpid(),
                    self.started,
                    now,
                    json.dumps({"owns": owns, "health": health or {}}),
                ),
            )
            conn.execute("delete from cluster_members where seen < ?", (now - 3600,))
            conn.execute("delete from cluster_commands where finished < ?", (now - 3600,))

    def leave(self) -> None:
        with self.store.transaction() as conn:
            conn.execute("delete from cluster_members where id = ?", (self.id,))

    def alive(self, *, fresh: bool = False) -> list[Member]:
        """The live processes (read at most twice a heartbeat unless ``fresh``)."""
        now = time.time()
        if not fresh and now - self._cache[0] < self.heartbeat / 2:
            return self._cache[1]
        rows = self.store.db.execute(
            "select id, role, host, pid, started, seen, owns from cluster_members "
            "where seen >= ? order by role, started",
            (now - 3 * self.heartbeat,),
        ).fetchall()
        members = []
        for r in rows:
            try:
                held = json.loads(r[6] or "{}")
                owns = tuple(str(x) for x in held.get("owns", []))
                health = {str(k): (str(v[0]), str(v[1])) for k, v in held["health"].items()}
            except (ValueError, AttributeError, KeyError, TypeError, IndexError):
                owns, health = (), {}
            members.append(Member(r[0], r[1], r[2], int(r[3]), r[4], r[5], owns, health))
        self._cache = (now, members)
        return members

    def owner_of(self, plugin: str) -> Member | None:
        """The live process that owns ``plugin``, by its heartbeat (an owner reports the
        health of each plugin it owns), or None."""
        for member in self.alive():
            if plugin in member.health:
                return member
        return None

    def plugin_health(self, plugin: str) -> tuple[str, str] | None:
        """How the plugin's owner last said it was, or None when no live process owns it."""
        owner = self.owner_of(plugin)
        return None if owner is None else owner.health[plugin]

    def lines(self, name: str) -> list[str]:
        """``status``'s account of the cluster: one line per live process."""
        members = self.alive(fresh=True)
        out = [f"cluster {name}: {len(members)} processes"]
        now = time.time()
        for m in members:
            owns = ", ".join(m.owns) or "nothing"
            here = " (this one)" if m.id == self.id else ""
            out.append(
                f"  {m.role} {m.host} pid {m.pid}{here}: up {now - m.started:.0f} s, owns {owns}"
            )
        return out

    def workers(self) -> list[Member]:
        return [m for m in self.alive() if m.role in ("worker", "all")]

    def gateways_running(self, platform: str) -> bool:
        return any(
            m.role in ("gateway", "all") and f"transport {platform}" in m.owns
            for m in self.alive(fresh=True)
        )

    # ------------------------------------------------------------------ answered commands

    def answered(self, command_id: str) -> bool:
        row = self.store.db.execute(
            "select 1 from cluster_commands where id = ?", (command_id,)
        ).fetchone()
        return row is not None

    async def mark_answered(self, command_id: str) -> None:
        """Record ``command_id`` as answered, durably, before the caller acknowledges it.

        The ids marked in one event-loop turn share one write transaction: a worker that
        finishes a burst of commands together paid a commit for each (a tenth of its time
        per command in a profile at 800 commands/s). Raises what the write raised.
        """
        marks = self._marks
        if marks is None:
            loop = asyncio.get_running_loop()
            marks = self._marks = ([], loop.create_future())
            loop.call_soon(self._write_marks)
        marks[0].append((command_id, time.time()))
        # Shielded: one caller cancelled must not cancel the write the others wait for.
        await asyncio.shield(marks[1])

    def _write_marks(self) -> None:
        assert self._marks is not None
        rows, written = self._marks
        self._marks = None
        try:
            with self.store.transaction() as conn:
                conn.executemany(
                    "insert or ignore into cluster_commands (id, finished) values (?, ?)", rows
                )
        except Exception as exc:
            written.set_exception(exc)
            written.exception()  # retrieved here too: its waiters may all have gone
        else:
            written.set_result(None)
