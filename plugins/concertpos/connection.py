"""One websocket connection to a ConcertPOS gateway: shards, reconnects, reply routing.

Why it is shaped like this:

* **Replies carry no request id.** They are matched by ``result.event`` (``payitems`` answers
  as ``payitem``) in order per event. A request that times out leaves a placeholder that
  swallows its late reply, so that reply can never answer a later call.
* **A placeholder must never swallow someone else's reply.** If the late reply never comes,
  the next reply of that event belongs to a newer request, and the placeholder would take
  it (and the newer request's own placeholder the one after, for ever). So no request of an
  event is sent while a placeholder of that event is outstanding: the new caller waits a
  little for the late reply, and if it does not come the connection is recycled. Recycling
  drains first: nothing new goes out on the old connection, requests still in flight there
  get their replies, then it is closed and a fresh one (with a fresh reply stream) opened.
  A placeholder left unanswered for ``late_reply_grace`` triggers the same recycle.
* **Errors name no event.** An error is given to a request only when it can be tied to one:
  ``ratelimit`` names its command, an error named after a command (the official client's
  ``getlicense``) goes to that command, and an unnamed error goes to the only request in
  flight. Otherwise it fails nothing (logged and published). A sale is never reported
  refused on an unnamed error: it may have been booked, so it is :class:`~.errors.OutcomeUnknown`.
* **The server's rate limit must never trip.** Every request spends its points from the
  :class:`~.ratelimit.RateBudgets` before it is sent; a ``ratelimit`` reply pauses the budget
  for its ``retry_after``, capped at ``max_retry_after`` (the server's wish is logged).
* **Hostile frames cost one log line each.** Frames are bounded in size (websockets'
  ``max_size``) and nesting (checked before parsing, see :mod:`.wire`).
* **Shards.** A connection failure moves on to the next URL; after a whole round fails the
  connection backs off (``bot.backoff``) and starts over. A connection that drops fails every
  waiting request at once (a sale with :class:`~.errors.OutcomeUnknown`: it may have been
  booked) and is re-established in the background.

The api key is added to every request here and nowhere else; it is never logged, and neither
are frames (websockets would log them, key included, at DEBUG).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.backoff import backoff_delays

from .errors import (
    ConcertPOSNotConnected,
    ConcertPOSTimeout,
    OutcomeUnknown,
    RateLimited,
    error_from_reply,
)
from .models import ConnectionState, PosEvent, as_text
from .ratelimit import RateBudgets
from .wire import BadFrame, decode, encode, wants_json5

log = logging.getLogger(__name__)
#: websockets logs every frame at DEBUG, and every frame carries the api key: its logger for
#: our connections never passes anything below INFO, whatever level the bot runs at.
wire_log = logging.getLogger(f"{__name__}.wire")
# A filter, not a level: the level stays inherited (quiet at the bot's WARNING), and DEBUG
# records, the ones with frames, never pass even when the bot runs at DEBUG.
wire_log.addFilter(lambda record: record.levelno >= logging.INFO)

#: reply event name -> the command it answers (when they differ)
_COMMAND_OF_EVENT = {"payitem": "payitems"}
#: errors that refuse the instance or our key, whatever the request: each request on the
#: connection is answered with one
_REFUSES_EVERY_REQUEST = frozenset({"api_key_mismatch", "no_api_key", "invalid_instance"})
#: a connection that lived this long resets the reconnect backoff
_STABLE_AFTER = 10.0
#: the largest frame we accept; an unlimited transaction list can be big
_MAX_FRAME = 16 * 1024 * 1024


def _mark_retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _why(exc: BaseException) -> str:
    """A short, secret-free reason for a failed connection attempt.

    The exception's own text is left out: a handshake failure may quote the request line,
    and a URL's query string can carry something private.
    """
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return type(exc).__name__


def redact_url(url: str) -> str:
    """Scheme, host and path only: a query string may carry something private."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(eq=False, slots=True)
class _Pending:
    """A request waiting for its reply; ``abandoned`` once its caller stopped waiting (it is
    then a placeholder for the late reply). ``gone`` is set when it leaves the routing tables:
    answered, swallowed a late reply, or failed with its connection."""

    seq: int
    command: str
    future: asyncio.Future[Mapping[str, Any]]
    abandoned: bool = False
    gone: asyncio.Event = field(default_factory=asyncio.Event)


