"""Benchmark: the cluster on RabbitMQ. `python bench/cluster.py [--rounds 5] [--commands 2000]`

Real worker processes (``bot run --role worker``) on a private broker, driven by a gateway
written here with aio-pika that publishes envelopes exactly as ``bot.cluster.gateway`` does,
so it can speak for 100 chats at once and time every command from publish to its end.

- **Capacity-bound scaling** (2 workers against 1, in the same round): 1,600
  ``!probe slow 50`` (a 50 ms API call) over 400 chats, ``bot.cluster.concurrency: 16`` per
  worker, the plugin on every worker. Target >= 1.8x, over the whole run. Beside it, the
  same runs' steady state (answers between the 10th and 90th percent), without the start
  and the end that more workers do not shorten.
- **Added latency at half load**: 8 chats in a closed loop of ``!probe slow 50`` through one
  worker, against the same in one process (dispatch and the plugin in this process). Targets:
  p50 <= +5 ms, p99 <= +25 ms.
- **Workers killed** (once, after the rounds): ``--commands`` ``!probe seq N`` over 100 chats
  with the plugin on one owner, ``kill -9`` of a worker at 30 % and of another at 60 %
  (each replaced). Checks: 0 lost, 0 shown twice, 0 out of order per chat; the longest pause
  in answers after a kill is reported.
- **Payouts while workers are killed** (once): 200 confirmed ``cw payout`` from 20 admins
  against the ChatWars simulator, two workers killed: none paid twice at the game, every
  command answered, the rows left in doubt settled by ``cw retry``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from _common import REPO, Report, arguments, ms, pct, rabbitmq_support

from bot.cluster.broker import Names, publish
from bot.cluster.envelope import (
    ASKED,
    CONFIRM,
    CONFIRMED,
    DONE,
    REPLY,
    encode_event,
    encode_message,
    partition_of,
)
from bot.messages import CollectingResponder, Message

PROBE = REPO / "tests" / "core" / "cluster" / "probe_plugins"
BOT = str(Path(sys.executable).with_name("bot"))
PARTITIONS = 16


def write_config(root: Path, url: str, name: str, run_on: str, **cluster: Any) -> Path:
    path = root / f"{name}.yaml"
    settings = {
        "bot": {
            "database": str(root / f"{name}.db"),
            "plugin_dirs": [str(PROBE)],
            "cluster": {"amqp_url": url, "name": name, "heartbeat": 0.5, **cluster},
        },
        "transports": {"console": {"enabled": True}},
        "plugins": {"probe": {"run_on": run_on}},
    }
    path.write_text(yaml.safe_dump(settings))
    return path


class Workers:
    def __init__(self, config: Path, root: Path) -> None:
        self.config, self.root, self.procs = config, root, []

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.root / f"w{len(self.procs)}.log", "wb")  # the child keeps it
        proc = subprocess.Popen(
            [BOT, "run", "--config", str(self.config), "--role", "worker"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


class Driver:
    """A gateway for many chats: publishes commands, collects replies and ends."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.names = url, Names(name, PARTITIONS)
        self.inbox = f"{name}.inbox.bench-{uuid.uuid4().hex[:6]}"
        self.sent: dict[str, float] = {}
        self.done: dict[str, float] = {}
        self.replies: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.raw_duplicates = 0
        self._seen: set[tuple[str, int]] = set()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        #: command id -> set when the command asks its sender a question
        self.asked: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        import aio_pika

        self.conn = await aio_pika.connect(self.url)
        self.channel = await self.conn.channel()
        for p in range(PARTITIONS):
            await self.channel.declare_queue(
                self.names.ingress(p),
                durable=True,
                arguments={"x-single-active-consumer": True},
            )
        queue = await self.channel.declare_queue(self.inbox, exclusive=True, auto_delete=True)
        await queue.consume(self._event, no_ack=True)

    async def _event(self, msg: Any) -> None:
        event = json.loads(msg.body)
        for one in event["events"] if event["kind"] == "batch" else [event]:
            self._one(one)

    def _one(self, event: dict[str, Any]) -> None:
        cid = event["id"]
        if event["kind"] == REPLY:
            key = (cid, int(event["seq"]))
            if key in self._seen:
                self.raw_duplicates += 1  # a rerun's reply, suppressed as the gateway does
                return
            self._seen.add(key)
            self.replies[cid].append((int(event["seq"]), event["text"]))
        elif event["kind"] == CONFIRM:
            # A console has no buttons: answer None, and the command asks in text (ASKED),
            # which the admins below answer with a "yes" line, as the console gateway does.
            body = encode_event(CONFIRMED, cid, token=str(event.get("token", "")), answer=None)
            reply = publish(self.channel, str(event.get("inbox", "")), body)
            task = asyncio.get_running_loop().create_task(reply)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif event["kind"] == ASKED:
            asked = self.asked.get(cid)
            if asked is not None and not asked.done():
                asked.set_result(None)
        elif event["kind"] == DONE and cid not in self.done:
            self.done[cid] = time.perf_counter()
            waiter = self._waiters.pop(cid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def send(self, chat: str, text: str, user: str = "") -> str:
        import aio_pika

        cid = f"bench:{uuid.uuid4().hex}"
        user = user or f"u{chat}"
        message = Message("console", chat, user, user, text, None, id=cid)  # type: ignore[arg-type]
        self._waiters[cid] = asyncio.get_running_loop().create_future()
        self.asked[cid] = asyncio.get_running_loop().create_future()
        self.sent[cid] = time.perf_counter()
        queue = self.names.ingress(partition_of("console", chat, PARTITIONS))
        await self.channel.default_exchange.publish(
            aio_pika.Message(encode_message(message, self.inbox)), routing_key=queue
        )
        return cid

    async def call(self, chat: str, text: str) -> float:
        cid = await self.send(chat, text)
        await self._waiters[cid]
        return self.done[cid] - self.sent[cid]

    async def close(self) -> None:
        await self.conn.close()


async def wait_ready(driver: Driver, chats: int = 4) -> None:
    """Until workers answer (a worker's start-up is not part of any figure)."""
    for _ in range(600):
        try:
            await asyncio.wait_for(
                asyncio.gather(*(driver.call(f"w{i}", "!ping") for i in range(chats))), 1
            )
            return
        except TimeoutError:
            continue


def partition_count(owns: str) -> int:
    """How many partitions a member's heartbeat says it holds ("partitions 0-7,9")."""
    for item in json.loads(owns).get("owns", []):
        if item.startswith("partitions "):
            total = 0
            for part in item.split()[1].split(","):
                a, _, b = part.partition("-")
                total += int(b or a) - int(a) + 1
            return total
    return 0


async def wait_members(db: Path, workers: int, procs: Workers | None = None) -> None:
    """Until ``workers`` workers hold a fair share of the partitions each.

    A figure measured with fewer workers than it says would be a lie: a worker that died on
    start-up, or a cluster that never balanced, stops the benchmark instead.
    """
    import sqlite3

    for _ in range(300):
        dead = [p for p in (procs.procs if procs else []) if p.poll() is not None]
        if dead:
            raise RuntimeError(
                f"{len(dead)} worker(s) exited during start-up (exit {dead[0].returncode}); "
                f"see the w*.log files under {db.parent}"
            )
        if db.exists():  # noqa: ASYNC240 - a benchmark's set-up, not its measured part
            conn = sqlite3.connect(db)
            try:
                rows = conn.execute(
                    "select owns from cluster_members where seen > ?", (time.time() - 1.5,)
                ).fetchall()
            except sqlite3.OperationalError:
                rows = []
            conn.close()
            counts = [partition_count(o) for (o,) in rows]
            if len([n for n in counts if n]) >= workers and max(counts) <= -(-16 // workers):
                return  # balanced: nobody holds more than a fair share
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{workers} worker(s) did not share the partitions within 30 s")


async def throughput(
    url: str, root: Path, workers: int, commands: int = 1600, chats: int = 400
) -> tuple[float, float]:
    """Commands/s when the API call (50 ms) is the limit: ``bot.cluster.concurrency`` 16 per
    worker, four commands a chat (in order). Returns (whole run, steady state).

    Enough chats that they spread evenly over the workers' partitions, and enough commands
    that the last, half-full wave of 16 does not decide the figure (with 400 commands over
    100 chats, one worker holding 53 chats needed 14 waves where 12.5 were its share).
    The steady state counts the answers between the 10th and the 90th percent of them: the
    whole run also holds the start (the burst being published) and the end (the worker
    whose partitions hold more of the chats finishing alone), which do not shrink with more
    workers.
    """
    name = f"b{uuid.uuid4().hex[:6]}"
    config = write_config(root, url, name, "every_worker", concurrency=16)
    procs = Workers(config, root)
    for _ in range(workers):
        procs.start()
    driver = Driver(url, name)
    await driver.start()
    try:
        await wait_members(root / f"{name}.db", workers, procs)
        await wait_ready(driver)
        ids: list[str] = []

        async def one(i: int) -> None:
            cid = await driver.send(f"c{i % chats}", "!probe slow 50")
            ids.append(cid)
            await driver._waiters[cid]

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(commands)))
        whole = commands / (time.perf_counter() - t0)
        ends = sorted(driver.done[cid] for cid in ids)
        a, b = commands // 10, commands - commands // 10
        return whole, (b - a) / (ends[b] - ends[a])
    finally:
        await driver.close()
        procs.close()


