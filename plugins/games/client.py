"""Websocket client for the Instamrkt games API.

The API gives replies no request id, so each call waits for the response codes it expects plus
its ``game_id`` (oldest call first when several could match); every other frame is a published
event. A few codes are both: our own close's 341 and an update's 342 also reach every
subscriber, so they are handed to listeners once, however many copies arrive.

The connection is kept by a background task that reconnects with :func:`bot.backoff_delays`
and joins again every game this client had joined, so alerts resume after an outage. Calls
made while disconnected fail at once with :class:`NotConnected`; a call is never re-sent on its
own, since creating or closing a game twice is worse than asking the user to retry.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.backoff import backoff_delays
from bot.errors import NotConnected, ServiceTimeout

from .errors import SERVICE, AdminRefused, GamesError, GamesInputError, GamesRefused
from .events import GameEvent, RejoinFailed, read_event
from .models import (
    CloseResult,
    Game,
    GameDetails,
    GameSummary,
    NewGame,
    OpCodes,
    check_id,
    check_names,
    check_text,
    read_details,
    read_game,
    read_game_list,
    read_opcodes,
    read_pool,
)
from .wire import (
    EVENT_CODES,
    OP_BECOME_ADMIN,
    OP_CLOSE,
    OP_CREATE,
    OP_CREATE_AND_OPEN,
    OP_GET_DETAILS,
    OP_GET_OPCODES,
    OP_JOIN,
    OP_LEAVE,
    OP_LIST,
    OP_NAMES,
    OP_OPEN,
    OP_PING,
    OP_UPDATE,
    RES_ADMIN_OK,
    RES_ADMIN_REFUSED,
    RES_BETTING_BLOCKED,
    RES_CLOSED,
    RES_CREATED,
    RES_CREATED_AND_OPENED,
    RES_DETAILS,
    RES_ERROR,
    RES_JOINED,
    RES_LEFT,
    RES_LIST,
    RES_OPCODES,
    RES_OPENED,
    RES_PONG,
    RES_POOL_RESOLVED,
    RES_UPDATED,
    check_ws_url,
    header,
    now_ms,
    read_code,
    read_id,
    safe_url,
    to_epoch_ms,
)

if TYPE_CHECKING:
    from .config import GamesConfig

log = logging.getLogger(__name__)

Listener = Callable[[GameEvent], Awaitable[None] | None]

# A close that left manual pools gets no 341; the pending call resolves to this marker once the
# 368s stop arriving, so the identity check below cannot collide with a real reply.
_SETTLED: dict[str, Any] = {}

# A session shorter than this does not reset the backoff: a server that accepts and drops at
# once must not be hammered.
_STABLE_SESSION = 1.0

_SEEN_LIMIT = 512


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

    def accepts(self, res: int) -> bool:
        return res in self.done_on or res in self.collect_on

    def settle_now(self) -> None:
        if not self.future.done():
            self.future.set_result(_SETTLED)


class GamesClient:
    """A long-lived connection to the games API with typed calls and pushed events.

    Use ``async with GamesClient(...)`` or :meth:`connect` / :meth:`close`. Events go to
    listeners added with :meth:`add_listener`; a listener should be quick (an async one is run
    as its own task), since it is called from the frame reader.
    """

    def __init__(
        self,
        url: str,
        session_key: str,
        source_id: str | None = None,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 10.0,
        ping_interval: float = 25.0,
        close_settle: float = 1.0,
        reconnect_base: float = 0.2,
        reconnect_cap: float = 15.0,
    ) -> None:
        if not isinstance(session_key, str) or not session_key.strip():
            raise ValueError("the games session key must not be empty")
        if min(timeout, connect_timeout, ping_interval, close_settle) <= 0:
            raise ValueError("games client intervals must be positive")
        self.url = check_ws_url(url)
        self._session_key = session_key.strip()
        self.source_id = check_id(source_id, "source id") if source_id is not None else None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.close_settle = close_settle
        self._reconnect_base = reconnect_base
        self._reconnect_cap = reconnect_cap

        self._ws: ClientConnection | None = None
        self._ready = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._pending: list[_Pending] = []
        self._joined: dict[str, None] = {}
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_details: dict[str, str] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.connections = 0
        self.last_error: str | None = None

    @classmethod
    def from_config(
        cls,
        config: GamesConfig,
        *,
        url: str | None = None,
        session_key: str | None = None,
        source_id: str | None = None,
    ) -> GamesClient:
        """Build from the plugin's config section. Keyword arguments override it: with
        ``simulate`` on, the in-process simulator's address (and credentials, where the
        section gives none) take the place of the outside API's."""
        target = url or config.url
        configured_key = config.session_key.get_secret_value() if config.session_key else None
        key = session_key or configured_key
        if not target or not key:
            raise ValueError("games: url and session_key are needed to connect")
        return cls(
            target,
            key,
            source_id or config.source_id,
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            ping_interval=config.ping_interval,
            close_settle=config.close_settle,
        )

    # ------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        """True once connected and done re-joining; calls may be made."""
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
        return self.running and self.connections == 0 and self.last_error is None

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
            raise NotConnected(
                f"Could not connect to the games service at {safe_url(self.url)}.",
                service=SERVICE,
            ) from None

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

    async def __aenter__(self) -> GamesClient:
        try:
            await self.connect()
        except BaseException:
            await self.close()  # no background reconnecting behind a failed ``async with``
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every published event; returns a remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # ------------------------------------------------------------ API calls

    async def ping(self) -> float:
        """Keep-alive (op 1); returns the round trip in seconds."""
        started = time.monotonic()
        await self._call(OP_PING, {}, done_on={RES_PONG})
        return time.monotonic() - started

    async def get_opcodes(self) -> OpCodes:
        """The API's own op and res code maps (op 2)."""
        return read_opcodes(await self._call(OP_GET_OPCODES, {}, done_on={RES_OPCODES}))

    async def create_game(self, game: NewGame) -> Game:
        """Register an upcoming game (3701 -> 3401); it still has to be opened."""
        body = self._new_game_body(game, with_lists=False)
        reply = await self._call(OP_CREATE, body, done_on={RES_CREATED})
        return read_game(reply, opened=False)

    async def create_and_open_game(self, game: NewGame) -> Game:
        """Register a game and open it for betting at once (370 -> 340)."""
        body = self._new_game_body(game, with_lists=True)
        reply = await self._call(OP_CREATE_AND_OPEN, body, done_on={RES_CREATED_AND_OPENED})
        return read_game(reply, opened=True)

    async def open_game(
        self, game_id: str, actions: Sequence[str] | str = (), targets: Sequence[str] | str = ()
    ) -> Game:
        """Open an upcoming game, optionally adding actions and targets (3702 -> 3402 or 340:
        the doc's table and example disagree, so both are accepted)."""
        gid = check_id(game_id)
        body = {
            "game_id": gid,
            "actions": check_names(actions, "actions"),
            "targets": check_names(targets, "targets", nested=True),
        }
        reply = await self._call(
            OP_OPEN, body, done_on={RES_OPENED, RES_CREATED_AND_OPENED}, game_id=gid
        )
        return read_game(reply, opened=True)

    async def become_admin(self, game_id: str) -> None:
        """Ask for game-level admin rights (616 -> 640); a 645 raises :class:`AdminRefused`."""
        gid = check_id(game_id)
        reply = await self._call(
            OP_BECOME_ADMIN,
            {"game_id": gid},
            done_on={RES_ADMIN_OK, RES_ADMIN_REFUSED},
            game_id=gid,
        )
        if read_code(reply.get("res")) == RES_ADMIN_REFUSED:
            reason = reply.get("reason")
            raise AdminRefused(gid, self._redact(str(reason)) if reason else "")

    async def get_game(self, game_id: str) -> GameDetails:
        """A game's full details (372 -> 342)."""
        gid = check_id(game_id)
        reply = await self._call(
            OP_GET_DETAILS, {"game_id": gid}, done_on={RES_DETAILS}, game_id=gid
        )
        return read_details(reply)

    async def update_game(
        self, game_id: str, actions: Sequence[str] | str = (), targets: Sequence[str] | str = ()
    ) -> None:
        """Add actions and/or targets (373 -> 343). The server then publishes 342 to the game's
        subscribers, which reaches listeners once as :class:`DetailsChanged`."""
        gid = check_id(game_id)
        action_list = check_names(actions, "actions")
        target_list = check_names(targets, "targets", nested=True)
        if not action_list and not target_list:
            raise GamesInputError("Give at least one action or target to add.")
        body = {"game_id": gid, "actions": action_list, "targets": target_list}
        await self._call(OP_UPDATE, body, done_on={RES_UPDATED}, game_id=gid)

    async def join_game(self, game_id: str) -> None:
        """Join a game (363 -> 333): its events reach the listeners from now on, also after
        reconnects, until :meth:`leave_game` or the game closes."""
        gid = check_id(game_id)
        await self._call(OP_JOIN, {"game_id": gid}, done_on={RES_JOINED}, game_id=gid)
        self._joined[gid] = None

    async def leave_game(self, game_id: str) -> None:
        """Leave a game (364 -> 334). Offline, there is nothing to leave: it is only dropped
        from the games joined again on reconnect."""
        gid = check_id(game_id)
        if self._ws is None:
            self._joined.pop(gid, None)
            return
        try:
            await self._call(OP_LEAVE, {"game_id": gid}, done_on={RES_LEFT}, game_id=gid)
        except GamesRefused:
            self._joined.pop(gid, None)
            raise
        self._joined.pop(gid, None)

    async def close_game(self, game_id: str) -> CloseResult:
        """Close a game (375). Automatic pools are resolved (362) and manual ones blocked
        (368); 341 comes only when no manual pool is left. Without it, the result lists the
        blocked pools once the 368s stop for ``close_settle`` seconds, and the call must be
        made again after they are resolved by hand."""
        gid = check_id(game_id)
        pending = await self._send_and_wait(
            OP_CLOSE,
            {"game_id": gid},
            done_on={RES_CLOSED},
            game_id=gid,
            collect_on={RES_POOL_RESOLVED, RES_BETTING_BLOCKED},
            settle_on={RES_BETTING_BLOCKED},
        )
        reply = pending.future.result()
        resolved = tuple(read_pool(m) for res, m in pending.collected if res == RES_POOL_RESOLVED)
        blocked = tuple(read_pool(m) for res, m in pending.collected if res == RES_BETTING_BLOCKED)
        return CloseResult(
            game_id=gid, closed=reply is not _SETTLED, resolved=resolved, blocked=blocked
        )

    async def list_games(self, source_id: str | None = None) -> list[GameSummary]:
        """Active games of a source (380 -> 345); the configured source by default."""
        sid = check_id(source_id or self.source_id, "source id")
        reply = await self._call(OP_LIST, {"source_id": sid}, done_on={RES_LIST})
        return read_game_list(reply)

    # ------------------------------------------------------------ request building

    def _new_game_body(self, game: NewGame, *, with_lists: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "source_id": check_id(game.source_id or self.source_id, "source id"),
            "game_name": check_text(game.name, "game name"),
            "type": check_text(game.type, "game type", limit=100),
        }
        if with_lists:
            body["actions"] = check_names(game.actions, "actions")
            body["targets"] = check_names(game.targets, "targets", nested=True)
        elif game.actions or game.targets:
            raise GamesInputError("Actions and targets are given when the game is opened.")
        if game.currency is not None:
            body["currency"] = check_text(game.currency, "currency", limit=20)
        if game.hashtag is not None:
            body["hashtag"] = check_text(game.hashtag, "hashtag", limit=100)
        times = {
            name: to_epoch_ms(value)
            for name, value in (
                ("open_at", game.open_at),
                ("close_at", game.close_at),
                ("live_start_at", game.live_start_at),
                ("live_finish_at", game.live_finish_at),
            )
            if value is not None
        }
        self._check_times(times)
        body.update(times)
        return body

    @staticmethod
    def _check_times(times: Mapping[str, int]) -> None:
        """The doc's ordering rules; a close time in the past would resolve every pool at once,
        so it is refused here rather than trusted to the server."""
        if "open_at" in times and "close_at" in times and times["close_at"] <= times["open_at"]:
            raise GamesInputError("The close time must be after the open time.")
        if "close_at" in times and times["close_at"] <= now_ms():
            raise GamesInputError("The close time must be in the future.")
        start, finish = times.get("live_start_at"), times.get("live_finish_at")
        if start is not None and finish is not None and finish <= start:
            raise GamesInputError("The live finish time must be after the live start time.")

    # ------------------------------------------------------------ request/reply matching

    async def _call(
        self,
        op: int,
        body: dict[str, Any],
        *,
        done_on: set[int],
        game_id: str | None = None,
    ) -> dict[str, Any]:
        pending = await self._send_and_wait(op, body, done_on=done_on, game_id=game_id)
        return pending.future.result()

    async def _send_and_wait(
        self,
        op: int,
        body: dict[str, Any],
        *,
        done_on: set[int],
        game_id: str | None = None,
        collect_on: set[int] | None = None,
        settle_on: set[int] | None = None,
    ) -> _Pending:
        ws = self._ws
        if ws is None:
            raise NotConnected(
                "The games service is not connected right now; try again shortly.",
                service=SERVICE,
            )
        pending = _Pending(
            op=op,
            done_on=frozenset(done_on),
            game_id=game_id,
            future=asyncio.get_running_loop().create_future(),
            collect_on=frozenset(collect_on or ()),
            settle_on=frozenset(settle_on or ()),
            settle=self.close_settle,
        )
        self._pending.append(pending)
        try:
            frame = {"header": header(self._session_key), "op": op, **body}
            try:
                await ws.send(json.dumps(frame))
            except ConnectionClosed:
                raise NotConnected(
                    "The games service connection dropped; try again shortly.", service=SERVICE
                ) from None
            try:
                await asyncio.wait_for(asyncio.shield(pending.future), self.timeout)
            except TimeoutError:
                raise ServiceTimeout(
                    f"The games service did not answer the {_op_label(op)} request in time.",
                    service=SERVICE,
                ) from None
            return pending
        finally:
            self._forget(pending)

    def _forget(self, pending: _Pending) -> None:
        if pending in self._pending:
            self._pending.remove(pending)
        if pending.settle_handle is not None:
            pending.settle_handle.cancel()
        if not pending.future.done():
            pending.future.cancel()

    def _match(self, res: int, game_id: str | None) -> _Pending | None:
        """The oldest call expecting ``res`` for this game; a call or reply without a game id
        matches by code alone, but only when no call names the game exactly."""
        loose: _Pending | None = None
        for pending in self._pending:
            if not pending.accepts(res):
                continue
            if game_id is not None and pending.game_id == game_id:
                return pending
            if loose is None and (pending.game_id is None or game_id is None):
                loose = pending
        return loose

    def _on_frame(self, raw: str | bytes) -> None:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            message = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            log.debug("games: ignored a frame that is not JSON")
            return
        if not isinstance(message, dict):
            return
        res = read_code(message.get("res"))
        if res is None:
            log.debug("games: ignored a frame without a res code")
            return
        game_id = read_id(message.get("game_id"))
        if res == RES_ERROR:
            self._on_error(message, game_id)
            return
        pending = self._match(res, game_id)
        if pending is not None:
            self._deliver(pending, res, message)
        if res in EVENT_CODES and not (pending is not None and pending.op == OP_GET_DETAILS):
            self._publish(res, game_id, message)
        elif pending is None:
            log.debug("games: ignored an unexpected reply %s", res)

    def _deliver(self, pending: _Pending, res: int, message: dict[str, Any]) -> None:
        if res in pending.done_on:
            if pending in self._pending:
                self._pending.remove(pending)
            if not pending.future.done():
                pending.future.set_result(message)
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
        """A 666 names no request: pin it on the oldest call for its game if it names one,
        else on the oldest call that is not a keep-alive ping."""
        text = next((str(message[k]) for k in ("text", "message", "reason") if message.get(k)), "")
        candidates = [p for p in self._pending if p.op != OP_PING] or self._pending
        target = None
        if game_id is not None:
            target = next((p for p in candidates if p.game_id == game_id), None)
        if target is None and candidates:
            target = candidates[0]
        if target is None:
            log.warning("games: the service reported an error no call was waiting for")
            return
        self._pending.remove(target)
        if not target.future.done():
            target.future.set_exception(GamesRefused(self._redact(text)))

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
        if res == RES_DETAILS and game_id is not None:
            if self._last_details.get(game_id) == fingerprint:
                return
            self._last_details[game_id] = fingerprint
        elif res in (RES_CLOSED, RES_POOL_RESOLVED, RES_BETTING_BLOCKED):
            if fingerprint in self._seen:
                return
            self._seen[fingerprint] = None
            while len(self._seen) > _SEEN_LIMIT:
                self._seen.popitem(last=False)
        if res == RES_CLOSED and game_id is not None:
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
            if not call.future.done():
                call.future.set_exception(
                    NotConnected(
                        "The games service connection was lost before it answered; "
                        "the request may or may not have been carried out.",
                        service=SERVICE,
                    )
                )

    def _redact(self, text: str) -> str:
        """API text is shown in chat; make sure it cannot echo our session key."""
        return text.replace(self._session_key, "***")

    # ------------------------------------------------------------ connection keeping

    def _delays(self) -> Iterator[float]:
        return backoff_delays(base=self._reconnect_base, cap=self._reconnect_cap)

    async def _run(self) -> None:
        delays = self._delays()
        while not self._closing:
            try:
                ws = await connect(
                    self.url,
                    open_timeout=self.connect_timeout,
                    ping_interval=None,
                    close_timeout=min(self.timeout, 5.0),
                    proxy=None,
                    max_size=4 * 2**20,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"could not connect ({type(exc).__name__})"
                reason = self._redact(str(exc).replace(self.url, safe_url(self.url)))
                log.warning("games: could not connect to %s: %s", safe_url(self.url), reason)
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
        helpers = [
            self._spawn(self._after_connect()),
            self._spawn(self._keep_alive(ws)),
        ]
        try:
            async for raw in ws:
                try:
                    self._on_frame(raw)
                except Exception:
                    log.exception("games: failed to handle a frame")
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
            self._ready.clear()
            if not self._closing:
                self.last_error = "connection lost"
                log.warning("games: connection to %s lost", safe_url(self.url))
            for task in helpers:
                task.cancel()
            self._fail_pending()

    async def _after_connect(self) -> None:
        """Join again the games joined before, then let calls through; a game that cannot be
        joined any more (closed meanwhile) is dropped and reported as :class:`RejoinFailed`."""
        for game_id in list(self._joined):
            try:
                await self._call(
                    OP_JOIN, {"game_id": game_id}, done_on={RES_JOINED}, game_id=game_id
                )
            except GamesRefused as exc:
                self._joined.pop(game_id, None)
                self._emit(RejoinFailed(game_id=game_id, reason=exc.text))
            except NotConnected:
                return
            except (ServiceTimeout, GamesError) as exc:
                # Kept in the joined set: the next reconnect tries again. One silent game
                # must not hold every other call back.
                self.last_error = f"could not join {game_id} again"
                log.warning("games: could not join %s again: %s", game_id, exc.message)
        self._ready.set()

    async def _keep_alive(self, ws: ClientConnection) -> None:
        """Ping (op 1) every ``ping_interval``; an unanswered ping means a dead link, which is
        closed so the run loop reconnects."""
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self.ping()
            except ServiceTimeout:
                log.warning("games: ping unanswered, reconnecting")
                await ws.close()
                return
            except NotConnected:
                return
            except GamesError:
                continue


def _op_label(op: int) -> str:
    """An op's name as words, for messages that may be shown in chat."""
    return OP_NAMES.get(op, f"op {op}").replace("_", " ")


async def _await_listener(result: Awaitable[None]) -> None:
    try:
        await result
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("games: an event listener failed")
