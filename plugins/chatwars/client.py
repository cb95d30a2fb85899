"""The ChatWars protocol client: AMQP in and out, typed calls, no chat.

Design points the API forces on us:

* The app may only publish and consume: it never declares an exchange or a queue (the real
  broker answers ACCESS_REFUSED), so queues and exchanges are referenced by name only.
* Replies carry no id of ours; :mod:`.correlation` matches them and keeps one request per user
  in flight, so concurrent users never receive each other's replies.
* Money moves once: pay/payout take the caller's transactionId (the ledger owns it) and a
  retry reuses it. A publish interrupted by a broken connection is not reported as failed,
  because it may have reached the broker: the call keeps waiting for the reply, which is still
  delivered after the reconnect, until its timeout.
* Inbound messages are acknowledged only after they were handled (feed messages in batches,
  see :class:`FeedAcks`), so nothing is lost when the connection breaks; a copy redelivered
  after a reconnect is recognised and not handled twice.
* The connection is supervised: on any loss it reconnects with :func:`bot.backoff.backoff_delays`
  and restores every consumer; while it is down, calls fail at once with a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import re
import sys
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from bot import clip
from bot.backoff import backoff_delays

from .antispam import Asked, MemoryAsks, OperationAsks
from .correlation import Correlator, Pending
from .errors import (
    ChatWarsError,
    ChatWarsNotConnected,
    ChatWarsNotSent,
    ChatWarsTimeout,
    OperationRequestPending,
)
from .feeds import FeedFormatError, FeedKind, FeedMessage, parse_feed
from .models import (
    AppInfo,
    AuthCodeSent,
    BasicInfo,
    BuyOrderPlaced,
    Craftbook,
    Gear,
    GrantedToken,
    GuildInfo,
    OperationGranted,
    OperationRequest,
    PaymentAuthorized,
    PaymentDone,
    PayoutDone,
    Profile,
    Stock,
    UserToken,
)
from .parsing import FormatProblem
from .ratelimit import SlidingWindowLimiter
from .redelivery import RecentMessages
from .requests import (
    AuthAdditionalOperation,
    AuthorizePayment,
    CreateAuthCode,
    GetInfo,
    GrantAdditionalOperation,
    GrantToken,
    GuildInfoRequest,
    Pay,
    Payout,
    Reply,
    Request,
    RequestBasicInfo,
    RequestGearInfo,
    RequestProfile,
    RequestStock,
    ViewCraftbook,
    WantToBuy,
)
from .routing import Routing

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
    from aio_pika.abc import AbstractIncomingMessage as IncomingMessage

log = logging.getLogger(__name__)

R = TypeVar("R")

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_TIMEOUT = 10.0
#: Public clients cap themselves near 30 requests/s; stay a little under.
DEFAULT_RATE = 25.0
#: "Do not spam with this request or sanctions will follow" (authAdditionalOperation).
DEFAULT_OPERATION_COOLDOWN = 600.0

FeedHandler = Callable[[FeedMessage], Awaitable[None] | None]
#: Called with the request and its outcome (a result or a ChatWarsError) when a reply arrives
#: after its caller gave up: the ledger learns how a timed-out payout really ended.
LateReplyHandler = Callable[[Request[Any], Any], Awaitable[None] | None]
#: Called with a reply that answers no request in flight.
StrayReplyHandler = Callable[[Reply], Awaitable[None] | None]


def redact_url(url: str) -> str:
    """The broker URL without user and password, for logs and status lines."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    return f"{parts.scheme}://{host}{port}{parts.path or '/'}"


def _reply_text(exc: BaseException) -> str:
    """The broker's own reason from an AMQP close, e.g. "CONNECTION_FORCED - closed by test"."""
    texts = [arg for arg in exc.args if isinstance(arg, str)]
    return clip(_without_reprs(texts[-1]) if texts else type(exc).__name__, 120)


#: an object's repr inside a library's message, e.g. ``<Channel: "1" at 0x7f...>``
_REPR = re.compile(r"<[^<>]*>")


def _without_reprs(text: str) -> str:
    """A library message without the internal reprs it may embed (chat reads these)."""
    return " ".join(_REPR.sub("", text).split())


