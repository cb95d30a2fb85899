"""Typed calls of the Instamrkt games API over one :class:`.connection.GamesConnection`.

Each method checks its input before anything is sent (bad input changes nothing), sends one
op of :data:`.wire.OPS` and reads the reply into a model. Sockets, login, reply matching and
reconnecting live in :mod:`.connection`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bot import ServiceError

from . import wire
from .connection import SETTLED, GamesConnection, Listener
from .errors import AdminRefused, GamesInputError, GamesRefused
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

if TYPE_CHECKING:
    from .config import GamesConfig

__all__ = ["GamesClient", "Listener"]

log = logging.getLogger(__name__)


class GamesClient(GamesConnection):
    """A long-lived connection to the games API with typed calls and pushed events.

    Use ``async with GamesClient(...)`` or :meth:`connect` / :meth:`close`; see
    :class:`.connection.GamesConnection` for events, login and reconnecting.
    """

    def __init__(
        self,
        url: str,
        session_key: str,
        source_id: str | None = None,
        **connection: Any,
    ) -> None:
        super().__init__(url, session_key, **connection)
        self.source_id = check_id(source_id, "source id") if source_id is not None else None

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
            user_id=config.user_id,
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            ping_interval=config.ping_interval,
            close_settle=config.close_settle,
            error_grace=config.error_grace,
            max_frame_bytes=config.max_frame_bytes,
        )

    async def __aenter__(self) -> GamesClient:
        try:
            await self.connect()
        except BaseException:
            await self.close()  # no background reconnecting behind a failed ``async with``
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------ API calls

    async def ping(self) -> float:
        """Op 1 (the vendor's docs); returns the round trip in seconds. The connection's
        keep-alive does not use it: websocket pings need no op the document lacks."""
        started = time.monotonic()
        await self._call(wire.OP_PING, {})
        return time.monotonic() - started

    async def get_opcodes(self) -> OpCodes:
        """The API's own op and response code maps (op 2: ``opcodes``, ``response_codes``)."""
        return read_opcodes(await self._call(wire.OP_GET_OPCODES, {}))

    async def create_game(self, game: NewGame) -> Game:
        """Register an upcoming game (3701 -> 3401); it still has to be opened."""
        body = self._new_game_body(game, with_lists=False)
        reply = await self._call(wire.OP_CREATE, body)
        return read_game(reply, opened=False)

    async def create_and_open_game(self, game: NewGame) -> Game:
        """Register a game and open it for betting at once (370 -> 340)."""
        body = self._new_game_body(game, with_lists=True)
        reply = await self._call(wire.OP_CREATE_AND_OPEN, body)
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
        reply = await self._call(wire.OP_OPEN, body, game_id=gid)
        return read_game(reply, opened=True)

    async def become_admin(self, game_id: str) -> None:
        """Ask for game-level admin rights (616 -> 640); a 645 raises :class:`AdminRefused`."""
        gid = check_id(game_id)
        reply = await self._call(wire.OP_BECOME_ADMIN, {"game_id": gid}, game_id=gid)
        if wire.read_code(reply.get("res")) == wire.RES_ADMIN_REFUSED:
            reason = reply.get("reason")
            raise AdminRefused(gid, self._redact(str(reason)) if reason else "")

    async def get_game(self, game_id: str) -> GameDetails:
        """A game's full details (372 -> 342)."""
        gid = check_id(game_id)
        reply = await self._call(wire.OP_GET_DETAILS, {"game_id": gid}, game_id=gid)
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
        await self._call(wire.OP_UPDATE, body, game_id=gid)

    async def join_game(self, game_id: str) -> None:
        """Join a game (363 -> 333): its events reach the listeners from now on, also after
        reconnects, until :meth:`leave_game` or the game closes."""
        gid = check_id(game_id)
        await self._call(wire.OP_JOIN, {"game_id": gid}, game_id=gid)
        self._joined[gid] = None

    async def leave_game(self, game_id: str) -> None:
        """Leave a game (364 -> 334). Offline, there is nothing to leave: it is only dropped
        from the games joined again on reconnect."""
        gid = check_id(game_id)
        if self._ws is None:
            self._joined.pop(gid, None)
            return
        try:
            await self._call(wire.OP_LEAVE, {"game_id": gid}, game_id=gid)
        except GamesRefused:
            self._joined.pop(gid, None)
            raise
        self._joined.pop(gid, None)

    async def close_game(self, game_id: str) -> CloseResult:
        """Close a game (375). Automatic pools are resolved (362) and manual ones blocked
        (368); 341 comes only when no manual pool is left. Without it, the result lists the
        blocked pools once the 368s stop for ``close_settle`` seconds, and the call must be
        made again after they are resolved by hand.

        The document says 362 and 368 are "Published to all game subscribers", so a game this
        client has not joined is joined first (and left again if it stays open): under the
        strict reading the close would otherwise hear nothing but, at best, a 341.
        """
        gid = check_id(game_id)
        visiting = gid not in self._joined
        if visiting:
            await self._call(wire.OP_JOIN, {"game_id": gid}, game_id=gid)
        closed = False
        try:
            pending = await self._send_and_wait(
                wire.OP_CLOSE, {"game_id": gid}, game_id=gid, settle_on={wire.RES_BETTING_BLOCKED}
            )
            closed = pending.future.result() is not SETTLED
        finally:
            if visiting and not closed:
                await self._leave_quietly(gid)
        collected = pending.collected
        resolved = tuple(read_pool(m) for res, m in collected if res == wire.RES_POOL_RESOLVED)
        blocked = tuple(read_pool(m) for res, m in collected if res == wire.RES_BETTING_BLOCKED)
        return CloseResult(game_id=gid, closed=closed, resolved=resolved, blocked=blocked)

    async def _leave_quietly(self, game_id: str) -> None:
        """Leave a game joined only for one call; a failure is logged, not raised, since the
        call's own outcome is what the caller needs to hear."""
        if self._ws is None:
            return
        try:
            await self._call(wire.OP_LEAVE, {"game_id": game_id}, game_id=game_id)
        except ServiceError as exc:
            log.info("games: could not leave %s after closing it: %s", game_id, exc.message)

    async def list_games(self, source_id: str | None = None) -> list[GameSummary]:
        """Active games of a source (380 -> 345); the configured source by default."""
        sid = check_id(source_id or self.source_id, "source id")
        reply = await self._call(wire.OP_LIST, {"source_id": sid})
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
            name: wire.to_epoch_ms(value)
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
        if "close_at" in times and times["close_at"] <= wire.now_ms():
            raise GamesInputError("The close time must be in the future.")
        start, finish = times.get("live_start_at"), times.get("live_finish_at")
        if start is not None and finish is not None and finish <= start:
            raise GamesInputError("The live finish time must be after the live start time.")
