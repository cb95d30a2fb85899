"""One websocket connection to the games API: connection keeping, login and reply matching.

Why it is shaped like this:

* **Replies carry no request id.** A call waits for the codes :data:`.wire.OPS` lists as its
  replies; a call about one game (``per_game``) takes only replies naming that game, other
  calls take the oldest matching code. Every other frame is a published event. A call that
  times out stays registered for one more ``timeout`` as a placeholder, so its late reply is
  swallowed instead of answering a newer call for the same game.
* **An error (666) names no request.** It fails a call only when it can be pinned on one: the
  oldest call for the game it names, or, without a game id, the only call waiting. Anything
  else fails nobody (a stray error would otherwise fail every unrelated call in flight): it
  is logged, and a call that then times out says an error arrived meanwhile. Even a pinned
  error waits ``error_grace`` seconds before it fails the call: the server answers a
  connection's requests in order, so if the call's own reply follows, the error was stray.
* **The server is not trusted.** Frames are bounded in size (``max_size``, an oversized frame
  drops the connection, which is then re-established) and in JSON nesting (checked before
  any reader walks a frame); a bad frame costs one log line, never a traceback or the link.
* **Keep-alive is the websocket protocol's ping**, not op 1 (which the protocol document does
  not list): an unanswered ping closes the link and the run loop reconnects.
* **Login.** The header's ``session_key`` goes on every request (the document). With a
  ``user_id`` the connection also opens the vendor's way, ``?id=&n=&h=`` with a fresh nonce
  per connection, and sends logon (op 100) before anything else; a refused handshake or logon
  is kept in :attr:`GamesConnection.last_error` for ``status``.

The connection is kept by a background task that reconnects with :func:`bot.backoff_delays`
and joins again every game it had joined, so alerts resume after an outage. Calls made while
disconnected fail at once with :class:`NotConnected`; a call is never re-sent on its own,
since creating or closing a game twice is worse than asking the user to retry.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bot import clip
from bot.backoff import backoff_delays

from . import wire
from .errors import GamesError, GamesInputError, GamesNotConnected, GamesRefused, GamesTimeout
from .events import GameEvent, RejoinFailed, read_event
from .models import check_id

log = logging.getLogger(__name__)
#: websockets logs every frame at DEBUG, and every request carries the session key: its
#: logger for our connections never passes anything below INFO.
wire_log = logging.getLogger(f"{__name__}.wire")
wire_log.addFilter(lambda record: record.levelno >= logging.INFO)

Listener = Callable[[GameEvent], Awaitable[None] | None]

# A close that left manual pools gets no 341; the pending call resolves to this marker once the
# 368s stop arriving, so the identity check in the client cannot collide with a real reply.
SETTLED: dict[str, Any] = {}

# A session shorter than this does not reset the backoff: a server that accepts and drops at
# once must not be hammered.
_STABLE_SESSION = 1.0

# How many distinct events (and games' last details) are remembered to drop repeats; stray
# pushes about unknown games must not grow memory without bound.
_SEEN_LIMIT = 512

# HTTP statuses of a handshake that mean "your login is wrong", not "the service is down".
_LOGIN_REFUSED = frozenset({401, 403})


@dataclass(eq=False)
class _Pending:
    """One call waiting for its reply; ``collect_on`` codes are gathered without finishing it."""

    op: int
    done_on: frozenset[int]
    game_id: str | None
    future: asyncio.Future[dict[str, Any]]
    collect_on: frozenset[int] = frozenset()
    settle_on: frozenset[int] = frozenset()
    settle: float = 0.0
    collected: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    settle_handle: asyncio.TimerHandle | None = None
    # Timed out: kept only to swallow the late reply (or error) meant for it.
    abandoned: bool = False
    # The text of an error no call could be pinned on that arrived while this one waited.
    stray_error: str | None = None
    # A 666 pinned on this call, held for ``error_grace`` in case the real reply follows.
    refusal: GamesRefused | None = None
    refusal_handle: asyncio.TimerHandle | None = None

    def accepts(self, res: int) -> bool:
        return res in self.done_on or res in self.collect_on

    def settle_now(self) -> None:
        if not self.future.done():
            self.future.set_result(SETTLED)


class GamesConnection:
    """A long-lived connection to the games API: start, stop, call, and pushed events.

    :class:`.client.GamesClient` adds the typed calls. Events go to listeners added with
    :meth:`add_listener`; a listener should be quick (an async one is run as its own task),
    since it is called from the frame reader.
    """

    def __init__(
        self,
        url: str,
        session_key: str,
        *,
        user_id: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 10.0,
        ping_interval: float = 25.0,
        close_settle: float = 1.0,
        error_grace: float = 0.25,
        reconnect_base: float = 0.2,
        reconnect_cap: float = 15.0,
        max_frame_bytes: int = wire.MAX_FRAME_BYTES,
    ) -> None:
        if not isinstance(session_key, str) or not session_key.strip():
            raise ValueError("the games session key must not be empty")
        if min(timeout, connect_timeout, ping_interval, close_settle) <= 0:
            raise ValueError("games client intervals must be positive")
        self.url = wire.check_ws_url(url)
        self._session_key = session_key.strip()
        self.user_id = check_id(str(user_id), "user id") if user_id is not None else None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.close_settle = close_settle
        self.error_grace = max(error_grace, 0.0)
        self.max_frame_bytes = max_frame_bytes
        self._reconnect_base = reconnect_base
        self._reconnect_cap = reconnect_cap

        self._ws: ClientConnection | None = None
        self._ready = asyncio.Event()
        self._attempted = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._pending: list[_Pending] = []
        self._joined: dict[str, None] = {}
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_details: OrderedDict[str, str] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.connections = 0
        self.last_error: str | None = None
        #: True while the service refuses our login (handshake 401/403 or logon 110)
        self.login_refused = False
        #: frames dropped as unreadable (bad JSON, too deep, no res code), for tests and logs
        self.bad_frames = 0
        #: 666 errors that could not be pinned on one call and so failed none
        self.stray_errors = 0

    # ------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        """True once connected, logged on and done re-joining; calls may be made."""
        return self._ws is not None and self._ready.is_set()

    @property
    def running(self) -> bool:
        """True while the background task keeps (or tries to keep) a connection."""
        return self._runner is not None and not self._runner.done()

    @property
    def joined_games(self) -> frozenset[str]:
        """Games this client joined; they are joined again after every reconnect."""
        return frozenset(self._joined)

    @property
    def starting(self) -> bool:
        """True until the first connection attempt succeeded or failed: a caller may wait for
        it, whereas once the service is known to be down it should fail fast."""
        return self.running and not self._attempted.is_set()

    def start(self) -> None:
        """Start keeping a connection in the background without waiting for it, so a bot can
        start while the API is unreachable; :meth:`close` stops it."""
        if self._runner is None or self._runner.done():
            self._closing = False
            self._runner = asyncio.create_task(self._run(), name="games-client")

    async def connect(self) -> None:
        """Start the connection and wait until it is up.

        On failure this raises :class:`NotConnected` but keeps trying in the background (the
        API may come back later); :meth:`close` stops it.
        """
        self.start()
        await self.wait_ready()

    def keep_joined(self, game_ids: Iterable[str]) -> None:
        """Treat these games as joined, so the next (re)connect joins them.

        This is how a restarted bot resumes the alerts its chats followed: call it before
        :meth:`start`. A game that cannot be joined any more is reported as
        :class:`RejoinFailed`; an id that is not valid is skipped.
        """
        for game_id in game_ids:
            try:
                self._joined[check_id(game_id)] = None
            except GamesInputError:
                log.warning("games: skipped a stored game id that is not valid")

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` (default ``connect_timeout``) until connected and re-joined
        (after a reconnect, alerts flow again from then on)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout or self.connect_timeout)
        except TimeoutError:
            raise self._not_connected() from None

    async def wait_first_attempt(self, timeout: float | None = None) -> None:
        """Wait, at most ``timeout`` (default: the call timeout), for the first connection
        attempt to end; :class:`NotConnected` with the reason if it did not connect.

        A command that arrives during start-up (the first line of a piped script) waits here
        instead of being told "not connected" while the connection is still being made.
        """
        if self.connected:
            return
        try:
            await asyncio.wait_for(self._attempted.wait(), timeout or self.timeout)
        except TimeoutError:
            pass
        if not self.connected:
            raise self._not_connected()

    def _not_connected(self) -> GamesNotConnected:
        if self.login_refused and self.last_error:
            return GamesNotConnected(f"The games service {self.last_error}.")
        return GamesNotConnected(
            f"Could not connect to the games service at {wire.safe_url(self.url)}."
        )

    async def close(self) -> None:
        """Disconnect for good; safe to call twice. Pending calls fail with NotConnected."""
        self._closing = True
        runner, self._runner = self._runner, None
        ws = self._ws
        if ws is not None:
            await ws.close()
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fail_pending()

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every published event; returns a remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # ------------------------------------------------------------ calls

    async def _call(
        self, op: int, body: dict[str, Any], *, game_id: str | None = None
    ) -> dict[str, Any]:
        """Send ``op`` and wait for one of the replies the op table lists for it."""
        pending = await self._send_and_wait(op, body, game_id=game_id)
        return pending.future.result()

    async def _send_and_wait(
        self,
        op: int,
        body: dict[str, Any],
        *,
        game_id: str | None = None,
        settle_on: Iterable[int] = (),
    ) -> _Pending:
        """Send ``op`` and wait; the codes it publishes meanwhile (a close's 362/368) are
        collected on the returned :class:`_Pending`, and a ``settle_on`` code ends the wait
        after ``close_settle`` quiet seconds when no reply comes."""
        ws = self._ws
        if ws is None:
            raise GamesNotConnected(
                "The games service is not connected right now; try again shortly."
            )
        spec = wire.OPS[op]
        pending = _Pending(
            op=op,
            done_on=spec.replies,
            game_id=game_id if spec.per_game else None,
            future=asyncio.get_running_loop().create_future(),
            collect_on=spec.publishes,
            settle_on=frozenset(settle_on),
            settle=self.close_settle,
        )
        self._pending.append(pending)
        try:
            frame = {"header": wire.header(self._session_key), "op": op, **body}
            try:
                await ws.send(json.dumps(frame))
            except ConnectionClosed:
                raise GamesNotConnected(
                    "The games service connection dropped; try again shortly."
                ) from None
            try:
                await asyncio.wait_for(asyncio.shield(pending.future), self.timeout)
            except TimeoutError:
                self._abandon(pending)
                meanwhile = (
                    f" It reported an error meanwhile that may concern it: {pending.stray_error}"
                    if pending.stray_error
                    else ""
                )
                raise GamesTimeout(
                    f"The games service did not answer the {_op_label(op)} request in time."
                    + meanwhile
                ) from None
            return pending
        finally:
            if not pending.abandoned:
                self._forget(pending)

    def _forget(self, pending: _Pending) -> None:
        if pending in self._pending:
            self._pending.remove(pending)
        for handle in (pending.settle_handle, pending.refusal_handle):
            if handle is not None:
                handle.cancel()
        if not pending.future.done():
            pending.future.cancel()

    def _abandon(self, pending: _Pending) -> None:
        """Keep a timed-out call as a placeholder for one more ``timeout``: its late reply
        then lands here instead of answering a newer call for the same game."""
        pending.abandoned = True
        if pending.settle_handle is not None:
            pending.settle_handle.cancel()
        if not pending.future.done():
            pending.future.cancel()
        asyncio.get_running_loop().call_later(self.timeout, self._forget, pending)

    def _match(self, res: int, game_id: str | None) -> _Pending | None:
        """The oldest call expecting ``res``: a call about one game only takes replies that
        name it; other calls take the code alone."""
        for pending in self._pending:
            if not pending.accepts(res):
                continue
            if pending.game_id is None or pending.game_id == game_id:
                return pending
        return None

    # ------------------------------------------------------------ frames

    def _on_frame(self, raw: str | bytes) -> None:
        try:
            message = wire.decode_frame(raw)
        except wire.BadFrame as bad:
            self.bad_frames += 1
            log.warning("games: ignored a frame of %d bytes: %s", len(raw), bad.reason)
            return
        res = wire.read_code(message.get("res"))
        if res is None:
            self.bad_frames += 1
            log.warning("games: ignored a frame without a readable res code")
            return
        game_id = wire.read_id(message.get("game_id"))
        if res == wire.RES_ERROR:
            self._on_error(message, game_id)
            return
        pending = self._match(res, game_id)
        if pending is not None:
            self._deliver(pending, res, message)
        if res in wire.EVENT_CODES and not (
            pending is not None and pending.op == wire.OP_GET_DETAILS
        ):
            self._publish(res, game_id, message)
        elif pending is None:
            log.debug("games: ignored an unexpected reply %s", res)

    def _deliver(self, pending: _Pending, res: int, message: dict[str, Any]) -> None:
        if pending.abandoned:
            if res in pending.done_on:
                self._forget(pending)  # the late reply is swallowed, the slot is free
            return
        if res in pending.done_on:
            if pending.refusal is not None:
                self.stray_errors += 1  # the error pinned on it was not its answer after all
                log.warning("games: an error was followed by the call's own reply: ignored it")
            if not pending.future.done():
                pending.future.set_result(message)
            self._forget(pending)
            return
        pending.collected.append((res, message))
        if res in pending.settle_on or (
            pending.settle_handle is not None and not pending.future.done()
        ):
            if pending.settle_handle is not None:
                pending.settle_handle.cancel()
            pending.settle_handle = asyncio.get_running_loop().call_later(
                pending.settle, pending.settle_now
            )

    def _on_error(self, message: Mapping[str, Any], game_id: str | None) -> None:
        """A 666 names no request: pin it on the oldest call for the game it names, or,
        without a game id, on the only call waiting; otherwise it fails nobody. A pinned
        error fails its call after ``error_grace`` unless the call's reply comes first."""
        text = self._redact(
            next(
                (str(message[k]) for k in ("text", "message", "reason") if message.get(k)),
                "",
            )
        )
        open_calls = [p for p in self._pending if p.refusal is None]
        if game_id is not None:
            target = next((p for p in open_calls if p.game_id == game_id), None)
        else:
            target = open_calls[0] if len(open_calls) == 1 else None
        if target is None:
            self.stray_errors += 1
            log.warning(
                "games: an error no single call can be pinned on failed nothing: %s",
                clip(text or "no text", 200),
            )
            for pending in self._pending:
                pending.stray_error = clip(text or "no reason given", 200)
            return
        if target.abandoned:
            self._forget(target)  # the late error of a call that already timed out
            return
        target.refusal = GamesRefused(text)
        target.refusal_handle = asyncio.get_running_loop().call_later(
            self.error_grace, self._refuse, target
        )

    def _refuse(self, pending: _Pending) -> None:
        """The grace is over and no reply came: the pinned error is the call's answer."""
        if pending in self._pending:
            self._pending.remove(pending)
        if pending.settle_handle is not None:
            pending.settle_handle.cancel()
        if pending.refusal is not None and not pending.future.done():
            pending.future.set_exception(pending.refusal)

    def _publish(self, res: int, game_id: str | None, message: dict[str, Any]) -> None:
        """Hand an event to listeners unless it repeats one already handed on.

        342 is compared with the last details published for the game (an update reaches us
        both as the reply copy and as the subscriber copy); 341/362/368 happen once per game
        or pool, so any exact repeat is dropped.
        """
        fingerprint = json.dumps(
            {k: v for k, v in message.items() if k != "response_header"},
            sort_keys=True,
            default=str,
        )
        if res == wire.RES_DETAILS and game_id is not None:
            if self._last_details.get(game_id) == fingerprint:
                return
            _remember(self._last_details, game_id, fingerprint)
        elif res in (wire.RES_CLOSED, wire.RES_POOL_RESOLVED, wire.RES_BETTING_BLOCKED):
            if fingerprint in self._seen:
                return
            _remember(self._seen, fingerprint, None)
        if res == wire.RES_CLOSED and game_id is not None:
            self._joined.pop(game_id, None)
            self._last_details.pop(game_id, None)
        event = read_event(res, message)
        if event is not None:
            self._emit(event)

    def _emit(self, event: GameEvent) -> None:
        for listener in list(self._listeners):
            try:
                result = listener(event)
            except Exception:
                log.exception("games: an event listener failed")
                continue
            if inspect.isawaitable(result):
                self._spawn(_await_listener(result))

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, []
        for call in pending:
            for handle in (call.settle_handle, call.refusal_handle):
                if handle is not None:
                    handle.cancel()
            if not call.future.done():
                call.future.set_exception(
                    GamesNotConnected(
                        "The games service connection was lost before it answered; "
                        "the request may or may not have been carried out."
                    )
                )

    def _redact(self, text: str) -> str:
        """API text is shown in chat; make sure it cannot echo our session key."""
        return text.replace(self._session_key, "***")

    # ------------------------------------------------------------ connection keeping

    def _delays(self) -> Iterator[float]:
        return backoff_delays(base=self._reconnect_base, cap=self._reconnect_cap)

    def _connect_url(self) -> str:
        """The URL to open: with the vendor's login query, and a fresh nonce, when a user id
        is configured."""
        if self.user_id is None:
            return self.url
        return wire.login_url(self.url, self.user_id, self._session_key)

    async def _run(self) -> None:
        delays = self._delays()
        while not self._closing:
            try:
                ws = await connect(
                    self._connect_url(),
                    open_timeout=self.connect_timeout,
                    ping_interval=self.ping_interval,
                    ping_timeout=self.timeout,
                    close_timeout=min(self.timeout, 5.0),
                    proxy=None,
                    max_size=self.max_frame_bytes,
                    logger=wire_log,
                )
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                status = exc.response.status_code
                self.login_refused = status in _LOGIN_REFUSED
                self.last_error = (
                    f"refused the bot's login (HTTP {status}); check user_id and session_key"
                    if self.login_refused
                    else f"could not connect (HTTP {status})"
                )
                log.warning("games: %s: %s", wire.safe_url(self.url), self.last_error)
                self._attempted.set()
                await asyncio.sleep(next(delays))
                continue
            except Exception as exc:
                self.last_error = f"could not connect ({type(exc).__name__})"
                reason = self._redact(str(exc).replace(self.url, wire.safe_url(self.url)))
                log.warning(
                    "games: could not connect to %s: %s", wire.safe_url(self.url), clip(reason)
                )
                self._attempted.set()
                await asyncio.sleep(next(delays))
                continue
            started = time.monotonic()
            await self._serve(ws)
            if time.monotonic() - started >= _STABLE_SESSION:
                delays = self._delays()
            if not self._closing:
                await asyncio.sleep(next(delays))

    async def _serve(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.connections += 1
        self.last_error = None
        self.login_refused = False
        helper = self._spawn(self._after_connect(ws))
        closed: ConnectionClosed | None = None
        try:
            async for raw in ws:
                try:
                    self._on_frame(raw)
                except Exception as exc:
                    # One line, no traceback: a hostile frame must not flood the log.
                    log.warning("games: could not handle a frame: %s", type(exc).__name__)
        except ConnectionClosed as exc:
            closed = exc
        finally:
            self._ws = None
            self._ready.clear()
            if not self._closing:
                why = _close_reason(closed)
                if self.last_error is None:
                    self.last_error = f"connection lost{why}"
                log.warning("games: connection to %s lost%s", wire.safe_url(self.url), why)
            helper.cancel()
            self._fail_pending()
            self._attempted.set()

    async def logon(self) -> bool:
        """Logon (op 100, the vendor's docs): True when logged on (100, or 112 "already"),
        False when refused (110)."""
        reply = await self._call(wire.OP_LOGON, {})
        return wire.read_code(reply.get("res")) != wire.RES_LOGON_FAILED

    async def _after_connect(self, ws: ClientConnection) -> None:
        """Log on (with a user id), join again the games joined before, then let calls
        through. A refused logon closes the link (the run loop retries with backoff); a game
        that cannot be joined any more is dropped and reported as :class:`RejoinFailed`."""
        try:
            if self.user_id is not None:
                if not await self.logon():
                    self.login_refused = True
                    self.last_error = "refused the bot's logon (op 100); check user_id"
                    log.warning("games: %s", self.last_error)
                    await ws.close()
                    return
            await self._restore()
        except GamesNotConnected:
            return  # the link dropped meanwhile; the run loop reconnects
        except GamesError as exc:
            self.last_error = f"did not complete the logon ({exc.message})"
            log.warning("games: %s", self.last_error)
            await ws.close()
            return
        self._ready.set()
        self._attempted.set()

    async def _restore(self) -> None:
        for game_id in list(self._joined):
            try:
                await self._call(wire.OP_JOIN, {"game_id": game_id}, game_id=game_id)
            except GamesRefused as exc:
                self._joined.pop(game_id, None)
                self._emit(RejoinFailed(game_id=game_id, reason=exc.text))
            except GamesNotConnected:
                raise
            except GamesError as exc:
                # Kept in the joined set: the next reconnect tries again. One silent game
                # must not hold every other call back.
                self.last_error = f"could not join {game_id} again"
                log.warning("games: could not join %s again: %s", game_id, exc.message)


def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > _SEEN_LIMIT:
        memory.popitem(last=False)


def _close_reason(closed: ConnectionClosed | None) -> str:
    """Why the link closed, in a few words: the close frame either side sent that was not a
    normal one (an oversized frame is our 1009, a dead link our 1011, an outage theirs)."""
    if closed is None:
        return ""
    for frame in (closed.sent, closed.rcvd):
        if frame is not None and frame.code not in (1000, 1001):
            reason = clip(frame.reason, 80)
            return f" ({frame.code}{': ' + reason if reason else ''})"
    return ""


def _op_label(op: int) -> str:
    """An op's name as words, for messages that may be shown in chat."""
    return wire.OP_NAMES.get(op, f"op {op}").replace("_", " ")


async def _await_listener(result: Awaitable[None]) -> None:
    try:
        await result
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("games: an event listener failed")
