"""The DeepBot websocket client: one registered connection, many calls in flight.

DeepBot's replies carry no request id, only the function and the user name. Calls are
therefore queued per (function, lower-cased user) and each reply completes the oldest call
waiting on its key: the server answers in order, so hundreds of calls, also for the same
user, can share one connection without mixing answers. Matching is a dict lookup and a
``popleft``; a call costs one future and one timer, no task.

DeepBot may not answer at all (unknown users, requests it does not understand), so every
call has a deadline. A call that gave up leaves a short-lived placeholder in its queue: if
its answer arrives late, the placeholder swallows it instead of handing it to the next
caller for the same key. Placeholders expire after ``late_reply_grace`` seconds so a request
DeepBot never answers cannot shift every later answer by one. A call that gave up after a
placeholder ahead of it swallowed an answer leaves none itself (the swallowed answer may have
been its own); otherwise retries arriving within the grace would each lose their answer to the
previous retry's placeholder, for as long as they keep coming.

A background task keeps the connection: it connects, registers with the secret, reads, and
reconnects with :func:`bot.backoff.backoff_delays` when the connection drops. Calls made
while it is down fail at once with :class:`DeepBotNotConnected`. A refused secret stops the
task: retrying the same secret cannot succeed, and a silent retry loop would hide the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bot.backoff import backoff_delays

from .errors import (
    AuthenticationFailed,
    ConnectionLost,
    DeepBotError,
    DeepBotNotConnected,
    DeepBotTimeout,
    InvalidArgument,
    UserNotFound,
)
from .models import DeepBotUser, parse_number, parse_user
from .protocol import (
    ADD_POINTS,
    ADD_TO_ESCROW,
    ALL_USERS,
    CANCEL_ESCROW,
    COMMIT_USER_ESCROW,
    DEL_POINTS,
    GET_HOURS,
    GET_POINTS,
    GET_RANK,
    GET_USER,
    MSG_NOT_AUTHORIZED,
    REGISTER,
    SET_POINTS,
    SET_VIP,
    check_points,
    check_user,
    check_vip_days,
    check_vip_level,
    encode_request,
    error_for,
    is_success,
    parse_reply,
    unexpected,
)
from .transfer import run_transfer

if TYPE_CHECKING:
    from .config import DeepBotConfig

log = logging.getLogger(__name__)

DEFAULT_URL = "ws://127.0.0.1:3337"
DEFAULT_TIMEOUT = 5.0


class ConnectionState(enum.Enum):
    """Where the connection stands, for the ``status`` command and for tests."""

    IDLE = "idle"  # not started
    CONNECTING = "connecting"
    CONNECTED = "connected"  # registered, calls go through
    DISCONNECTED = "disconnected"  # waiting to retry
    AUTH_FAILED = "auth_failed"  # the secret was refused; not retrying
    CLOSED = "closed"


class _Slot:
    """One call waiting for its reply; after the call gives up, a placeholder until ``expires``.

    ``shadowed`` marks a call behind which a placeholder swallowed an answer: that answer
    may have been this call's own, so when this call gives up it leaves no placeholder.
    """

    __slots__ = ("expires", "future", "shadowed")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.expires = math.inf
        self.shadowed = False


_Pending = dict[tuple[str, str], deque[_Slot]]

_CONNECT_ERRORS = (OSError, TimeoutError, WebSocketException)


def check_url(url: str) -> str:
    """Refuse anything but a ws:// or wss:// URL with a host, with a message saying so."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise InvalidArgument(f"{url!r} is not a ws:// or wss:// URL.")
    return url