class PosConnection:
    """The transport under :class:`~.client.ConcertPOSClient`; knows commands only by name.

    ``on_event`` gets every message that answers no request (broadcasts included);
    ``on_reconnect`` is called when a connection comes up again after one was lost.
    """

    def __init__(
        self,
        urls: Sequence[str],
        api_key: str,
        *,
        budgets: RateBudgets,
        costs: Mapping[str, int],
        on_event: Callable[[PosEvent], None],
        on_reconnect: Callable[[], None],
        timeout: float = 10.0,
        connect_timeout: float = 10.0,
        reconnect_min: float = 0.2,
        reconnect_max: float = 15.0,
        late_reply_grace: float | None = None,
        max_retry_after: float = 300.0,
        max_frame: int = _MAX_FRAME,
    ) -> None:
        if not urls:
            raise ValueError("at least one ConcertPOS URL is needed")
        if not api_key:
            raise ValueError("an api key is needed")
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self._urls = list(urls)
        self._api_key = api_key
        self._budgets = budgets
        self._costs = dict(costs)
        self._max_retry_after = max_retry_after
        self._max_frame = max_frame
        self._publish = on_event
        self._on_reconnect = on_reconnect
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._reconnect = (reconnect_min, reconnect_max)
        self._grace = timeout if late_reply_grace is None else late_reply_grace

        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._url_index = 0
        self._current_url: str | None = None
        self._connected_at: float | None = None
        self._ever_connected = False
        self._reconnects = 0
        self._last_error: str | None = None
        #: JSON5 on the wire (the current URL says ``Content-Type=json5``)
        self._json5 = False
        #: the connection being drained before a recycle; nothing new is sent on it
        self._draining: ClientConnection | None = None
        #: a recycle is under way: callers wait for the fresh connection instead of failing
        self._resyncing = False
        #: the last close was a deliberate recycle: reconnect at once, without backoff
        self._recycled = False
        #: frames that could not be read, and errors no request could be tied to (counters)
        self.bad_frames = 0
        self.stray_errors = 0

        self._seq = 0
        self._send_lock = asyncio.Lock()
        self._by_command: dict[str, deque[_Pending]] = {}
        self._in_order: dict[int, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, wait: float | None = None) -> bool:
        """Start connecting in the background (for good) and wait up to ``wait`` seconds
        (default: ``connect_timeout`` per URL) for the first connection."""
        if self._supervisor is None or self._supervisor.done():
            self._closing = False
            self._supervisor = asyncio.create_task(self._supervise(), name="concertpos")
        limit = self._connect_timeout * len(self._urls) if wait is None else wait
        if not await self.wait_connected(limit):
            log.warning("ConcertPOS: no shard reachable yet; retrying in the background")
            return False
        return True

    async def close(self) -> None:
        """Stop reconnecting, close the connection and fail whatever still waits."""
        self._closing = True
        self._resyncing = False  # nobody should wait for a connection that will not come
        supervisor, self._supervisor = self._supervisor, None
        ws = self._ws
        if ws is not None:
            await ws.close()
        if supervisor is not None:
            supervisor.cancel()
            try:
                await supervisor
            except asyncio.CancelledError:
                pass
        self._fail_all()
        for task in list(self._tasks):
            task.cancel()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def urls(self) -> tuple[str, ...]:
        """The endpoints tried in order (may hold a query string: do not show them raw)."""
        return tuple(self._urls)

    async def wait_connected(self, within: float) -> bool:
        """Wait up to ``within`` seconds for a connection (e.g. after a reconnect)."""
        try:
            await asyncio.wait_for(self._connected.wait(), within)
        except TimeoutError:
            return False
        return True

    def state(self) -> ConnectionState:
        loop_time = asyncio.get_running_loop().time()
        up = self.connected
        return ConnectionState(
            connected=up,
            url=redact_url(self._current_url) if up and self._current_url else None,
            shard_index=self._url_index if up else None,
            connected_for=(
                loop_time - self._connected_at if up and self._connected_at is not None else None
            ),
            reconnects=self._reconnects,
            last_error=self._last_error,
            bad_frames=self.bad_frames,
            stray_errors=self.stray_errors,
        )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ connection

    def _delays(self) -> Iterator[float]:
        return backoff_delays(base=self._reconnect[0], cap=self._reconnect[1])

    async def _supervise(self) -> None:
        """Connect, serve, and reconnect with backoff, moving through the shards."""
        loop = asyncio.get_running_loop()
        delays = self._delays()
        failures = 0
        while not self._closing:
            url = self._urls[self._url_index]
            try:
                ws = await connect(
                    url,
                    open_timeout=self._connect_timeout,
                    close_timeout=2,
                    max_size=self._max_frame,
                    logger=wire_log,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_error = f"cannot connect to {redact_url(url)} ({_why(exc)})"
                self._resyncing = False  # waiting callers fail now instead of waiting on
                log.warning("ConcertPOS: %s", self._last_error)
                self._url_index = (self._url_index + 1) % len(self._urls)
                failures += 1
                if failures >= len(self._urls):
                    failures = 0
                    await asyncio.sleep(next(delays))
                continue
            failures = 0
            opened = loop.time()
            await self._serve(ws, url)
            if self._closing:
                break
            self._reconnects += 1
            if self._recycled:
                # Our own close to get back in step: the server is fine, come back at once.
                self._recycled = False
                continue
            if loop.time() - opened >= _STABLE_AFTER:
                delays = self._delays()
            await asyncio.sleep(next(delays))

    async def _serve(self, ws: ClientConnection, url: str) -> None:
        loop = asyncio.get_running_loop()
        if self._ever_connected:
            # An updatepos may have been broadcast while we were away.
            self._on_reconnect()
            # A pause the server asked for belongs to its window, not to a dead connection.
            self._budgets.shorten_pauses(self._budgets.window)
        self._ever_connected = True
        self._ws, self._current_url, self._connected_at = ws, url, loop.time()
        self._json5 = wants_json5(url)
        self._last_error = None
        self._resyncing = False
        self._connected.set()
        log.info("ConcertPOS: connected to %s", redact_url(url))
        oversized = False
        try:
            async for raw in ws:
                try:
                    self._on_message(raw)
                except BadFrame as bad:
                    self.bad_frames += 1
                    log.warning("ConcertPOS: ignoring %s", bad.reason)
                except Exception:
                    log.exception("ConcertPOS: could not handle a message")
                self._close_if_drained()
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == 1009:
                self.bad_frames += 1
                oversized = True
        finally:
            self._ws = None
            self._draining = None
            self._connected.clear()
            self._fail_all()
            if self._recycled:
                log.info("ConcertPOS: closed the connection to %s to resync", redact_url(url))
            elif not self._closing:
                self._last_error = f"the connection to {redact_url(url)} was lost"
                if oversized:
                    self._last_error += f" (it sent a frame over {self._max_frame} bytes)"
                log.warning("ConcertPOS: %s", self._last_error)

    def _fail_all(self) -> None:
        """The connection is gone: no waiting request can get its reply any more."""
        pending = list(self._in_order.values())
        self._in_order.clear()
        self._by_command.clear()
        for item in pending:
            item.gone.set()
            if item.abandoned or item.future.done():
                continue
            if item.command == "payitems":
                item.future.set_exception(
                    OutcomeUnknown("the connection dropped before ConcertPOS confirmed it")
                )
            else:
                item.future.set_exception(
                    ConcertPOSNotConnected(
                        "The connection to ConcertPOS dropped before it answered; try again."
                    )
                )

    # ------------------------------------------------------------------ routing

    def _register(self, item: _Pending) -> None:
        self._by_command.setdefault(item.command, deque()).append(item)
        self._in_order[item.seq] = item

    def _unregister(self, item: _Pending) -> None:
        self._in_order.pop(item.seq, None)
        queue = self._by_command.get(item.command)
        if queue and item in queue:
            queue.remove(item)
        item.gone.set()

    def _take(self, command: str) -> _Pending | None:
        """The oldest request (or placeholder) waiting for ``command``'s reply."""
        queue = self._by_command.get(command)
        if not queue:
            return None
        item = queue[0]
        self._unregister(item)
        return item

    def _on_message(self, raw: str | bytes) -> None:
        message = decode(raw, json5_mode=self._json5)
        if not isinstance(message, dict):
            raise BadFrame("a frame that is not a JSON object")
        kind = message.get("type")
        result = message.get("result")
        if kind == "command":
            # "currently unused" per the doc: pass it on rather than guess at a meaning.
            self._publish(PosEvent("command", as_text(message.get("command")), {"result": result}))
            return
        if not isinstance(result, dict):
            raise BadFrame(f"a {safe_kind(kind)} without a result object")
        params = result.get("parameters")
        if not isinstance(params, dict):
            params = {} if params is None else {"value": params}
        if kind == "event":
            name = as_text(result.get("event")).lower()
            item = self._take(_COMMAND_OF_EVENT.get(name, name))
            if item is None:
                self._publish(PosEvent("event", name, params))
            elif item.abandoned:
                log.info("ConcertPOS: a late reply to %s arrived and was set aside", item.command)
            elif not item.future.done():
                item.future.set_result(params)
        elif kind == "error":
            self._on_error(result.get("error"), result.get("code"))
        elif kind == "broadcast":
            name = as_text(result.get("message"))
            self._publish(PosEvent("broadcast", name, params))
        else:
            raise BadFrame(f"a message of type {safe_kind(kind)}")

    def _owner(self, name: str, code: Any) -> tuple[_Pending | None, bool]:
        """The request an error belongs to, and whether the error named it.

        Named: ``ratelimit`` with ``code.command``, or an error called after a command. An
        unnamed error belongs to the only request in flight (a placeholder counts: it may be
        that request's late answer); with several in flight, or none, to nobody.
        """
        target: str | None = None
        if name == "ratelimit" and isinstance(code, Mapping):
            target = as_text(code.get("command")).lower() or None
        elif name in self._costs or name in _COMMAND_OF_EVENT:
            target = name  # e.g. the "getlicense" error
        if target is not None:
            target = _COMMAND_OF_EVENT.get(target, target)
            return self._take(target), True
        if len(self._in_order) == 1:
            item = next(iter(self._in_order.values()))
        elif name in _REFUSES_EVERY_REQUEST:
            # Every request on this connection gets this refusal, in order: the oldest read
            # takes it (never a sale: a stray one must not read as "nothing was sold").
            item = next(
                (p for p in self._in_order.values() if p.command != "payitems" and not p.abandoned),
                None,
            )
        else:
            item = None
        if item is not None:
            self._unregister(item)
        return item, False

    def _on_error(self, error: Any, code: Any) -> None:
        name = as_text(error).lower()
        item, named = self._owner(name, code)
        exc = error_from_reply(
            error, code, command=item.command if item else None, max_wait=self._max_retry_after
        )
        if isinstance(exc, RateLimited):
            self._honour_ratelimit(exc, code)
        if item is None:
            self.stray_errors += 1
            log.warning("ConcertPOS: error %r that no single request can be tied to", exc.code)
            self._publish(PosEvent("error", exc.code or "unknown", {"message": exc.message}))
        elif item.abandoned:
            log.info("ConcertPOS: a late error for %s arrived and was set aside", item.command)
        elif not item.future.done():
            if item.command == "payitems" and not named:
                # A stray error during a sale must not read as "nothing was sold".
                exc = OutcomeUnknown(
                    f"ConcertPOS answered with an error ({exc.code}) that may not be this sale's"
                )
            item.future.set_exception(exc)

    def _honour_ratelimit(self, exc: RateLimited, code: Any) -> None:
        """Pause the budget for what the server asked, but never longer than the cap."""
        asked = exc.asked if exc.asked is not None else exc.retry_after
        command = exc.command if exc.command in self._costs else None
        if asked > exc.retry_after:
            log.warning(
                "ConcertPOS: the server rate-limited %s and asked for %s s; waiting %g s "
                "(max_retry_after)",
                exc.command,
                f"{asked:.0f}" if math.isfinite(asked) else "ever",
                exc.retry_after,
            )
        else:
            log.warning(
                "ConcertPOS: the server rate-limited %s; retry after %.1f s",
                exc.command,
                exc.retry_after,
            )
        self._budgets.pause(exc.retry_after, command)

    # ------------------------------------------------------------------ requests

    async def call(
        self, command: str, params: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        """Spend the command's points, send it, and return its reply's ``parameters``.

        The whole call (waiting for a usable connection, for rate budget and for the reply)
        is bounded by ``timeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        budget = self._budgets.for_command(command)
        while True:
            ws = await self._usable(command, deadline)
            spend = await budget.acquire(
                self._costs[command], max_wait=max(0.0, deadline - loop.time()), command=command
            )
            if ws is self._ws and self._may_send(ws, command):
                break
            budget.refund(spend)  # the connection changed while we waited for budget
        payload = encode(
            command, {"api_key": self._api_key, **(params or {})}, json5_mode=self._json5
        )
        self._seq += 1
        item = _Pending(self._seq, command, loop.create_future())
        # A caller cancelled at the wrong moment leaves nobody to read the failure that
        # _fail_all may still set: mark it read, so asyncio does not log it as lost.
        item.future.add_done_callback(_mark_retrieved)
        try:
            async with self._send_lock:
                if self._ws is not ws or not self._may_send(ws, command):
                    raise ConcertPOSNotConnected(
                        "The connection to ConcertPOS is being renewed; nothing was sent. "
                        "Try again."
                    )
                self._register(item)
                try:
                    await ws.send(payload)
                except ConnectionClosed:
                    self._unregister(item)
                    raise ConcertPOSNotConnected(
                        "The connection to ConcertPOS dropped; nothing was sent. Try again."
                    ) from None
                except BaseException:
                    # Cancelled mid-send: the frame may be out. Keep its place (and its
                    # points) so a reply that still comes is swallowed, not misdelivered.
                    self._abandon(item, ws)
                    raise
        except BaseException:
            if not item.abandoned:
                budget.refund(spend)  # nothing went out
            raise
        budget.mark_sent(spend)
        log.debug("ConcertPOS: sent %s", command)
        try:
            return await asyncio.wait_for(
                asyncio.shield(item.future), max(0.0, deadline - loop.time())
            )
        except TimeoutError:
            if item.future.done() and not item.future.cancelled():
                return item.future.result()
            self._abandon(item, ws)
            if command == "payitems":
                raise OutcomeUnknown("no confirmation came back in time") from None
            raise ConcertPOSTimeout(command, self._timeout) from None
        except asyncio.CancelledError:
            self._abandon(item, ws)
            raise

    def _may_send(self, ws: ClientConnection, command: str) -> bool:
        """Not on a connection being drained, nor while a placeholder of the same event
        could take this request's reply."""
        if ws is self._draining:
            return False
        return not any(p.abandoned for p in self._by_command.get(command, ()))

    async def _usable(self, command: str, deadline: float) -> ClientConnection:
        """A connection ``command`` may be sent on now, waiting (until ``deadline``) for a
        late reply to clear its way or for a recycle to finish; fails fast when there is
        simply no connection."""
        loop = asyncio.get_running_loop()
        while True:
            ws = self._ws
            if ws is None and not self._resyncing:
                raise ConcertPOSNotConnected()
            left = deadline - loop.time()
            if ws is not None and ws is not self._draining:
                blocking = [p for p in self._by_command.get(command, ()) if p.abandoned]
                if not blocking:
                    return ws
                # A late reply may still come: give it part of our time, then recycle.
                if left > 0 and await _all_gone(blocking, left / 2):
                    continue
                self._resync(ws, f"an earlier {command} was never answered")
                continue
            if left <= 0 or not await self.wait_connected(left):
                raise ConcertPOSNotConnected(
                    "ConcertPOS is reconnecting to get its replies back in step; nothing was "
                    "sent. Try again in a moment."
                )

    def _abandon(self, item: _Pending, ws: ClientConnection) -> None:
        """Keep the request's place so its late reply is swallowed, not misdelivered; if the
        reply still has not come after ``late_reply_grace``, recycle the connection."""
        item.abandoned = True
        if item.seq not in self._in_order:
            return

        def check() -> None:
            if item.seq in self._in_order and self._ws is ws:
                self._resync(ws, f"{item.command} never answered")

        asyncio.get_running_loop().call_later(self._grace, check)
        self._close_if_drained()

    def _resync(self, ws: ClientConnection, why: str) -> None:
        """Drain ``ws`` (send nothing new on it) and close it once no live request is left
        on it; callers wait for the fresh connection meanwhile."""
        if self._ws is not ws or self._draining is ws:
            return
        log.warning("ConcertPOS: %s; reconnecting to get replies back in step", why)
        self._draining = ws
        self._resyncing = True
        self._connected.clear()
        self._close_if_drained()

    def _close_if_drained(self) -> None:
        ws = self._draining
        if ws is None or ws is not self._ws or self._recycled:
            return
        if any(not p.abandoned and not p.future.done() for p in self._in_order.values()):
            return  # a live request may still get its reply here
        self._recycled = True
        self._spawn(ws.close())


async def _all_gone(items: Sequence[_Pending], within: float) -> bool:
    """Whether every placeholder in ``items`` got its late reply (or its connection ended)
    within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            for item in items:
                await item.gone.wait()
    except TimeoutError:
        return False
    return True


def safe_kind(kind: object) -> str:
    """A message ``type`` for a log line: short and plain, or "an unknown type"."""
    text = str(kind)
    return repr(text) if len(text) <= 20 and text.isidentifier() else "message of unknown type"
