"""The market feeds from Kafka: the ChatWars digest service's topics ``cw3-deals`` ...

Since 2020 public bots read the feeds (``deals``, ``offers``, ``duels``, ``sex_digest``,
``yellow_pages``, ``au_digest``) from the digest service's Kafka brokers, without
credentials, while the AMQP feed queues of an app may stay empty
(Cactiw/Dark-Desire-Order-Bot reads ``digest-api.chtwrs.com:9092``). This reader needs no app
registration, so a bot can offer market alerts alone.

``aiokafka`` is imported only here, and only when the Kafka source is configured: a bot on
the AMQP source does not need it installed.

Without a ``group_id`` the reader takes every partition of its topics with no group
coordination (nothing is committed; ``offset_reset: latest``, the default, starts at new
messages after each start), which is what an alert feed wants. Messages are handled in
order per partition, through the same parser and handlers as the AMQP feeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

from bot import clip
from bot.backoff import backoff_delays

from .feeds import FeedFormatError, FeedKind, FeedMessage, parse_feed

log = logging.getLogger(__name__)

FeedHandler = Callable[[FeedMessage], Awaitable[None] | None]
#: what to say when aiokafka is missing (it is a dependency; a trimmed install may lack it)
NOT_INSTALLED = "aiokafka is not installed (pip install aiokafka)"


class KafkaFeeds:
    """Reads ``<prefix><feed>`` topics and hands each parsed message to the handlers."""

    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        kinds: Iterable[FeedKind],
        *,
        group_id: str | None = None,
        offset_reset: str = "latest",
        reconnect_delays: Callable[[], Iterator[float]] = backoff_delays,
        client_id: str = "chatwars-bot",
    ) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.kinds = tuple(dict.fromkeys(FeedKind(k) for k in kinds))
        self.group_id = group_id
        self.offset_reset = offset_reset
        self.client_id = client_id
        self._reconnect_delays = reconnect_delays
        self._topics = {f"{prefix}{kind.value}": kind for kind in self.kinds}
        self._handlers: list[FeedHandler] = []
        self._state: dict[FeedKind, str | None] = {k: "not started" for k in self.kinds}
        self._task: asyncio.Task[None] | None = None
        self.received = 0
        self.dropped = 0

    @property
    def topics(self) -> list[str]:
        return list(self._topics)

    @property
    def status(self) -> Mapping[FeedKind, str | None]:
        """Per feed: None while reading, else why not (for health)."""
        return dict(self._state)

    def add_feed_handler(self, handler: FeedHandler) -> None:
        self._handlers.append(handler)

    def start(self) -> None:
        """Start reading in the background (reconnecting by itself); returns at once."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="chatwars:kafka feeds")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._set_all("closed")

    def _set_all(self, why: str | None) -> None:
        for kind in self.kinds:
            self._state[kind] = why

    async def _supervise(self) -> None:
        try:
            from aiokafka import AIOKafkaConsumer
        except ImportError:
            self._set_all(NOT_INSTALLED)
            log.error("ChatWars: Kafka feeds configured but %s", NOT_INSTALLED)
            return
        quiet, client_log = _QuietConnectErrors(), logging.getLogger("aiokafka.client")
        client_log.addFilter(quiet)
        try:
            await self._read(AIOKafkaConsumer)
        finally:
            client_log.removeFilter(quiet)

    async def _read(self, consumer_class: Any) -> None:
        """Read until cancelled, reconnecting with backoff after any failure."""
        delays = self._reconnect_delays()
        last: str | None = None
        while True:
            consumer = consumer_class(
                *self._topics,
                bootstrap_servers=self.bootstrap.split(","),
                client_id=self.client_id,
                group_id=self.group_id,
                auto_offset_reset=self.offset_reset,
                enable_auto_commit=self.group_id is not None,
                session_timeout_ms=10_000,
                heartbeat_interval_ms=3_000,
                request_timeout_ms=15_000,
            )
            try:
                await consumer.start()
                self._set_all(None)
                delays = self._reconnect_delays()
                last = None
                log.info("ChatWars: reading feeds from Kafka at %s", self.bootstrap)
                async for record in consumer:
                    await self._handle(record.topic, record.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                why = _describe(exc, self.bootstrap)
                self._set_all(why)
                level = logging.DEBUG if why == last else logging.WARNING
                log.log(level, "ChatWars: Kafka feeds: %s; retrying", why)
                last = why
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 10)
            await asyncio.sleep(next(delays))

    async def _handle(self, topic: str, value: bytes | None) -> None:
        kind = self._topics.get(topic)
        if kind is None or value is None:
            return
        try:
            message = parse_feed(kind, value)
        except FeedFormatError as exc:
            self.dropped += 1
            log.warning("ChatWars: dropped a malformed Kafka %s message: %s", topic, clip(exc))
            return
        self.received += 1
        for handler in self._handlers:
            try:
                result = handler(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("ChatWars: a %s feed handler failed", kind)


class _QuietConnectErrors(logging.Filter):
    """aiokafka logs every failed connection attempt at ERROR; while the brokers are away
    that repeats for as long as the bot runs. This reader says it once per change."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Unable connect to", "Unable to update metadata"))


def _describe(exc: BaseException, bootstrap: str) -> str:
    name = type(exc).__name__
    if name == "KafkaConnectionError":
        return f"cannot reach the Kafka brokers at {bootstrap}"
    detail = " ".join(str(exc).split()) or name
    return clip(f"Kafka: {detail}", 200)
