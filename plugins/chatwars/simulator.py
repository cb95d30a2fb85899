"""A local ChatWars: the game's side of the CW API, served over a real RabbitMQ broker.

The real server owns the app's exchange and queues; here the simulator declares them (as the
real server would already have), consumes the app's request queues (``<app>_o`` and, for test
mode, ``<app>_to``), lets :class:`~.simworld.ChatWarsWorld` apply the documented rules, and
puts each reply in the matching inbound queue in the document's shapes. It also publishes the
four market feeds to fan-out exchanges, on demand or every ``feed_interval`` seconds.

Test hooks, besides everything on ``sim.world`` (codes sent to players, balance, transfers,
injected results): :meth:`drop_replies` loses replies after the work is done (a lost reply),
:meth:`hold_replies`/:meth:`release_replies` delay them (to break the connection mid-call),
:meth:`publish_feed`, :meth:`publish_raw_feed` and :meth:`publish_raw_reply` put any message,
malformed ones included, where the client reads. ``bot simulate chatwars`` runs it standalone
against a broker (see :func:`simulator_from_args`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from bot.backoff import backoff_delays
from bot.simulation import Simulator

from .client import DEFAULT_URL, redact_url
from .feeds import FeedKind
from .redelivery import RecentMessages
from .routing import Routing, check_app_name
from .simworld import KNOWN_OPERATIONS, ChatWarsWorld, Rule, take_rule

if TYPE_CHECKING:
    from aio_pika.abc import (
        AbstractExchange,
        AbstractIncomingMessage,
        AbstractRobustChannel,
        AbstractRobustConnection,
    )

log = logging.getLogger(__name__)

#: "all queues are limited in size by 1Mb, with discard-oldest policy"
QUEUE_ARGUMENTS = {"x-max-length-bytes": 1024 * 1024, "x-overflow": "drop-head"}


async def _refused(url: str) -> None:
    """Raise ConnectionRefusedError when nothing listens at the broker's address, so that a
    bot with no broker (the example config) does not import aio_pika just to learn that. Any
    other outcome (it listens, a name that does not resolve, a timeout) is left to the real
    connect, which reports it as before."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    except ValueError:
        return
    try:
        _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        raise
    except OSError:
        return
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