@dataclass(frozen=True, slots=True)
class ClientStatus:
    """For the bot's ``status`` command: up or down, and why, in plain words."""

    connected: bool
    reason: str | None
    broker: str
    feeds: Mapping[FeedKind, str | None]  # None: consuming; text: why not
    in_flight: int


class FeedAcks:
    """Acknowledges one feed channel's messages in batches, never one before it was handled.

    Acking each message singly was ~5% of a feed message's cost. Handlers may finish out of
    order (an awaiting handler), so one ``multiple=True`` ack per event-loop turn covers the
    longest run of handled messages from the oldest unacknowledged one: a message still being
    handled holds back every later ack on its channel, and is redelivered if the connection
    drops first (at least once; the seen-set drops copies of messages already handled).
    Delivery tags count per channel, so a tracker serves one channel and is dropped with it.
    """

    def __init__(self) -> None:
        #: delivered and not yet acknowledged, in delivery order (tags grow on a channel)
        self._unacked: deque[IncomingMessage] = deque()
        self._handled: set[int] = set()
        self._flush_pending = False
        self._closed = False

    def delivered(self, message: IncomingMessage) -> None:
        """Register a delivery; called before its handling awaits anything, so in order."""
        self._unacked.append(message)

    async def handled(self, message: IncomingMessage) -> None:
        """Mark ``message`` handled; the first caller of a turn flushes after that turn."""
        tag = message.delivery_tag
        if tag is None:  # a no-ack delivery: nothing to acknowledge
            return
        self._handled.add(tag)
        if self._flush_pending:
            return
        self._flush_pending = True
        try:
            # Let the handlers already scheduled this turn finish: one ack covers them all.
            await asyncio.sleep(0)
        finally:
            self._flush_pending = False
        await self._flush()

    async def _flush(self) -> None:
        last: IncomingMessage | None = None
        unacked, handled = self._unacked, self._handled
        while unacked and unacked[0].delivery_tag in handled:
            last = unacked.popleft()
            handled.discard(last.delivery_tag)
        if last is None or self._closed:
            return
        # If the channel died meanwhile, the broker redelivers these after the reconnect
        # and the seen-set keeps them from being handled twice.
        with contextlib.suppress(Exception):
            await last.ack(multiple=True)

    def on_close(self, _sender: object, _exc: BaseException | None = None) -> None:
        """The channel closed: its tags mean nothing on the next one; forget them."""
        self._closed = True
        self._unacked.clear()
        self._handled.clear()


