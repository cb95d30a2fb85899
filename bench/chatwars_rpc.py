"""Benchmark: ChatWars request/reply. `python bench/chatwars_rpc.py [--requests 2000] [--rounds 5]`

``requestProfile`` round trips through the plugin's client (correlation, rate limiter set
wide open, typed results) at 1 and at 100 in flight, against the ChatWars simulator on a
private RabbitMQ broker. Floor, same run: a bare aio-pika client publishing the same JSON to
the same exchange (publisher confirms, persistent, like the client) and matching replies by
userId. Target: >= 0.8x the floor's throughput at both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time

import aio_pika
from _common import Report, arguments, pct, per_second, rabbitmq_support, us

from bot_plugins.chatwars.client import ChatWarsClient
from bot_plugins.chatwars.models import UserToken
from bot_plugins.chatwars.simulator import ChatWarsSimulator

APP = "benchapp"
USERS = 100


async def link_users(client: ChatWarsClient, sim: ChatWarsSimulator) -> list[UserToken]:
    tokens = []
    for uid in range(1000, 1000 + USERS):
        await client.create_auth_code(uid)
        granted = await client.grant_token(uid, sim.world.last_code(uid, "auth"))
        sim.world.grant_operation(uid, "GetUserProfile")
        tokens.append(granted.credentials)
    return tokens


async def run_client(
    client: ChatWarsClient, users: list[UserToken], in_flight: int, n: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    per_user = max(1, n // in_flight)

    async def worker(user: UserToken) -> None:
        for _ in range(per_user):
            t0 = time.perf_counter()
            profile = await client.request_profile(user)
            latencies.append(time.perf_counter() - t0)
            assert profile.user_id == user.user_id

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(users[i % len(users)]) for i in range(in_flight)))
    return per_user * in_flight / (time.perf_counter() - t0), latencies


async def run_bare(
    url: str, users: list[UserToken], in_flight: int, n: int
) -> tuple[float, list[float]]:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{APP}_ex", ensure=False)
        queue = await channel.get_queue(f"{APP}_i", ensure=False)
        waiting: dict[int, asyncio.Future[dict]] = {}

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                data = json.loads(message.body)
                fut = waiting.pop(data["payload"]["userId"], None)
                if fut is not None:
                    fut.set_result(data)

        tag = await queue.consume(on_reply)
        latencies: list[float] = []
        per_user = max(1, n // in_flight)
        loop = asyncio.get_running_loop()

        async def worker(user: UserToken) -> None:
            body = json.dumps({"token": user.token, "action": "requestProfile"}).encode()
            for _ in range(per_user):
                t0 = time.perf_counter()
                fut = loop.create_future()
                waiting[user.user_id] = fut
                await exchange.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=f"{APP}_o",
                )
                reply = await asyncio.wait_for(fut, 10)
                latencies.append(time.perf_counter() - t0)
                assert reply["result"] == "Ok"

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(users[i % len(users)]) for i in range(in_flight)))
        elapsed = time.perf_counter() - t0
        await queue.cancel(tag)
        return per_user * in_flight / elapsed, latencies


async def measure(args: argparse.Namespace) -> None:
    logging.disable(logging.WARNING)
    report = Report("ChatWars requestProfile round trips through a private RabbitMQ", args)
    sizes = {1: args.requests // 4, 100: args.requests}
    figures = {
        in_flight: (
            report.figure(
                f"{in_flight} in flight: requests/s",
                per_second,
                0.8,
                higher_is_better=True,
                floor_label="bare aio-pika",
            ),
            report.figure(f"{in_flight} in flight: latency p50", us, floor_label="bare aio-pika"),
            report.figure(f"{in_flight} in flight: latency p99", us, floor_label="bare aio-pika"),
        )
        for in_flight in sizes
    }
    with rabbitmq_support().running_broker() as broker:
        url = str(broker.url)
        sim = ChatWarsSimulator(url, APP, seed=1, balance=10**9)
        async with sim:
            client = await started_client(url)
            users = await link_users(client, sim)
            await run_client(client, users, 1, 100)  # warm-up
            await client.close()
            for _ in range(args.rounds):
                # One consumer at a time on the reply queue: two would split the replies, so
                # the client is closed while the bare floor runs, and started after it.
                bare = {f: await run_bare(url, users, f, n) for f, n in sizes.items()}
                client = await started_client(url)
                for in_flight, n in sizes.items():
                    tp, lat = await run_client(client, users, in_flight, n)
                    b_tp, b_lat = bare[in_flight]
                    rate, p50, p99 = figures[in_flight]
                    rate.add(tp, b_tp)
                    p50.add(pct(lat, 50), pct(b_lat, 50))
                    p99.add(pct(lat, 99), pct(b_lat, 99))
                await client.close()
    report.finish()


async def started_client(url: str) -> ChatWarsClient:
    client = ChatWarsClient(url, APP, timeout=10.0, max_rate=1e6)
    await client.start()
    await client.wait_connected(10)
    return client


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(measure(parser.parse_args()))