async def cluster_latency(url: str, root: Path, per_chat: int = 25) -> list[float]:
    name = f"l{uuid.uuid4().hex[:6]}"
    procs = Workers(write_config(root, url, name, "every_worker", concurrency=16), root)
    procs.start()
    driver = Driver(url, name)
    await driver.start()
    try:
        await wait_ready(driver)

        async def client(chat: str) -> list[float]:
            return [await driver.call(chat, "!probe slow 50") for _ in range(per_chat)]

        return [x for xs in await asyncio.gather(*(client(f"h{i}") for i in range(8))) for x in xs]
    finally:
        await driver.close()
        procs.close()


async def single_latency(root: Path, per_chat: int = 25) -> list[float]:
    from bot.app import Bot
    from bot.config import load_config

    path = root / "single.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "bot": {"database": str(root / "single.db"), "plugin_dirs": [str(PROBE)]},
                "plugins": {"probe": {}},
            }
        )
    )
    bot = Bot(load_config(path), transports=[])
    await bot.start()
    try:

        async def client(chat: str) -> list[float]:
            out = []
            for _ in range(per_chat):
                responder = CollectingResponder()
                t0 = time.perf_counter()
                await bot.dispatcher.process(
                    Message("console", chat, "u", "u", "!probe slow 50", responder)
                )
                out.append(time.perf_counter() - t0)
            return out

        return [x for xs in await asyncio.gather(*(client(f"h{i}") for i in range(8))) for x in xs]
    finally:
        await bot.stop()