class ChatWarsSimulator(Simulator):
    """The game's side of one app on a broker at ``amqp_url`` (which becomes ``url``).

    ``feed_exchange_prefix`` renames the public feed exchanges (``deals`` ...) so tests that
    share a broker do not feed each other; leave it empty to match the real names.
    ``delete_on_stop`` removes what ``start`` declared, for tests.
    """

    def __init__(
        self,
        amqp_url: str = DEFAULT_URL,
        app: str = "demo",
        *,
        world: ChatWarsWorld | None = None,
        seed: int | None = None,
        balance: int = 100_000,
        feed_interval: float | None = None,
        deals_per_tick: int = 3,
        feed_exchange_prefix: str = "",
        delete_on_stop: bool = False,
    ) -> None:
        self.url = amqp_url
        self.app = check_app_name(app)
        self.world = world or ChatWarsWorld(seed=seed, balance=balance)
        self.feed_interval = feed_interval
        self.deals_per_tick = deals_per_tick
        self.feed_exchange_prefix = feed_exchange_prefix
        self.delete_on_stop = delete_on_stop
        self.replies_sent = 0
        self.feeds_sent = 0
        self._drops: list[Rule] = []
        self._replies_open = asyncio.Event()
        self._replies_open.set()
        self._handled = RecentMessages(10_000)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._feed_exchanges: dict[FeedKind, AbstractExchange] = {}
        self._feed_task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._stopping = False

    def feed_exchange(self, kind: FeedKind) -> str:
        return f"{self.feed_exchange_prefix}{kind.value}"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._stopping = False
        await _refused(self.url)
        import aio_pika  # only once a broker listens: ~50 ms a bot without one never pays

        # A robust connection re-declares and re-consumes by itself after a reconnect; the
        # simulator plays the server, which is always there.
        connection = await aio_pika.connect_robust(
            self.url,
            reconnect_interval=0.3,
            client_properties={"connection_name": f"chatwars-simulator:{self.app}"},
        )
        self._connection = connection
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=128)
        # The feeds first: a client waiting for the app's queues connects as soon as the reply
        # queue exists, and must then find its feed queues too.
        for kind in FeedKind:
            feed = await channel.declare_exchange(
                self.feed_exchange(kind), aio_pika.ExchangeType.FANOUT, durable=True
            )
            queue = await channel.declare_queue(
                Routing(self.app).feed_queue(kind), durable=True, arguments=QUEUE_ARGUMENTS
            )
            await queue.bind(feed)
            self._feed_exchanges[kind] = feed
        exchange = await channel.declare_exchange(
            Routing(self.app).exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )
        for test_mode in (False, True):
            routing = Routing(self.app, test_mode)
            requests = await channel.declare_queue(
                routing.routing_key, durable=True, arguments=QUEUE_ARGUMENTS
            )
            await requests.bind(exchange, routing_key=routing.routing_key)
            await channel.declare_queue(
                routing.inbound_queue, durable=True, arguments=QUEUE_ARGUMENTS
            )
            await requests.consume(partial(self._on_request, routing))
        self._channel = channel
        if self.feed_interval:
            self._feed_task = asyncio.create_task(self._feed_loop())
        log.info("ChatWars simulator for app %s on %s", self.app, redact_url(self.url))

    async def stop(self) -> None:
        self._stopping = True
        self._replies_open.set()  # let held replies finish (or give up)
        task, self._feed_task = self._feed_task, None
        for job in [task, *self._deliveries]:
            if job is not None:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self.delete_on_stop and self._channel is not None:
            with contextlib.suppress(Exception):
                await self._delete_everything(self._channel)
        self._channel = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), 5)

    async def _delete_everything(self, channel: AbstractRobustChannel) -> None:
        names = [Routing(self.app).feed_queue(kind) for kind in FeedKind]
        for test_mode in (False, True):
            routing = Routing(self.app, test_mode)
            names += [routing.routing_key, routing.inbound_queue]
        for name in names:
            await channel.queue_delete(name)
        await channel.exchange_delete(Routing(self.app).exchange)
        if self.feed_exchange_prefix:  # the unprefixed ones are shared by every app
            for kind in FeedKind:
                await channel.exchange_delete(self.feed_exchange(kind))

    # ------------------------------------------------------------------ requests

    async def _on_request(self, routing: Routing, message: AbstractIncomingMessage) -> None:
        if self._handled.is_repeat(message.body, message.redelivered):
            # Handled before the connection broke (its reply is out or still being sent):
            # doing it again would pay twice.
            await self._ack(message)
            return
        handled = self.world.handle(message.body)
        if take_rule(self._drops, handled.action, handled.user_id) is not None:
            log.info("simulator: dropping the reply to %s (test hook)", handled.action)
        else:
            # The reply is sent by a task of our own: aiormq cancels consumer callbacks when
            # the connection breaks, and the work is already done, so the reply must go out.
            body = json.dumps(handled.reply, ensure_ascii=False).encode()
            delivery = asyncio.create_task(self._deliver(routing.inbound_queue, body))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)
            await asyncio.shield(delivery)
        await self._ack(message)

    async def _deliver(self, queue: str, body: bytes) -> None:
        await self._replies_open.wait()
        if await self._publish(None, queue, body):
            self.replies_sent += 1

    @staticmethod
    async def _ack(message: AbstractIncomingMessage) -> None:
        with contextlib.suppress(Exception):
            await message.ack()

    async def _publish(
        self, exchange: AbstractExchange | None, routing_key: str, body: bytes
    ) -> bool:
        """Publish, retrying through a reconnect (the real server does not lose replies)."""
        import aio_pika
        from aio_pika.exceptions import AMQPError

        delays = backoff_delays(0.05, 1.0)
        while not self._stopping:
            channel = self._channel
            try:
                if channel is None:
                    raise ConnectionError("not connected")
                target = exchange or channel.default_exchange
                await target.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=routing_key,
                    timeout=5,
                )
                return True
            except (AMQPError, ConnectionError, RuntimeError, TimeoutError):
                await asyncio.sleep(next(delays))
        return False

    # ------------------------------------------------------------------ test hooks

    def drop_replies(
        self, action: str | None = None, *, user_id: int | None = None, times: int = 1
    ) -> None:
        """Do the next matching requests' work but never send their replies."""
        self._drops.append(Rule(action, user_id, times))

    def hold_replies(self) -> None:
        """Keep doing the work, but hold every reply until :meth:`release_replies`."""
        self._replies_open.clear()

    def release_replies(self) -> None:
        self._replies_open.set()

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01
    ) -> None:
        """Wait for the simulator's state to satisfy ``predicate`` (TimeoutError if not)."""
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110 - the world is plain state, no events
                await asyncio.sleep(interval)

    async def publish_feed(self, kind: FeedKind, payload: Any = None) -> Any:
        """Publish one feed message (a generated one unless ``payload`` is given)."""
        if payload is None:
            payload = self.world.feed_payload(kind)
        await self.publish_raw_feed(kind, json.dumps(payload, ensure_ascii=False).encode())
        return payload

    async def publish_raw_feed(self, kind: FeedKind, body: bytes) -> None:
        """Publish any bytes on a feed, e.g. a malformed message."""
        if not self._feed_exchanges:
            raise RuntimeError("the simulator is not started")
        if await self._publish(self._feed_exchanges[kind], "", body):
            self.feeds_sent += 1

    async def publish_raw_reply(self, body: bytes, *, test_mode: bool = False) -> None:
        """Put any bytes in the app's inbound queue, as if the server had sent them."""
        await self._publish(None, Routing(self.app, test_mode).inbound_queue, body)

    async def _feed_loop(self) -> None:
        assert self.feed_interval
        while True:
            await asyncio.sleep(self.feed_interval)
            try:
                for _ in range(self.deals_per_tick):
                    await self.publish_feed(FeedKind.DEALS)
                for kind in (FeedKind.OFFERS, FeedKind.DIGEST, FeedKind.YELLOW_PAGES):
                    await self.publish_feed(kind)
            except Exception:
                log.exception("simulator: publishing feeds failed")


