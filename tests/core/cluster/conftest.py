"""A cluster of real processes for the tests: workers and console gateways on a real broker.

Each test gets its own cluster name (so its queues are its own) and database; the broker is
the session's. Processes are started with the installed ``bot`` command, as an operator
would, and killed with SIGKILL where a test says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

PROBE_DIR = Path(__file__).resolve().parent / "probe_plugins"
BOT = str(Path(sys.executable).with_name("bot"))


class LoopThread:
    """A server of the test (a simulator, a fake platform) on its own event loop in a thread,
    so the test's blocking waits on processes never stall it; ``read`` runs a function on
    that loop (their state is only safe to touch there)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(server.start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(20):
            raise RuntimeError(f"{type(server).__name__} did not start")

    def read(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def call(self, coro: Any, timeout: float = 40) -> Any:
        """Run a coroutine of the server (an injection, a wait) on its loop; its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Stream:
    """A console gateway fed line by line, its output collected as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def send(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines))
        self.proc.stdin.flush()

    def wait_for(self, count: int, timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.lines)

    def close(self, timeout: float = 60) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc


class Cluster:
    def __init__(self, root: Path, url: str, plugins: dict[str, Any], **cluster: Any) -> None:
        self.root = root
        self.name = f"t{uuid.uuid4().hex[:8]}"
        self.database = root / "bot.db"
        self.config = root / "bot.yaml"
        self.procs: list[subprocess.Popen[str]] = []
        settings = {
            "bot": {
                "name": "clusterbot",
                "database": str(self.database),
                "plugin_dirs": [str(PROBE_DIR)],
                "alert_window": 0.05,
                "cluster": {"amqp_url": url, "name": self.name, "heartbeat": 0.5, **cluster},
            },
            "transports": {"console": {"enabled": True}},
            "plugins": plugins,
        }
        self.config.write_text(yaml.safe_dump(settings))
        self._n = 0

    def _spawn(self, role: str, extra: list[str] | None = None, **kw: Any) -> subprocess.Popen[str]:
        self._n += 1
        log = open(self.root / f"{role}{self._n}.log", "w")  # the child keeps it
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [BOT, "--log-level", "info", "run", "--config", str(self.config), "--role", role]
            + (extra or []),
            stderr=log,
            text=True,
            env=env,
            start_new_session=True,
            **kw,
        )
        self.procs.append(proc)
        return proc

    def worker(self) -> subprocess.Popen[str]:
        return self._spawn("worker", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def gateway(self, lines: list[str], timeout: float = 90) -> list[str]:
        """A console gateway in pipe mode: every line in, every reply out, exit 0."""
        proc = self._spawn("gateway", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        out, _ = proc.communicate("".join(f"{line}\n" for line in lines), timeout=timeout)
        assert proc.returncode == 0, self.logs()
        return out.splitlines()

    def gateway_process(self, *args: str) -> subprocess.Popen[str]:
        """A gateway that runs until killed (Discord or Telegram, no console input)."""
        return self._spawn(
            "gateway", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, extra=list(args)
        )

    def stream(self) -> Stream:
        return Stream(self._spawn("gateway", stdin=subprocess.PIPE, stdout=subprocess.PIPE))

    @staticmethod
    def kill(proc: subprocess.Popen[str]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    # ------------------------------------------------------------------ what the cluster says

    def members(self) -> list[dict[str, Any]]:
        if not self.database.exists():
            return []
        conn = sqlite3.connect(self.database, timeout=30)
        try:
            rows = conn.execute(
                "select role, pid, owns from cluster_members where seen > ?", (time.time() - 2,)
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()
        return [{"role": r, "pid": p, **json.loads(o)} for r, p, o in rows]

    def owner_of(self, what: str) -> int | None:
        for m in self.members():
            if what in m["owns"]:
                return int(m["pid"])
        return None

    def partitions_of(self, pid: int) -> str:
        for m in self.members():
            if m["pid"] == pid:
                return next((o for o in m["owns"] if o.startswith("partitions ")), "")
        return ""

    def wait(self, condition: Any, timeout: float = 30, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what or condition}\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for path in sorted(self.root.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text()[-3000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def make_cluster(rabbitmq_broker: Any, tmp_path: Path) -> Iterator[Any]:
    made: list[Cluster] = []

    def make(plugins: dict[str, Any] | None = None, **cluster: Any) -> Cluster:
        c = Cluster(tmp_path, str(rabbitmq_broker.url), plugins or {"probe": {}}, **cluster)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