async def kills(url: str, root: Path, report: Report, commands: int) -> None:
    name = f"k{uuid.uuid4().hex[:6]}"
    procs = Workers(write_config(root, url, name, "one_worker"), root)
    first = procs.start()
    await asyncio.sleep(1.5)
    second = procs.start()
    driver = Driver(url, name)
    await driver.start()
    try:
        await wait_members(root / f"{name}.db", 2, procs)
        await wait_ready(driver)
        chats = 100
        expected: dict[str, list[str]] = defaultdict(list)
        ids: list[str] = []
        kill_times: list[float] = []

        async def killer() -> None:
            for share, victim in ((0.3, first), (0.6, second)):
                while len(driver.done) < 4 + commands * share:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                Workers.kill(victim)
                kill_times.append(time.perf_counter())
                procs.start()

        killing = asyncio.create_task(killer())
        for i in range(commands):
            chat = f"k{i % chats}"
            expected[chat].append(f"seq {i}")
            ids.append(await driver.send(chat, f"!probe seq {i}"))
            if i % 50 == 49:
                await asyncio.sleep(0.02)  # a steady stream, not one burst
        deadline = time.perf_counter() + 120
        while any(cid not in driver.done for cid in ids) and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await killing
        lost = sum(1 for cid in ids if cid not in driver.done or not driver.replies[cid])
        twice = sum(1 for cid in ids if len(driver.replies[cid]) > 1)
        got: dict[str, list[str]] = defaultdict(list)
        for i, cid in enumerate(ids):
            for _, text in driver.replies[cid]:
                got[f"k{i % chats}"].append(text)
        by_done = sorted(ids, key=lambda c: driver.done.get(c, 1e18))
        inversions = sum(
            1 for chat in expected if [x for x in got[chat]] != expected[chat][: len(got[chat])]
        )
        finished = sorted(driver.done[c] for c in ids if c in driver.done)
        gaps = []
        for k in kill_times:
            after = [t for t in finished if t >= k]
            before = [t for t in finished if t < k]
            if after and before:
                gaps.append(after[0] - before[-1])
        report.check(f"{commands} commands, 2 kills: lost", lost, lost == 0)
        report.check(f"{commands} commands, 2 kills: shown twice", twice, twice == 0)
        report.check(
            f"{commands} commands, 2 kills: chats out of order", inversions, inversions == 0
        )
        report.note(
            f"replies of re-run commands suppressed by their number: "
            f"{driver.raw_duplicates}; longest pause after a kill: "
            f"{', '.join(ms(g) for g in gaps) or 'none seen'}; last answer "
            f"{ms(driver.done[by_done[-1]] - driver.sent[ids[0]]) if by_done else '-'}"
            " after the first send"
        )
    finally:
        await driver.close()
        procs.close()