class ChatWarsClient:
    """One app's connection to the ChatWars API.

    ``start()`` connects (and keeps reconnecting in the background; it does not raise when the
    broker is down: ``status`` says why). Every call has a timeout, is rate limited, and raises
    a :class:`~.errors.ChatWarsError` subclass carrying the API's result code.
    """

    def __init__(
        self,
        amqp_url: str,
        app: str,
        *,
        test_mode: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_rate: float = DEFAULT_RATE,
        feeds: Iterable[FeedKind] = (),
        operation_cooldown: float = DEFAULT_OPERATION_COOLDOWN,
        late_reply_grace: float = 120.0,
        connect_timeout: float = 10.0,
        prefetch: int = 64,
        reconnect_delays: Callable[[], Iterator[float]] = backoff_delays,
        asks: OperationAsks | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self._url = amqp_url
        self._password = unquote(urlsplit(amqp_url).password or "")
        self.routing = Routing(app, test_mode)
        self.timeout = timeout
        self.operation_cooldown = operation_cooldown
        self._feeds = tuple(dict.fromkeys(FeedKind(kind) for kind in feeds))
        self._connect_timeout = connect_timeout
        self._prefetch = prefetch
        self._reconnect_delays = reconnect_delays
        self._limiter = SlidingWindowLimiter(max_rate)
        self._correlator = Correlator(grace=late_reply_grace)
        self._seen_replies = RecentMessages()
        self._seen_feeds = RecentMessages()
        self._feed_handlers: list[FeedHandler] = []
        self._late_handlers: list[LateReplyHandler] = []
        self._stray_handlers: list[StrayReplyHandler] = []
        #: permission requests sent to players (stored by the plugin: survives restarts)
        self.asks: OperationAsks = asks if asks is not None else MemoryAsks()
        self._clock = clock
        self._asking: dict[tuple[int, str], asyncio.Lock] = {}
        self._background: set[asyncio.Task[Any]] = set()

        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._connected = asyncio.Event()
        self._reason: str | None = "not started"
        self._feed_state: dict[FeedKind, str | None] = {k: "not started" for k in self._feeds}
        self._supervisor: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Event | None = None
        self._closing = False
        self.reconnects = 0  # successful connections after the first; for tests and status

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Connect, returning after the first attempt whatever its outcome."""
        if self._supervisor is not None:
            return
        self._closing = False
        if self._first_attempt is None or self._first_attempt.is_set():
            self._first_attempt = asyncio.Event()
        self._supervisor = asyncio.create_task(
            self._supervise(), name=f"chatwars:{self.routing.app}"
        )
        await self._first_attempt.wait()

    def expect_start(self) -> None:
        """Say that :meth:`start` is coming (the plugin may start a simulator first): calls
        made until the first connection attempt has ended wait for it, bounded by their
        timeout, instead of failing at once with "not connected"."""
        if self._first_attempt is None or self._first_attempt.is_set():
            self._first_attempt = asyncio.Event()

    def end_start_wait(self) -> None:
        """Let calls waiting for the first attempt go on (it will not come soon)."""
        if self._first_attempt is not None:
            self._first_attempt.set()

    async def _wait_first_attempt(self, deadline: float) -> None:
        """A call made while the first connection attempt is in progress waits for it."""
        first = self._first_attempt
        if self.connected or first is None or first.is_set():
            return
        try:
            async with asyncio.timeout_at(deadline):
                await first.wait()
        except TimeoutError:
            raise ChatWarsNotConnected(
                f"still connecting to the broker at {redact_url(self._url)}"
            ) from None

    async def wait_connected(self, timeout: float) -> bool:
        """True once connected (e.g. after a reconnect), False if ``timeout`` passes first."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Disconnect for good and fail every waiting call; safe to call twice."""
        self._closing = True
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._teardown()
        self._reason = "closed"
        self._correlator.fail_all(ChatWarsNotConnected("the bot closed the connection"))
        for job in list(self._background):
            job.cancel()

    async def __aenter__(self) -> ChatWarsClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def status(self) -> ClientStatus:
        return ClientStatus(
            connected=self.connected,
            reason=None if self.connected else self._reason,
            broker=redact_url(self._url),
            feeds=dict(self._feed_state),
            in_flight=len(self._correlator),
        )

    def add_feed_handler(self, handler: FeedHandler) -> None:
        """Call ``handler`` with every parsed feed message (before it is acknowledged)."""
        self._feed_handlers.append(handler)

    def add_late_reply_handler(self, handler: LateReplyHandler) -> None:
        self._late_handlers.append(handler)

    def add_stray_reply_handler(self, handler: StrayReplyHandler) -> None:
        """Call ``handler`` with each reply that matches no request in flight (instead of
        dropping it): e.g. a payout's answer arriving after the bot restarted."""
        self._stray_handlers.append(handler)

    # ---------------------------------------------------------------- connection

    async def _supervise(self) -> None:
        delays = self._reconnect_delays()
        first = True
        while not self._closing:
            lost = asyncio.Event()
            try:
                await self._connect(lost)
            except Exception as exc:
                reason = self._describe(exc)
                # Without a broker (the embedded default) this repeats for as long as the bot
                # runs: say it when it changes, not every few seconds.
                level = logging.DEBUG if reason == self._reason else logging.WARNING
                self._reason = reason
                log.log(level, "ChatWars: cannot connect to %s: %s", redact_url(self._url), reason)
            else:
                if not first:
                    self.reconnects += 1
                first = False
                delays = self._reconnect_delays()
                self._reason = None
                self._connected.set()
                log.info("ChatWars: connected to %s as %s", redact_url(self._url), self.routing.app)
                assert self._first_attempt is not None
                self._first_attempt.set()
                await lost.wait()
                log.warning("ChatWars: connection lost: %s", self._reason)
            self._connected.clear()
            await self._teardown()
            assert self._first_attempt is not None
            self._first_attempt.set()
            if self._closing:
                break
            await asyncio.sleep(next(delays))

    async def _connect(self, lost: asyncio.Event) -> None:
        def on_close(_sender: object, exc: BaseException | None = None) -> None:
            if not lost.is_set():
                self._reason = self._describe(exc) if exc else "the connection was closed"
                lost.set()

        import aio_pika  # imported when first needed: ~50 ms a bot without a broker never pays

        connection = await aio_pika.connect(
            self._url,
            timeout=self._connect_timeout,
            client_properties={"connection_name": f"chatwars-bot:{self.routing.app}"},
        )
        self._connection = connection
        connection.close_callbacks.add(on_close)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        channel.close_callbacks.add(on_close)
        await channel.set_qos(prefetch_count=self._prefetch)
        # ensure=False: no declare, not even a passive one; the real server owns these.
        exchange = await channel.get_exchange(self.routing.exchange, ensure=False)
        inbound = await channel.get_queue(self.routing.inbound_queue, ensure=False)
        await inbound.consume(self._on_reply_message)
        for kind in self._feeds:
            await self._consume_feed(connection, kind)
        self._exchange = exchange

    async def _consume_feed(self, connection: AbstractConnection, kind: FeedKind) -> None:
        """Feeds get their own channel: a missing feed queue (the app did not request it)
        closes only that channel, not the one replies arrive on."""
        from aio_pika.exceptions import AMQPError

        name = self.routing.feed_queue(kind)
        channel: AbstractChannel | None = None
        try:
            channel = await connection.channel(publisher_confirms=False)
            # The batch acknowledged at once is at most what is unacknowledged, which the
            # prefetch bounds, and a flush never waits for a count: batching cannot stall.
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await channel.get_queue(name, ensure=False)
            # One tracker per channel: delivery tags are numbered per channel, so the
            # tags of a channel that closed die with it and its tracker.
            acks = FeedAcks()
            channel.close_callbacks.add(acks.on_close)
            await queue.consume(partial(self._on_feed_message, kind, acks))
        except (AMQPError, ConnectionError) as exc:
            self._feed_state[kind] = self._describe(exc)
            log.warning("ChatWars: not consuming feed %s: %s", name, self._feed_state[kind])
        else:
            self._feed_state[kind] = None

    async def _teardown(self) -> None:
        self._exchange = None
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)
        for kind in self._feeds:
            if self._feed_state.get(kind) is None:
                self._feed_state[kind] = "not connected"

    def describe_problem(self, exc: BaseException) -> str:
        """A connection problem in plain words for health and logs (the bundled simulator
        shares the broker URL), never containing the password."""
        return self._describe(exc)

    def _describe(self, exc: BaseException) -> str:
        """A plain reason for a connection problem, never containing the password."""
        where = redact_url(self._url)
        # aio_pika is imported only once a connection is tried: before that, no exception
        # can be one of its (or aiormq's) classes, and the check must not import it.
        amqp = sys.modules.get("aiormq.exceptions")
        if amqp is not None and isinstance(exc, amqp.ProbableAuthenticationError):
            text = f"the broker at {where} refused the login of app {self.routing.app}"
        elif amqp is not None and isinstance(exc, amqp.ChannelNotFoundEntity):
            text = f"a queue or exchange of app {self.routing.app} does not exist on the broker"
        elif amqp is not None and isinstance(exc, amqp.ChannelAccessRefused):
            text = f"the broker refused access for app {self.routing.app}"
        elif isinstance(exc, TimeoutError):
            text = f"no answer from the broker at {where}"
        elif amqp is not None and isinstance(exc, amqp.ChannelInvalidStateError):
            text = "the channel to the broker was closed"
        elif amqp is not None and isinstance(exc, amqp.ConnectionClosed):
            text = f"the broker closed the connection ({_reply_text(exc)})"
        elif isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno < 512:
            # aiormq wraps socket errors as (errno, text) in an AMQPConnectionError.
            text = f"cannot reach the broker at {where} ({os.strerror(exc.errno)})"
        else:
            # The library's own words, without its reprs and class names: chat shows this.
            text = clip(_without_reprs(str(exc)) or "an unexpected error", 200)
        if self._password:
            text = text.replace(self._password, "***")
        return text.replace(self._url, where)

    # ---------------------------------------------------------------- inbound

    async def _on_reply_message(self, message: IncomingMessage) -> None:
        try:
            self._handle_reply(message.body, message.redelivered)
        except Exception:
            log.exception("ChatWars: failed to handle a reply; dropped")
        finally:
            await self._ack(message)

    def _handle_reply(self, body: bytes, redelivered: bool | None) -> None:
        """Match synchronously, so replies are matched in the order they arrived."""
        if self._seen_replies.is_repeat(body, redelivered):
            log.info("ChatWars: dropped a redelivered copy of a reply already handled")
            return
        try:
            reply = Reply.from_body(body)
        except FormatProblem as exc:
            log.warning("ChatWars: dropped a malformed reply: %s", exc)
            return
        pending = self._correlator.match(reply)
        if pending is None:
            log.warning(
                "ChatWars: a reply answers no waiting request (action=%s, result=%s)",
                reply.action,
                reply.result,
            )
            # Perhaps the answer to a request sent before a restart, or after its grace
            # ended: the ledger may still recognise it (and logs it if it does).
            for stray in self._stray_handlers:
                self._spawn(stray, reply)
        elif pending.ghost or pending.future.done():
            self._late_reply(pending, reply)
        else:
            pending.future.set_result(reply)

    def _late_reply(self, pending: Pending, reply: Reply) -> None:
        request = pending.request
        outcome: Any
        try:
            outcome = request.parse(reply)
        except ChatWarsError as exc:
            outcome = exc
        log.info(
            "ChatWars: late reply to %s for user %s: %s",
            request.action,
            request.user_id,
            getattr(outcome, "code", None) or "Ok",
        )
        self._remember(request, outcome)
        for handler in self._late_handlers:
            self._spawn(handler, request, outcome)

    async def _on_feed_message(
        self, kind: FeedKind, acks: FeedAcks, message: IncomingMessage
    ) -> None:
        acks.delivered(message)  # before the first await: callbacks start in delivery order
        try:
            await self._handle_feed(kind, message)
        except asyncio.CancelledError:
            # Only a closing channel cancels a consumer: the message was not handled, so it
            # stays unacknowledged and the broker redelivers it after the reconnect.
            raise
        except Exception:
            log.exception("ChatWars: failed to handle a %s message; dropped", kind)
        # A message whose handler failed is acknowledged all the same (as a malformed one
        # is): redelivering it would fail again, forever.
        await acks.handled(message)

    async def _handle_feed(self, kind: FeedKind, message: IncomingMessage) -> None:
        if self._seen_feeds.is_repeat(message.body, message.redelivered):
            return
        try:
            parsed = parse_feed(kind, message.body)
        except FeedFormatError as exc:
            log.warning("ChatWars: dropped a malformed %s message: %s", kind, exc)
            return
        try:
            for handler in self._feed_handlers:
                try:
                    result = handler(parsed)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("ChatWars: a %s feed handler failed", kind)
        except asyncio.CancelledError:
            self._seen_feeds.forget(message.body)  # it comes back after the reconnect
            raise

    @staticmethod
    async def _ack(message: IncomingMessage) -> None:
        # If the channel died meanwhile, the broker redelivers the message after the
        # reconnect and the seen-set keeps it from being handled twice.
        with contextlib.suppress(Exception):
            await message.ack()

    def _spawn(self, handler: Callable[..., Any], *args: Any) -> None:
        async def run() -> None:
            try:
                result = handler(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("ChatWars: a late-reply handler failed")

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---------------------------------------------------------------- outbound

    async def call(self, request: Request[R], *, timeout: float | None = None) -> R:
        """Send one request and return its typed result, or raise its typed error."""
        timeout = self.timeout if timeout is None else timeout
        deadline = asyncio.get_running_loop().time() + timeout
        await self._wait_first_attempt(deadline)
        sending = False
        try:
            async with asyncio.timeout_at(deadline):
                async with self._correlator.serial(request):
                    await self._limiter.acquire()
                    sending = True
                    reply = await self._send_and_wait(request)
        except TimeoutError:
            if not sending:
                # Still queued behind an unanswered request of the same player: certainly
                # not sent, which for money is not the same as "unknown".
                raise ChatWarsNotSent(
                    "an earlier request for this player is still unanswered; nothing was sent"
                ) from None
            raise ChatWarsTimeout(request.action, timeout) from None
        try:
            result = request.parse(reply)
        except ChatWarsError as exc:
            self._remember(request, exc)
            raise
        self._remember(request, result)
        return result

    async def _send_and_wait(self, request: Request[Any]) -> Reply:
        exchange = self._exchange
        if exchange is None or not self.connected:
            raise ChatWarsNotConnected(self._reason or "not connected")
        import aio_pika  # loaded already: there is an exchange, so a connection was made
        from aio_pika.exceptions import (
            AMQPError,
            ChannelInvalidStateError,
            ChannelNotFoundEntity,
            DeliveryError,
        )

        pending = self._correlator.add(request)
        maybe_sent = False
        try:
            body = json.dumps(request.body(), ensure_ascii=False, separators=(",", ":"))
            message = aio_pika.Message(
                body.encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            maybe_sent = True
            try:
                await exchange.publish(
                    message, routing_key=self.routing.routing_key, mandatory=True
                )
            except (ChannelInvalidStateError, DeliveryError, ChannelNotFoundEntity) as exc:
                # Certainly not delivered: the channel was already gone, or the broker
                # returned the message (nothing consumes the routing key).
                self._correlator.discard(pending)
                maybe_sent = False
                raise ChatWarsNotConnected(self._describe(exc)) from None
            except (AMQPError, ConnectionError) as exc:
                # It may have reached the broker before the connection broke; its reply
                # will still come after the reconnect, so keep waiting until the timeout.
                log.warning(
                    "ChatWars: %s interrupted while publishing (%s); waiting for its reply",
                    request.action,
                    self._describe(exc),
                )
            return await pending.future
        except BaseException:
            if maybe_sent:
                # Keep it as a ghost for its late reply; and if it asked the player for a
                # permission, count it as asked, so we do not ask twice.
                self._correlator.abandon(pending)
                self._remember(request, None)
            raise

    def _remember(self, request: Request[Any], outcome: Any) -> None:
        """Keep track of permission requests, so a player is not asked twice in a row."""
        if isinstance(request, AuthAdditionalOperation):
            user_id, operation = request.user.user_id, request.operation
            if isinstance(outcome, OperationRequest):
                self.asks.put(user_id, operation, Asked(self._clock(), outcome))
            elif outcome is None and self.asks.get(user_id, operation) is None:
                # Timed out: the player may have been asked; count it as asking.
                self.asks.put(user_id, operation, Asked(self._clock(), None))
        elif isinstance(request, GrantAdditionalOperation) and isinstance(
            outcome, OperationGranted
        ):
            self.asks.drop_request(request.operation_request_id)

    # ---------------------------------------------------------------- actions

    @staticmethod
    def new_transaction_id() -> str:
        """A fresh unique id for the ledger to store before sending a payment or payout."""
        return str(uuid.uuid4())

    async def create_auth_code(self, telegram_id: int) -> AuthCodeSent:
        """Ask the game to send the player a code granting us access."""
        return await self.call(CreateAuthCode(telegram_id))

    async def grant_token(self, telegram_id: int, auth_code: str) -> GrantedToken:
        """Trade the player's code for their access token (store it encrypted)."""
        return await self.call(GrantToken(telegram_id, auth_code))

    async def auth_additional_operation(self, user: UserToken, operation: str) -> OperationRequest:
        """Ask the player to allow ``operation``, at most once per cool-down per operation.

        Raises OperationRequestPending (carrying the earlier request) within the cool-down:
        the document warns that repeating this request is sanctioned.
        """
        request = AuthAdditionalOperation(user, operation)
        key = (user.user_id, operation)
        lock = self._asking.setdefault(key, asyncio.Lock())
        async with lock:
            asked = self.asks.get(user.user_id, operation)
            if asked is not None:
                # A clock set back makes ``elapsed`` negative: still within the cool-down.
                elapsed = max(0.0, self._clock() - asked.at)
                if elapsed < self.operation_cooldown:
                    raise OperationRequestPending(
                        operation, user.user_id, self.operation_cooldown - elapsed, asked.request
                    )
                self.asks.drop(user.user_id, operation)
            return await self.call(request)

    def pending_operation_request(self, user_id: int) -> OperationRequest | None:
        """The newest permission request sent to this player and not yet granted, if any
        (within the cool-down): a code the player sends next most likely completes it."""
        now = self._clock()
        found = [
            asked
            for asked in self.asks.of_user(user_id)
            if asked.request and now - asked.at < self.operation_cooldown
        ]
        found.sort(key=lambda asked: asked.at)
        return found[-1].request if found else None

    async def grant_additional_operation(
        self, user: UserToken, request_id: str, auth_code: str
    ) -> OperationGranted:
        """Complete a permission request with the code the player sent us."""
        return await self.call(GrantAdditionalOperation(user, request_id, auth_code))

    async def authorize_payment(
        self, user: UserToken, pouches: int, transaction_id: str
    ) -> PaymentAuthorized:
        """Hold ``pouches`` on the player's account; the game sends them a confirmation code."""
        return await self.call(AuthorizePayment(user, pouches, transaction_id))

    async def pay(
        self, user: UserToken, pouches: int, confirmation_code: str, transaction_id: str
    ) -> PaymentDone:
        """Take the held pouches, with the code the player confirmed and the same id."""
        return await self.call(Pay(user, pouches, confirmation_code, transaction_id))

    async def payout(
        self, user: UserToken, pouches: int, transaction_id: str, message: str = ""
    ) -> PayoutDone:
        """Send pouches from the app's balance to the player.

        ``message`` is plain text; it is HTML-escaped and must stay within 100 symbols. After
        a timeout, retry with the same ``transaction_id``: a DuplicateTransaction then means
        the first attempt went through.
        """
        return await self.call(Payout(user, pouches, transaction_id, message))

    async def get_info(self) -> AppInfo:
        """The app's balance, in gold."""
        return await self.call(GetInfo())

    async def request_profile(self, user: UserToken) -> Profile:
        """The player's profile (raises Forbidden until GetUserProfile is allowed)."""
        return await self.call(RequestProfile(user))

    async def request_stock(self, user: UserToken) -> Stock:
        """The player's stock (raises Forbidden until GetStock is allowed)."""
        return await self.call(RequestStock(user))

    # Beyond the v0.5 document: the actions the public clients use (see requests.py).

    async def request_basic_info(self, user: UserToken) -> BasicInfo:
        """The player's class, attack and defence."""
        return await self.call(RequestBasicInfo(user))

    async def request_gear_info(self, user: UserToken) -> Gear:
        """What the player wears (raises Forbidden until GetGearInfo is allowed)."""
        return await self.call(RequestGearInfo(user))

    async def guild_info(self, user: UserToken) -> GuildInfo:
        """The player's guild and its stock (Forbidden names the operation it needs)."""
        return await self.call(GuildInfoRequest(user))

    async def view_craftbook(self, user: UserToken) -> Craftbook:
        """The recipes the player knows (Forbidden names the operation it needs)."""
        return await self.call(ViewCraftbook(user))

    async def want_to_buy(
        self,
        user: UserToken,
        item_code: str,
        quantity: int,
        price: int,
        transaction_id: str,
        *,
        exact_price: bool = False,
    ) -> BuyOrderPlaced:
        """Place an exchange buy order with the player's gold (needs TradeTerminal).

        Never re-sent by itself: the game takes no transactionId for it, so a second send
        could buy twice. ``transaction_id`` is the ledger row's, for a late reply to find it.
        """
        return await self.call(
            WantToBuy(user, item_code, quantity, price, transaction_id, exact_price)
        )
