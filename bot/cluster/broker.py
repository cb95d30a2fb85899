"""The broker connection and the names of everything a cluster declares.

Every name starts with ``bot.cluster.name`` so two clusters (or a test run) can share a
broker. Ingress and plugin queues are durable and *single active consumer*: the broker gives
each one to one consumer at a time and hands it to the next when that one's connection dies,
with everything it had not acknowledged requeued in order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import ClusterError

if TYPE_CHECKING:
    import aio_pika
    from aio_pika.abc import AbstractChannel, AbstractQueue

    from ..config import ClusterSection

log = logging.getLogger(__name__)

_SAC = {"x-single-active-consumer": True}


@dataclass(frozen=True)
class Names:
    """Queue names of one cluster."""

    prefix: str
    partitions: int

    def ingress(self, partition: int) -> str:
        return f"{self.prefix}.in.{partition:03d}"

    def plugin(self, name: str) -> str:
        return f"{self.prefix}.plugin.{name}"

    def outbound(self, platform: str) -> str:
        return f"{self.prefix}.out.{platform}"

    def inbox(self, process_id: str) -> str:
        return f"{self.prefix}.inbox.{process_id}"


def process_id(role: str) -> str:
    """A name for this process, unique in the cluster and readable in ``status``."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Broker:
    """One AMQP connection of a process; it dies with the process (self-fencing).

    A plain connection, not aio-pika's robust one, on purpose: a worker that loses the broker
    has lost every partition and plugin it owned (the broker gave them to others), so it must
    stop using them at once rather than quietly reconnect and keep going. ``lost`` is set and
    the process stops; its supervisor starts it again.
    """

    def __init__(self, config: ClusterSection) -> None:
        self.config = config
        self.names = Names(config.name, config.partitions)
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.lost = asyncio.Event()
        self._closing = False

    async def connect(self) -> None:
        import aio_pika
        from yarl import URL

        url = URL(self.config.url())
        if "heartbeat" not in url.query:
            url = url.update_query(heartbeat=self.config.broker_heartbeat)
        try:
            self.connection = await aio_pika.connect(url, timeout=10)
        except Exception as exc:
            raise ClusterError(f"cannot reach the cluster's broker: {type(exc).__name__}") from None
        self.connection.close_callbacks.add(self._closed)

    def _closed(self, *_: Any) -> None:
        if not self._closing:
            log.error("the connection to the cluster's broker was lost")
            self.lost.set()

    async def channel(self, prefetch: int) -> AbstractChannel:
        assert self.connection is not None
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    @staticmethod
    async def durable(channel: AbstractChannel, name: str, *, single: bool) -> AbstractQueue:
        return await channel.declare_queue(name, durable=True, arguments=_SAC if single else None)

    async def close(self) -> None:
        self._closing = True
        if self.connection is not None and not self.connection.is_closed:
            await self.connection.close()


async def publish(channel: AbstractChannel, queue: str, body: bytes, **props: Any) -> None:
    """Publish to a queue through the default exchange and wait for the broker's confirm."""
    import aio_pika

    await channel.default_exchange.publish(
        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **props),
        routing_key=queue,
        # A gateway or worker that died took its inbox with it: its events are dropped.
        mandatory=False,
    )