async def payouts(url: str, root: Path, report: Report, count: int = 200) -> None:
    """``count`` confirmed ``cw payout``s from 20 admins' chats while two workers are killed:
    the game must pay each at most once, and every ledger row must end settled."""
    import sqlite3

    from bot.store import Store
    from bot_migrations.core import migrations as core_migrations
    from bot_plugins.chatwars.simulator import ChatWarsSimulator

    name = f"m{uuid.uuid4().hex[:6]}"
    sim = ChatWarsSimulator(url, name, seed=3, feed_interval=0, delete_on_stop=True)
    await sim.start()
    admins = [f"boss{i}" for i in range(20)]
    config = write_config(root, url, name, "one_worker")
    settings = yaml.safe_load(config.read_text())
    settings["bot"]["admins"] = {"console": admins}
    settings["bot"]["ask_timeout"] = 5
    settings["plugins"] = {
        "chatwars": {"amqp_url": url, "app": name, "timeout": 10, "max_requests_per_second": 30}
    }
    config.write_text(yaml.safe_dump(settings))
    world = sim.world
    token = world.token_for(6210)
    store = Store(root / f"{name}.db")
    store.migrate([core_migrations])
    data = {"telegram_id": 6210, "game_id": world.users[6210].game_id}
    store.set_link(
        "console",
        "bob",
        "chatwars",
        "6210",
        token=token,
        data=data,
        proof="proven",
    )
    store.close()
    procs = Workers(config, root)
    first = procs.start()
    await asyncio.sleep(1.5)
    second = procs.start()
    driver = Driver(url, name)
    await driver.start()
    done = 0
    try:
        await wait_members(root / f"{name}.db", 2, procs)
        await wait_ready(driver)

        async def admin(i: int) -> None:
            nonlocal done
            chat = f"a{i}"
            for _ in range(count // len(admins)):
                cid = await driver.send(chat, "!cw payout bob 1", user=admins[i])
                ended = driver._waiters[cid]
                await asyncio.wait(
                    {driver.asked[cid], ended}, timeout=30, return_when=asyncio.FIRST_COMPLETED
                )
                if not ended.done():
                    await driver.send(chat, "yes", user=admins[i])
                await asyncio.wait({ended}, timeout=30)
                done += 1

        async def killer() -> None:
            for share, victim in ((0.3, first), (0.6, second)):
                while done < count * share:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                Workers.kill(victim)
                procs.start()

        killing = asyncio.create_task(killer())
        await asyncio.gather(*(admin(i) for i in range(len(admins))))
        await killing
        db = root / f"{name}.db"

        def ledger() -> list[tuple[str, str]]:
            conn = sqlite3.connect(db, timeout=30)
            try:
                return conn.execute(
                    "select transaction_id, status from ledger where service = 'chatwars'"
                ).fetchall()
            finally:
                conn.close()

        for _ in range(50):  # late replies settle what they can name
            if all(s in ("done", "failed") for _, s in ledger()):
                break
            await asyncio.sleep(0.1)
        in_doubt = [t for t, s in ledger() if s not in ("done", "failed")]
        # What an admin does next: cw retry each one (the balance is shown, then it is sent
        # again with its own id, which the game pays at most once).
        for tid in in_doubt:
            cid = await driver.send("a0", f"!cw retry {tid[:8]}", user=admins[0])
            ended = driver._waiters[cid]
            await asyncio.wait(
                {driver.asked[cid], ended}, timeout=30, return_when=asyncio.FIRST_COMPLETED
            )
            if not ended.done():
                await driver.send("a0", "yes", user=admins[0])
            await asyncio.wait({ended}, timeout=30)
        statuses = [s for _, s in ledger()]
        paid = [t.transaction_id for t in world.payouts]
        twice = len(paid) - len(set(paid))
        answered = sum(
            1
            for texts in driver.replies.values()
            if any(t.startswith(("Paid ", "This command already started")) for _, t in texts)
        )
        report.check(f"{count} payouts, 2 kills: paid twice at the game", twice, twice == 0)
        report.check(f"{count} payouts, 2 kills: commands answered", answered, answered >= count)
        open_rows = sum(s not in ("done", "failed") for s in statuses)
        report.check(
            f"{count} payouts, 2 kills: rows unsettled after cw retry", open_rows, open_rows == 0
        )
        report.check(
            f"{count} payouts, 2 kills: paid at the game = rows done",
            f"{len(paid)} = {statuses.count('done')}",
            len(paid) == statuses.count("done"),
        )
        report.note(
            f"payouts: {len(in_doubt)} in doubt after the kills (settled by cw retry); "
            f"{len(paid)} paid at the game; ledger "
            + ", ".join(f"{s} {statuses.count(s)}" for s in sorted(set(statuses)))
        )
    finally:
        await driver.close()
        procs.close()
        await sim.stop()


async def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--commands", type=int, default=2000)
    args = parser.parse_args()
    report = Report("cluster", args)
    scaling = report.figure(
        "capacity-bound: 2 workers vs 1, commands/s",
        lambda v: f"{v:,.0f}/s",
        1.8,
        higher_is_better=True,
        floor_label="1 worker",
    )
    steady = report.figure(
        "capacity-bound, steady state (10-90 % of answers)",
        lambda v: f"{v:,.0f}/s",
        higher_is_better=True,
        floor_label="1 worker",
    )
    add50 = report.figure("added latency at half load, p50", ms, 0.005)
    add99 = report.figure("added latency at half load, p99", ms, 0.025)
    rabbitmq = rabbitmq_support()
    with rabbitmq.running_broker(schedulers=2) as broker, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = str(broker.url)
        for r in range(args.rounds):
            one, one_steady = await throughput(url, root, 1)
            two, two_steady = await throughput(url, root, 2)
            scaling.add(two, one)
            steady.add(two_steady, one_steady)
            single = await single_latency(root)
            clustered = await cluster_latency(url, root)
            add50.add(pct(clustered, 50) - pct(single, 50))
            add99.add(pct(clustered, 99) - pct(single, 99))
            print(
                f"round {r + 1}: 1 worker {one:,.0f}/s, 2 workers {two:,.0f}/s "
                f"(steady {one_steady:,.0f}/s, {two_steady:,.0f}/s); p50 "
                f"{ms(pct(single, 50))} -> {ms(pct(clustered, 50))}",
                flush=True,
            )
        await kills(url, root, report, args.commands)
        await payouts(url, root, report)
    report.finish()


if __name__ == "__main__":
    asyncio.run(main())