def _without_credentials(url: str) -> str:
    """``ws://user:pass@host:1/`` -> ``ws://host:1/``: a URL may carry a password."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def check_secret(secret: str) -> str:
    """Refuse a secret that would break the register frame, without echoing the secret."""
    if not secret:
        raise InvalidArgument("The DeepBot API secret is empty.")
    if "|" in secret or any(not c.isprintable() for c in secret):
        raise InvalidArgument(
            "The DeepBot API secret cannot contain '|', line breaks or control characters."
        )
    return secret


class DeepBotClient:
    """A DeepBot API consumer; ``async with DeepBotClient(url, secret) as client: ...``.

    ``timeout`` bounds every call (and the registration); ``connect_timeout`` bounds how long
    :meth:`connect` waits for the first registered connection. ``reconnect_base`` and
    ``reconnect_cap`` shape the backoff between connection attempts.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        secret: str | SecretStr = "",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float | None = None,
        late_reply_grace: float | None = None,
        reconnect_base: float = 0.2,
        reconnect_cap: float = 15.0,
        ping_interval: float | None = 20.0,
    ) -> None:
        if not (timeout > 0 and math.isfinite(timeout)):
            raise InvalidArgument("The DeepBot timeout must be a positive number of seconds.")
        self.url = check_url(url)
        #: The URL as messages and logs show it: credentials in it are never echoed.
        self.display_url = _without_credentials(self.url)
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        self._secret = check_secret(raw)
        self.timeout = timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else timeout * 2
        self.late_reply_grace = late_reply_grace if late_reply_grace is not None else timeout
        self._backoff: Callable[[], Iterator[float]] = lambda: backoff_delays(
            base=reconnect_base, cap=reconnect_cap
        )
        self._ping_interval = ping_interval
        self._state = ConnectionState.IDLE
        self._changed = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._pending: _Pending = {}
        self._runner: asyncio.Task[None] | None = None
        self._auth_error: AuthenticationFailed | None = None
        # One lock per giver (lower-cased), with the number of transfers using it.
        self._transfer_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._closing = False
        #: The last reason the connection failed, in plain language (for ``status``).
        self.last_error: str | None = None
        #: Frames that were not replies (DeepBot's pushes); counted, never parsed further.
        self.ignored_frames = 0
        #: Successful registrations so far; a reconnect shows as this growing.
        self.registrations = 0
        #: ``time.monotonic()`` of the last call DeepBot left unanswered (for ``status``).
        self.last_timeout: float | None = None

    @classmethod
    def from_config(
        cls, config: DeepBotConfig, *, url: str | None = None, secret: str | None = None
    ) -> Self:
        """Build a client from the plugin's config; ``url``/``secret`` override it, which
        simulate mode needs (the in-process simulator's address and made-up secret)."""
        return cls(
            url or config.url,
            secret or config.secret_value() or "",
            timeout=config.timeout,
            reconnect_base=config.reconnect_min_delay,
            reconnect_cap=config.reconnect_max_delay,
        )

    def __repr__(self) -> str:
        return f"<DeepBotClient {self.display_url} {self._state.value}>"

    # --- connection ----------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state is ConnectionState.CONNECTED

    async def start(self) -> None:
        """Start keeping a connection in the background; returns at once."""
        if self._runner is not None and not self._runner.done():
            return
        self._auth_error = None
        self._closing = False
        self._set_state(ConnectionState.CONNECTING)
        self._runner = asyncio.get_running_loop().create_task(
            self._run(), name=f"deepbot-client {self.display_url}"
        )

    async def connect(self, within: float | None = None) -> None:
        """Start and wait for a registered connection.

        Raises :class:`AuthenticationFailed` if the secret is refused and
        :class:`DeepBotNotConnected` if no connection came up in time; in the latter case
        the client keeps trying in the background until :meth:`close`.
        """
        await self.start()
        await self.wait_connected(self.connect_timeout if within is None else within)

    async def wait_connected(self, within: float | None = None) -> None:
        """Wait up to ``within`` seconds (``None``: no limit) until the connection is
        registered (again); see :meth:`connect` for what it raises."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while self._state is not ConnectionState.CONNECTED:
            if self._state is ConnectionState.AUTH_FAILED:
                raise self._auth_failed()
            if self._state in (ConnectionState.IDLE, ConnectionState.CLOSED):
                raise self._not_connected()
            changed = self._changed
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise self._not_connected()
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                raise self._not_connected() from None

    async def close(self) -> None:
        """Close the connection and stop reconnecting; pending calls fail. Safe to repeat."""
        runner, self._runner = self._runner, None
        self._closing = True
        if runner is not None and not runner.done():
            runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        self._set_state(ConnectionState.CLOSED)

    async def __aenter__(self) -> Self:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _set_state(self, state: ConnectionState) -> None:
        self._state = state
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _not_connected(self, function: str = "", user: str = "") -> DeepBotError:
        if self._state is ConnectionState.AUTH_FAILED:
            return self._auth_failed(function, user)
        return DeepBotNotConnected(
            "DeepBot is not connected.", code="not_connected", function=function, user=user
        )

    def _auth_failed(self, function: str = "", user: str = "") -> AuthenticationFailed:
        template = self._auth_error
        return AuthenticationFailed(
            template.message if template else "DeepBot refused the API secret.",
            code=template.code if template else None,
            function=function,
            user=user,
        )

    async def _run(self) -> None:
        """Connect, register, read; on any failure wait a backoff delay and start over."""
        delays = self._backoff()
        try:
            while True:
                try:
                    outcome = await self._session()
                except Exception:  # a bug must not end the reconnect loop silently
                    log.exception("DeepBot connection failed unexpectedly")
                    self._lost("The DeepBot connection failed unexpectedly.", None, False)
                    outcome = "failed"
                if outcome == "auth_failed":
                    return
                if outcome == "served":
                    delays = self._backoff()  # a working connection resets the backoff
                await asyncio.sleep(next(delays))
        finally:
            self._ws = None
            self._fail_pending(self._pending, closed=self._closing)

    async def _session(self) -> str:
        """One connection from opening to loss: "failed", "auth_failed" or "served"."""
        loudly = self._state is not ConnectionState.DISCONNECTED
        self._set_state(ConnectionState.CONNECTING)
        try:
            ws = await connect(
                self.url,
                open_timeout=self.timeout,
                close_timeout=min(self.timeout, 2.0),
                ping_interval=self._ping_interval,
                compression=None,
                proxy=None,
            )
        except _CONNECT_ERRORS as exc:
            self._lost(f"DeepBot could not be reached at {self.display_url}.", exc, loudly)
            return "failed"
        try:
            await self._register(ws)
        except AuthenticationFailed as exc:
            await ws.close()
            self._auth_error = exc
            self.last_error = exc.message
            log.error("%s (DeepBot answered %r)", exc.message, exc.code)
            self._set_state(ConnectionState.AUTH_FAILED)
            return "auth_failed"
        except (DeepBotTimeout, ConnectionClosed, OSError) as exc:
            await ws.close()
            self._lost("DeepBot did not accept the registration.", exc, loudly)
            return "failed"
        pending: _Pending = {}
        self._pending, self._ws = pending, ws
        self.registrations += 1
        self.last_error = None
        self._set_state(ConnectionState.CONNECTED)
        log.info("Connected to DeepBot at %s", self.display_url)
        try:
            await self._read(ws, pending)
        finally:
            self._ws = None
            self._fail_pending(pending, closed=self._closing)
            if not self._closing:
                self._lost("The connection to DeepBot was lost.", None, True)
            await ws.close()
        return "served"

    def _lost(self, reason: str, exc: BaseException | None, loudly: bool) -> None:
        self.last_error = reason
        self._set_state(ConnectionState.DISCONNECTED)
        # The first failure of an outage is a warning; the retries that follow are debug.
        level = logging.WARNING if loudly else logging.DEBUG
        if exc is None:
            log.log(level, "%s", reason)
        else:
            log.log(level, "%s (%s: %s)", reason, type(exc).__name__, exc)

    async def _register(self, ws: ClientConnection) -> None:
        await ws.send(encode_request(REGISTER, self._secret))
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    reply = parse_reply(await ws.recv())
                    if reply is None or reply.function != REGISTER:
                        self.ignored_frames += 1
                        continue
                    if is_success(reply.msg):
                        return
                    raise AuthenticationFailed(
                        "DeepBot refused the API secret; check the deepbot secret in the "
                        "bot's config.",
                        code=self._redact(reply.msg),
                        function=REGISTER,
                    )
        except TimeoutError:
            raise DeepBotTimeout(
                "DeepBot did not answer the registration.", function=REGISTER
            ) from None

    def _redact(self, msg: object) -> str:
        text = msg if isinstance(msg, str) else repr(msg)
        return text.replace(self._secret, "***")[:200]

    async def _read(self, ws: ClientConnection, pending: _Pending) -> None:
        """Hand each reply to the oldest call waiting on its key; skip everything else."""
        loop = asyncio.get_running_loop()
        try:
            async for frame in ws:
                reply = parse_reply(frame)
                if reply is None:
                    self.ignored_frames += 1
                    continue
                key = reply.key
                queue = pending.get(key)
                while queue:
                    slot = queue.popleft()
                    if not slot.future.done():
                        slot.future.set_result(reply.msg)
                        break
                    if slot.expires > loop.time():
                        # The late answer of a call that gave up: swallow it. If that call
                        # was never answered, this was the next call's answer instead.
                        for waiting in queue:
                            waiting.shadowed = True
                        break
                else:
                    self.ignored_frames += 1
                if queue is not None and not queue:
                    del pending[key]
                msg = reply.msg
                if isinstance(msg, str) and msg.strip().lower() == MSG_NOT_AUTHORIZED:
                    # DeepBot forgot our registration: reconnect and register again.
                    log.warning("DeepBot no longer knows this connection; registering again")
                    return
        except ConnectionClosed:
            return

    def _fail_pending(self, pending: _Pending, *, closed: bool = False) -> None:
        for (function, user), queue in pending.items():
            for slot in queue:
                if not slot.future.done():
                    if closed:
                        error: DeepBotError = DeepBotNotConnected(
                            "The DeepBot client was closed.",
                            code="closed",
                            function=function,
                            user=user,
                        )
                    else:
                        error = ConnectionLost(
                            "The connection to DeepBot was lost before it answered.",
                            code="connection_lost",
                            function=function,
                            user=user,
                        )
                    slot.future.set_exception(error)
        pending.clear()

    # --- calls ---------------------------------------------------------------------------

    async def _call(self, function: str, user: str, *args: str) -> Any:
        """Send one request and return DeepBot's ``msg`` for it; arguments are validated."""
        ws = self._ws
        if ws is None or self._state is not ConnectionState.CONNECTED:
            raise self._not_connected(function, user)
        loop = asyncio.get_running_loop()
        pending = self._pending
        key = (function, user.lower())
        slot = _Slot(loop.create_future())
        queue = pending.get(key)
        if queue is None:
            queue = pending[key] = deque()
        queue.append(slot)
        timer = loop.call_later(self.timeout, self._time_out, slot, function, user)
        try:
            try:
                await ws.send(encode_request(function, user, *args))
            except ConnectionClosed:
                raise ConnectionLost(
                    "The connection to DeepBot was lost before it answered.",
                    code="connection_lost",
                    function=function,
                    user=user,
                ) from None
            return await slot.future
        finally:
            timer.cancel()
            if not slot.future.done():
                slot.future.cancel()  # nobody will read an error set on it later
            if slot.expires == math.inf and not _answered(slot.future):
                if slot.shadowed:
                    # Its answer may already have been swallowed; another placeholder would
                    # swallow the next call's answer too, and so on while retries keep coming.
                    slot.expires = 0.0
                    _prune(pending, key, loop)
                else:
                    slot.expires = loop.time() + self.late_reply_grace
                    loop.call_later(self.late_reply_grace, _prune, pending, key, loop)

    def _time_out(self, slot: _Slot, function: str, user: str) -> None:
        if not slot.future.done():
            self.last_timeout = time.monotonic()
            slot.future.set_exception(
                DeepBotTimeout(
                    f"DeepBot did not answer in time ({self.timeout:g} s).",
                    code="timeout",
                    function=function,
                    user=user,
                )
            )

    @staticmethod
    def _refused(msg: Any, function: str, user: str) -> DeepBotError:
        return error_for(msg, function=function, user=user) or unexpected(
            msg, function=function, user=user
        )

    async def _number(self, function: str, user: object) -> Decimal:
        name = check_user(user, function=function)
        msg = await self._call(function, name)
        error = error_for(msg, function=function, user=name)
        if error is not None:
            raise error
        number = parse_number(msg)
        if number is None:
            raise unexpected(msg, function=function, user=name)
        return number

    async def _change(self, function: str, user: str, *args: str) -> None:
        msg = await self._call(function, user, *args)
        if not is_success(msg):
            raise self._refused(msg, function, user)

    async def get_user(self, user: str) -> DeepBotUser:
        """The viewer's record: points, watch time, VIP level and expiry, mod level, dates."""
        name = check_user(user, function=GET_USER)
        msg = await self._call(GET_USER, name)
        error = error_for(msg, function=GET_USER, user=name)
        if error is not None:
            raise error
        record = parse_user(msg, requested=name)
        if record is None:
            raise unexpected(msg, function=GET_USER, user=name)
        return record

    async def user_exists(self, user: str) -> bool:
        """Whether DeepBot knows the viewer; a timeout still raises (silence is ambiguous)."""
        try:
            await self.get_user(user)
        except UserNotFound:
            return False
        return True

    async def get_points(self, user: str) -> Decimal:
        """The viewer's spendable balance (escrowed points are not included)."""
        return await self._number(GET_POINTS, user)

    async def get_hours(self, user: str) -> Decimal:
        """The viewer's watch time in hours."""
        return await self._number(GET_HOURS, user)

    async def get_rank(self, user: str) -> str:
        """The viewer's rank name, e.g. "Sergeant - Star 2"."""
        name = check_user(user, function=GET_RANK)
        msg = await self._call(GET_RANK, name)
        error = error_for(msg, function=GET_RANK, user=name)
        if error is not None:
            raise error
        if not isinstance(msg, str) or not msg.strip():
            raise unexpected(msg, function=GET_RANK, user=name)
        return msg.strip()

    async def set_points(self, user: str, points: Decimal | int | float | str) -> None:
        """Set the balance to ``points`` (zero allowed)."""
        name = check_user(user, function=SET_POINTS)
        amount = check_points(points, allow_zero=True, function=SET_POINTS)
        await self._change(SET_POINTS, name, amount)

    async def add_points(self, user: str, points: Decimal | int | float | str) -> None:
        """Add a positive amount to the balance."""
        name = check_user(user, function=ADD_POINTS)
        amount = check_points(points, function=ADD_POINTS)
        await self._change(ADD_POINTS, name, amount)

    async def del_points(self, user: str, points: Decimal | int | float | str) -> None:
        """Take a positive amount from the balance."""
        name = check_user(user, function=DEL_POINTS)
        amount = check_points(points, function=DEL_POINTS)
        await self._change(DEL_POINTS, name, amount)

    async def add_to_escrow(self, user: str, points: Decimal | int | float | str) -> None:
        """Move a positive amount from the balance into escrow (held, not spendable)."""
        name = check_user(user, function=ADD_TO_ESCROW)
        amount = check_points(points, function=ADD_TO_ESCROW)
        await self._change(ADD_TO_ESCROW, name, amount)

    async def commit_user_escrow(self, user: str) -> None:
        """Consume everything the viewer holds in escrow."""
        name = check_user(user, function=COMMIT_USER_ESCROW)
        await self._change(COMMIT_USER_ESCROW, name)

    async def cancel_escrow(self, user: str) -> None:
        """Return the viewer's escrow to their balance; ``"all"`` does it for every viewer."""
        name = check_user(user, function=CANCEL_ESCROW)
        if name.lower() == ALL_USERS:
            name = ALL_USERS
        await self._change(CANCEL_ESCROW, name)

    async def cancel_all_escrow(self) -> None:
        """Return every viewer's escrow to their balance."""
        await self._change(CANCEL_ESCROW, ALL_USERS)

    async def set_vip(self, user: str, level: int, days: int) -> None:
        """Set the VIP level (0/10 normal, 1 bronze, 2 silver, 3 gold) and add ``days``."""
        name = check_user(user, function=SET_VIP)
        await self._change(SET_VIP, name, check_vip_level(level), check_vip_days(days))

    # --- transfers -----------------------------------------------------------------------

    async def transfer(
        self, giver: str, receiver: str, points: Decimal | int | float | str
    ) -> None:
        """Move points from one viewer to another through escrow, so a failure refunds.

        Escrow the giver's points, add them to the receiver, commit the escrow. If DeepBot
        refuses the addition, the escrow is cancelled and :class:`TransferFailed` says the
        points went back. If DeepBot's answer is unknown (timeout, lost connection) after
        the escrow, nothing is undone, because undoing a change that did happen would
        create points: :class:`TransferIncomplete` says what is held and for whom.

        DeepBot cancels and commits a viewer's whole escrow, so transfers from one giver
        are serialised here; other escrow users of the same giver must not run meanwhile.
        """
        from_name = check_user(giver, function=ADD_TO_ESCROW)
        to_name = check_user(receiver, function=ADD_POINTS)
        amount = check_points(points, function=ADD_TO_ESCROW)
        if from_name.lower() == to_name.lower():
            raise InvalidArgument(
                "Points cannot be given to the same user.", function=ADD_TO_ESCROW
            )
        async with self.escrow_guard(from_name):
            await run_transfer(self, from_name, to_name, amount)

    @contextlib.asynccontextmanager
    async def escrow_guard(self, user: str) -> AsyncIterator[None]:
        """Hold the viewer's escrow for the duration of the block.

        DeepBot commits and cancels a viewer's *whole* escrow, so an admin's ``escrow
        commit`` or ``cancel`` landing in the middle of a transfer would settle the
        transfer's points behind its back. Transfers take this guard; so should anything
        else that touches one viewer's escrow. Not reentrant.
        """
        key = user.lower()
        lock, users = self._transfer_locks.get(key) or (asyncio.Lock(), 0)
        self._transfer_locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._transfer_locks[key]
            if users > 1:
                self._transfer_locks[key] = (lock, users - 1)
            else:
                del self._transfer_locks[key]


def _answered(future: asyncio.Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _prune(pending: _Pending, key: tuple[str, str], loop: asyncio.AbstractEventLoop) -> None:
    """Drop expired placeholders at the head of a queue so silent keys do not pile up."""
    queue = pending.get(key)
    if not queue:
        return
    now = loop.time()
    while queue and queue[0].future.done() and queue[0].expires <= now:
        queue.popleft()
    if not queue:
        del pending[key]
