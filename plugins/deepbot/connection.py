"""The DeepBot connection: one registered websocket, many calls in flight, matched by key.

DeepBot's replies carry no request id, only the function and the user name. Calls are
therefore queued per (function, lower-cased user) and each reply completes the oldest call
waiting on its key: the server answers in order, so hundreds of calls, also for the same
user, can share one connection without mixing answers. Matching is a dict lookup and a
``popleft``; a call costs one future and a place in the deadline queue, no task and no timer
of its own: every call gets the same timeout, so deadlines come in the order calls are sent
and one timer, for the oldest, serves them all. A timer per call was made, pushed on the
loop's heap, cancelled and popped again for every call: dropping it took 6-11 µs off a
sequential call's median (about 150 µs) and added 4-13 % to a hundred calls in flight.

DeepBot may not answer at all (unknown users, requests it does not understand), so every
call has a deadline. A call that gave up stays in its queue as an *abandoned* slot: if its
answer arrives late, the slot swallows it, so a late answer can never complete a later call.
Abandoned slots never expire on a clock (expiring them is what once handed a late "failed"
to the next ``add_points``). A new call for a key that still has an abandoned slot waits up
to ``late_reply_grace`` for it to be answered; if it is not, the two answers could not be
told apart, so the connection is recycled (the calls in flight are let finish first) and the
new call goes out on a fresh connection where no old answer can arrive.

A background task keeps the connection: it connects, registers with the secret, reads, and
reconnects with :func:`bot.backoff.backoff_delays` when the connection drops. A call made
while a connection attempt is in progress (for example the first command piped in right at
start-up) waits for it, bounded by the call's timeout; a call made while the client is
waiting to retry fails at once with :class:`DeepBotNotConnected`. Only DeepBot's documented
``incorrect api secret`` stops the task: anything else it answers to ``register`` (``null``,
``{}``, "not authorized", "Server busy") is retried with backoff and shown in ``status``.

Frames are bounded: the websocket layer refuses frames over ``MAX_FRAME_BYTES``, and JSON
nested deeper than ``MAX_DEPTH`` is refused before it is parsed; each bad frame is logged in
one line and skipped.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import SecretStr
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bot import clip
from bot.backoff import backoff_delays

from .errors import (
    AuthenticationFailed,
    ConnectionLost,
    DeepBotError,
    DeepBotNotConnected,
    DeepBotTimeout,
    InvalidArgument,
    RegistrationRefused,
)
from .protocol import (
    MAX_FRAME_BYTES,
    MSG_BAD_SECRET,
    MSG_NOT_AUTHORIZED,
    REGISTER,
    BadFrame,
    Reply,
    encode_request,
    is_success,
    parse_reply,
    request_key,
)
from .wire import WireConnection

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
    """One call waiting for its reply; once the call gave up, an abandoned placeholder that
    swallows the late reply, so it can never answer a later call."""

    __slots__ = ("abandoned", "future")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.abandoned = False


_Pending = dict[tuple[str, str], deque[_Slot]]

_CONNECT_ERRORS = (OSError, TimeoutError, WebSocketException)

#: More abandoned placeholders than this (names DeepBot never answered for) and the
#: connection is recycled to drop them, so silent names cannot grow memory without bound.
MAX_ABANDONED = 1000


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


class DeepBotConnection:
    """One registered DeepBot connection kept up in the background, and request matching;
    :class:`~.client.DeepBotClient` adds the typed calls.

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
        max_frame_bytes: int = MAX_FRAME_BYTES,
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
        self._max_frame_bytes = max_frame_bytes
        self._state = ConnectionState.IDLE
        self._changed = asyncio.Event()
        self._ws: WireConnection | None = None
        self._pending: _Pending = {}
        # Calls waiting for an answer, oldest first, with their deadlines; answered ones are
        # dropped from the front as they finish. One timer is armed for the oldest.
        self._deadlines: deque[tuple[float, _Slot, str, str]] = deque()
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._runner: asyncio.Task[None] | None = None
        self._auth_error: AuthenticationFailed | None = None
        self._closing = False
        # Set while the connection is being recycled to drop abandoned placeholders: no new
        # call is sent on it, and calls wait for the next connection instead of failing.
        self._recycling = False
        self._abandoned = 0
        #: Frames that claimed to be replies but were not (bad JSON, too deep, too big).
        self.bad_frames = 0
        #: Connections recycled because an abandoned reply could not be told apart.
        self.recycles = 0
        self._drainer: asyncio.Task[None] | None = None
        #: The last reason the connection failed, in plain language (for ``status``).
        self.last_error: str | None = None
        #: Frames that were not replies (DeepBot's pushes); counted, never parsed further.
        self.ignored_frames = 0
        #: Successful registrations so far; a reconnect shows as this growing.
        self.registrations = 0
        #: ``time.monotonic()`` of the last call DeepBot left unanswered (for ``status``).
        self.last_timeout: float | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.display_url} {self._state.value}>"

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
                if outcome == "recycled":
                    continue  # on purpose: reconnect at once, callers are waiting
                if outcome == "served":
                    delays = self._backoff()  # a working connection resets the backoff
                await asyncio.sleep(next(delays))
        finally:
            self._ws = None
            self._recycling = False
            self._fail_pending(self._pending, closed=self._closing)
            if self._deadline_timer is not None:
                self._deadline_timer.cancel()
                self._deadline_timer = None
            self._deadlines.clear()

    async def _session(self) -> str:
        """One connection from opening to loss: "failed", "auth_failed", "recycled" or
        "served"."""
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
                max_size=self._max_frame_bytes,
                create_connection=WireConnection,
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
        except RegistrationRefused as exc:
            await ws.close()
            self._lost(exc.message, None, True)
            return "failed"
        except (DeepBotTimeout, ConnectionClosed, OSError) as exc:
            await ws.close()
            self._lost("DeepBot did not accept the registration.", exc, loudly)
            return "failed"
        pending: _Pending = {}
        self._pending, self._ws = pending, ws
        self._abandoned = 0
        self._recycling = False
        self.registrations += 1
        self.last_error = None
        self._set_state(ConnectionState.CONNECTED)
        log.info("Connected to DeepBot at %s", self.display_url)
        try:
            await self._read(ws, pending)
        finally:
            self._ws = None
            recycled = self._recycling and not self._closing
            self._fail_pending(pending, closed=self._closing)
            if recycled:
                self._set_state(ConnectionState.CONNECTING)
            elif not self._closing:
                self._lost("The connection to DeepBot was lost.", None, True)
            await ws.close()
        return "recycled" if recycled else "served"

    def _lost(self, reason: str, exc: BaseException | None, loudly: bool) -> None:
        self.last_error = reason
        self._recycling = False
        self._set_state(ConnectionState.DISCONNECTED)
        # The first failure of an outage is a warning; the retries that follow are debug.
        level = logging.WARNING if loudly else logging.DEBUG
        if exc is None:
            log.log(level, "%s", reason)
        else:
            log.log(level, "%s (%s: %s)", reason, type(exc).__name__, exc)

    async def _register(self, ws: WireConnection) -> None:
        """Register with the secret. Only DeepBot's documented "incorrect api secret" is a
        final refusal; any other answer may be a busy or restarting DeepBot, so it raises
        :class:`RegistrationRefused` and the connection is retried with backoff."""
        await ws.send(encode_request(REGISTER, self._secret))
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    try:
                        reply = parse_reply(await ws.recv())
                    except BadFrame as exc:
                        self._bad_frame(exc)
                        continue
                    if reply is None or reply.function != REGISTER:
                        self.ignored_frames += 1
                        continue
                    if is_success(reply.msg):
                        return
                    answer = self._redact(reply.msg)
                    if isinstance(reply.msg, str) and reply.msg.strip().lower() == MSG_BAD_SECRET:
                        raise AuthenticationFailed(
                            "DeepBot refused the API secret; check the deepbot secret in the "
                            "bot's config.",
                            code=answer,
                            function=REGISTER,
                        )
                    said = clip(answer, 60)
                    raise RegistrationRefused(
                        f"DeepBot did not accept the registration (it answered {said!r}).",
                        code=answer,
                        function=REGISTER,
                    )
        except TimeoutError:
            raise DeepBotTimeout(
                "DeepBot did not answer the registration.", function=REGISTER
            ) from None

    def _redact(self, msg: object) -> str:
        text = msg if isinstance(msg, str) else repr(msg)
        return text[:1000].replace(self._secret, "***")[:200]

    def _bad_frame(self, exc: Exception) -> None:
        self.bad_frames += 1
        log.warning("Skipped a malformed frame from DeepBot: %s", exc)

    async def _read(self, ws: WireConnection, pending: _Pending) -> None:
        """Hand each reply to the oldest call waiting on its key; skip everything else.

        Replies are matched as they arrive (``ws.on_text``, inside the websocket's
        ``data_received``), which saves the reader task's hop per reply; this loop takes the
        frames the fast path declines, in order (see :mod:`.wire`), and ends with the
        connection."""
        ws.on_text = lambda frame: self._on_frame(frame, pending)
        try:
            async for frame in ws:
                if self._take(frame, pending):
                    # DeepBot forgot our registration: reconnect and register again.
                    log.warning("DeepBot no longer knows this connection; registering again")
                    return
        except ConnectionClosed as exc:
            if 1009 in (getattr(exc.sent, "code", None), getattr(exc.rcvd, "code", None)):
                self._bad_frame(ValueError(f"a frame over {self._max_frame_bytes} bytes"))
            return
        finally:
            ws.on_text = None

    def _on_frame(self, frame: str, pending: _Pending) -> bool:
        """The fast path: match a reply where it arrives. A "not authorized" is declined
        (returns False) so the reader takes it and ends the connection."""
        try:
            reply = parse_reply(frame)
        except BadFrame as exc:
            self._bad_frame(exc)
            return True
        if reply is not None and _not_authorized(reply.msg):
            return False
        self._match(reply, pending)
        return True

    def _take(self, frame: str | bytes, pending: _Pending) -> bool:
        """Match one frame the reader took; True when DeepBot says we are not registered."""
        try:
            reply = parse_reply(frame)
        except BadFrame as exc:
            self._bad_frame(exc)
            return False
        self._match(reply, pending)
        return reply is not None and _not_authorized(reply.msg)

    def _match(self, reply: Reply | None, pending: _Pending) -> None:
        if reply is None:
            self.ignored_frames += 1
            return
        key = reply.key
        queue = pending.get(key)
        if queue:
            slot = queue.popleft()
            if slot.abandoned:
                # The late answer of a call that gave up: swallowed, never passed on.
                self._abandoned -= 1
                self._changed_key()
            elif not slot.future.done():
                slot.future.set_result(reply.msg)
            if not queue:
                del pending[key]
        else:
            self.ignored_frames += 1

    def _changed_key(self) -> None:
        # Wakes calls waiting for an abandoned placeholder ahead of them to be answered.
        self._set_state(self._state)

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

    async def _wait_change(self, deadline: float) -> bool:
        """Wait for the next state change (or a placeholder answered); False at ``deadline``."""
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        changed = self._changed
        try:
            async with asyncio.timeout(remaining):
                await changed.wait()
        except TimeoutError:
            return False
        return True

    async def _ready(self, function: str, user: str, deadline: float) -> None:
        """Return once calls can be sent. A connection attempt in progress (or a recycle) is
        waited for until ``deadline``; a client waiting to retry fails at once."""
        while True:
            state = self._state
            if state is ConnectionState.CONNECTED and not self._recycling and self._ws is not None:
                return
            if state is not ConnectionState.CONNECTING and not self._recycling:
                raise self._not_connected(function, user)
            if not await self._wait_change(deadline):
                raise self._not_connected(function, user)

    async def _clear_key(
        self, key: tuple[str, str], function: str, user: str, deadline: float
    ) -> None:
        """Make sure no abandoned placeholder sits on ``key`` before a call is sent on it.

        Waits up to ``late_reply_grace`` for the late answer; if it has not come, the next
        answer on this key could be either call's, so the connection is recycled.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        # Half the call's time at most: the other half is for the recycle and the answer.
        grace = min(now + (deadline - now) / 2, now + self.late_reply_grace)
        while True:
            await self._ready(function, user, deadline)
            queue = self._pending.get(key)
            if not queue or not any(slot.abandoned for slot in queue):
                if self._abandoned <= MAX_ABANDONED:
                    return
            elif await self._wait_change(grace):
                continue
            await self._recycle(deadline)

    async def _recycle(self, deadline: float) -> None:
        """Close the connection once the calls still waiting on it are answered (or time
        out), so abandoned placeholders go with it; the reader reconnects at once."""
        ws = self._ws
        if ws is None:
            return
        if not self._recycling:
            self._recycling = True
            self.recycles += 1
            log.info("Reconnecting to DeepBot to drop %d unanswered request(s)", self._abandoned)
            self._set_state(self._state)
            self._drainer = asyncio.get_running_loop().create_task(self._drain_and_close(ws))
        while self._recycling and self._ws is ws:
            if not await self._wait_change(deadline):
                return

    async def _drain_and_close(self, ws: WireConnection) -> None:
        live = [
            slot.future
            for queue in self._pending.values()
            for slot in queue
            if not slot.abandoned and not slot.future.done()
        ]
        if live:
            await asyncio.wait(live, timeout=self.timeout)
        await ws.close()

    async def _call(self, function: str, user: str, *args: str) -> Any:
        """Send one request and return DeepBot's ``msg`` for it; arguments are validated.

        ``user`` is the name the reply will carry (empty for calls without one).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        key = request_key(function, user)
        if not (
            self._abandoned == 0
            and self._state is ConnectionState.CONNECTED
            and not self._recycling
            and self._ws is not None
        ):  # the common case skips the waits: connected, no placeholder anywhere
            await self._clear_key(key, function, user, deadline)
        ws = self._ws
        if ws is None:  # pragma: no cover - _clear_key returned on a live connection
            raise self._not_connected(function, user)
        pending = self._pending
        slot = _Slot(loop.create_future())
        queue = pending.get(key)
        if queue is None:
            queue = pending[key] = deque()
        queue.append(slot)
        deadlines = self._deadlines
        timer: asyncio.TimerHandle | None = None
        if not deadlines or deadlines[-1][0] <= deadline:
            deadlines.append((deadline, slot, function, user))
            if self._deadline_timer is None:
                self._deadline_timer = loop.call_at(deadline, self._expire, deadline)
        else:  # it waited (see _clear_key) while later calls went out: a timer of its own
            timer = loop.call_at(deadline, self._time_out, slot, function, user)
        try:
            try:
                frame = encode_request(function, *((user,) if user else ()), *args)
                await ws.send_text(frame)
            except ConnectionClosed:
                raise ConnectionLost(
                    "The connection to DeepBot was lost before it answered.",
                    code="connection_lost",
                    function=function,
                    user=user,
                ) from None
            return await slot.future
        finally:
            if timer is not None:
                timer.cancel()
            if not slot.future.done():
                slot.future.cancel()  # nobody will read an error set on it later
            if not _answered(slot.future) and pending is self._pending and slot in queue:
                slot.abandoned = True
                self._abandoned += 1
            while deadlines and deadlines[0][1].future.done():
                deadlines.popleft()  # finished calls leave the front of the deadline queue

    def _expire(self, due: float) -> None:
        """The oldest deadline came (the timer armed for ``due``): time out every call whose
        deadline passed, then arm the timer for the oldest call still waiting."""
        self._deadline_timer = None
        loop = asyncio.get_running_loop()
        now = max(loop.time(), due)  # the loop may run a timer a hair before its time
        deadlines = self._deadlines
        while deadlines:
            deadline, slot, function, user = deadlines[0]
            if slot.future.done():
                deadlines.popleft()
            elif deadline <= now:
                deadlines.popleft()
                self._time_out(slot, function, user)
            else:
                self._deadline_timer = loop.call_at(deadline, self._expire, deadline)
                return

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


def _not_authorized(msg: object) -> bool:
    return isinstance(msg, str) and msg.strip().lower() == MSG_NOT_AUTHORIZED


def _answered(future: asyncio.Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None