def simulator_from_args(argv: list[str]) -> ChatWarsSimulator:
    """``bot simulate chatwars [options]``: serve one app on a RabbitMQ broker."""
    parser = argparse.ArgumentParser(
        prog="bot simulate chatwars",
        description="Play the ChatWars side of the CW API for one app on a RabbitMQ broker.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="broker host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5672, help="broker AMQP port (default 5672)")
    parser.add_argument("--user", default="guest", help="broker user (default guest)")
    parser.add_argument("--password", default="guest", help="broker password (default guest)")
    parser.add_argument("--vhost", default="/", help="broker virtual host (default /)")
    parser.add_argument("--tls", action="store_true", help="connect with amqps://")
    parser.add_argument("--app", default="demo", help="the app name (default demo)")
    parser.add_argument("--seed", type=int, default=None, help="seed for codes, tokens, feeds")
    parser.add_argument(
        "--balance", type=int, default=100_000, help="the app's starting balance in gold"
    )
    parser.add_argument(
        "--feed-interval",
        type=float,
        default=5.0,
        help="seconds between feed messages; 0 turns the feeds off (default 5)",
    )
    parser.add_argument("--deals-per-tick", type=int, default=3, help="deals per feed interval")
    parser.add_argument(
        "--grant-all",
        action="store_true",
        help="new tokens may read profiles and stock without asking the player",
    )
    args = parser.parse_args(argv)
    try:
        check_app_name(args.app)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    scheme = "amqps" if args.tls else "amqp"
    vhost = "" if args.vhost == "/" else quote(args.vhost, safe="")
    url = (
        f"{scheme}://{quote(args.user, safe='')}:{quote(args.password, safe='')}"
        f"@{args.host}:{args.port}/{vhost}"
    )
    world = ChatWarsWorld(
        seed=args.seed,
        balance=args.balance,
        initial_operations=KNOWN_OPERATIONS if args.grant_all else (),
    )
    return ChatWarsSimulator(
        url,
        args.app,
        world=world,
        feed_interval=args.feed_interval or None,
        deals_per_tick=args.deals_per_tick,
    )
