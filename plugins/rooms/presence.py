"""Keeping chat users present in performers' rooms.

The API purges a customer who is not pinged every 10 seconds, whether or not they do anything,
so each presence (one per performer and customer) gets its own task that pings on a fixed
cadence until the customer leaves. A failed ping is retried by the client where that is safe;
after ``max_failures`` failed pings in a row the presence counts as lost: it is dropped here
and ``on_lost`` is called so the chat layer can tell the user and update its records.

A presence belongs to an ``owner``, the caller's own name for the customer (e.g. a chat user
key such as ``"telegram:42"``); unregistered customers have no customer id, and two of them
may share a nickname, so neither can serve as the key.

Restarts: this module keeps nothing on disk. :meth:`Presence.to_record` and
:meth:`Presence.from_record` give the chat layer plain rows to store, and at start-up it either
hands them to :meth:`PresenceManager.restore` (one ping proves the API still has the customer,
then pinging resumes) or to :meth:`PresenceManager.leave_records` (leave cleanly). On shutdown
:meth:`PresenceManager.close` leaves every presence.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .client import RoomsClient
from .errors import (
    RoomsAlreadyPresent,
    RoomsError,
    RoomsInvalidRequest,
    RoomsNotPresent,
    RoomsTimeout,
    RoomsUnavailable,
)
from .models import (
    MAX_DISPLAY_NICKNAME,
    JoinRequest,
    LeaveRequest,
    PingRequest,
    check_credits,
    check_id,
    check_nickname,
)

if TYPE_CHECKING:
    from .config import RoomsConfig

log = logging.getLogger(__name__)

LostCallback = Callable[["Presence", RoomsError], Awaitable[None] | None]
"""Called once per lost presence with the last ping's error; may be sync or async."""

PresenceKey = tuple[int, str]


@dataclass(slots=True)
class Presence:
    """One customer in one performer's room, as long as we keep pinging.

    ``nickname`` is what we sent; ``display_nickname`` what the API shows (with ``_####``) and
    what we send in later calls. The manager updates ``last_ping_at``, ``failures`` and
    ``last_error`` on the live object.
    """

    performer_id: int
    owner: str
    nickname: str
    display_nickname: str
    customer_id: int | None
    registered: bool
    credits: int
    joined_at: datetime
    last_ping_at: datetime | None = None
    failures: int = 0
    last_error: RoomsError | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> PresenceKey:
        return (self.performer_id, self.owner)

    def ping_request(self) -> PingRequest:
        return PingRequest(self.performer_id, self.display_nickname, self.customer_id)

    def leave_request(self) -> LeaveRequest:
        return LeaveRequest(self.performer_id, self.display_nickname, self.customer_id)

    def to_record(self) -> dict[str, Any]:
        """A flat row for the store (SQLite/JSON types only)."""
        return {
            "performer_id": self.performer_id,
            "owner": self.owner,
            "nickname": self.nickname,
            "display_nickname": self.display_nickname,
            "customer_id": self.customer_id,
            "registered": self.registered,
            "credits": self.credits,
            "joined_at": self.joined_at.isoformat(),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Presence:
        """Rebuild from :meth:`to_record`'s row; a damaged row raises RoomsInvalidRequest."""
        try:
            joined_at = datetime.fromisoformat(str(record["joined_at"]))
            if joined_at.tzinfo is None:
                joined_at = joined_at.replace(tzinfo=UTC)
            owner = record["owner"]
            if not isinstance(owner, str) or not owner:
                raise RoomsInvalidRequest("A stored presence has no owner.")
            customer_id = record.get("customer_id")
            return cls(
                performer_id=check_id("performer id", record["performer_id"]),
                owner=owner,
                nickname=check_nickname(record["nickname"]),
                display_nickname=check_nickname(record["display_nickname"], MAX_DISPLAY_NICKNAME),
                customer_id=None if customer_id is None else check_id("customer id", customer_id),
                registered=bool(record.get("registered", False)),
                credits=check_credits(record.get("credits", 0)),
                joined_at=joined_at,
            )
        except (KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, RoomsInvalidRequest):
                raise
            raise RoomsInvalidRequest(f"A stored presence is damaged ({exc!s}).") from None


class PresenceManager:
    """Joins, keeps alive and leaves presences over one :class:`RoomsClient`.

    ``ping_timeout`` bounds one keep-alive ping including the client's own retries (default:
    ``ping_interval``), so a hanging API cannot stretch the cadence.
    """

    def __init__(
        self,
        client: RoomsClient,
        *,
        ping_interval: float = 10.0,
        max_failures: int = 3,
        ping_timeout: float | None = None,
        on_lost: LostCallback | None = None,
    ) -> None:
        if ping_interval <= 0:
            raise RoomsInvalidRequest("The ping interval must be more than 0 seconds.")
        if max_failures < 1:
            raise RoomsInvalidRequest("The ping failure limit must be at least 1.")
        self.client = client
        self.ping_interval = ping_interval
        self.max_failures = max_failures
        self.ping_timeout = ping_timeout if ping_timeout is not None else ping_interval
        self.on_lost = on_lost
        self._presences: dict[PresenceKey, Presence] = {}
        self._tasks: dict[PresenceKey, asyncio.Task[None]] = {}
        self._pending: set[PresenceKey] = set()
        self._closed = False

    @classmethod
    def from_config(
        cls, client: RoomsClient, config: RoomsConfig, *, on_lost: LostCallback | None = None
    ) -> PresenceManager:
        """The manager for the plugin's config: its ``ping_interval`` and failure limit."""
        return cls(
            client,
            ping_interval=config.ping_interval,
            max_failures=config.max_ping_failures,
            on_lost=on_lost,
        )

    # -- queries -------------------------------------------------------------------------

    def get(self, performer_id: int, owner: str) -> Presence | None:
        return self._presences.get((performer_id, owner))

    def presences(self, owner: str | None = None) -> list[Presence]:
        """Live presences, oldest first, optionally only one owner's."""
        found = [p for p in self._presences.values() if owner is None or p.owner == owner]
        return sorted(found, key=lambda p: (p.joined_at, p.performer_id))

    def __len__(self) -> int:
        return len(self._presences)

    # -- joining and leaving -------------------------------------------------------------

    async def join(self, request: JoinRequest, *, owner: str) -> Presence:
        """joinRoom, then keep the customer present until :meth:`leave` or loss."""
        key = (request.performer_id, owner)
        self._claim(key)
        try:
            result = await self.client.join_room(request)
            presence = Presence(
                performer_id=request.performer_id,
                owner=owner,
                nickname=request.nickname,
                display_nickname=result.nickname,
                customer_id=request.customer_id,
                registered=request.registered,
                credits=request.credits,
                joined_at=datetime.now(UTC),
            )
            if self._closed:  # shut down while joining: do not leave a ghost behind
                await self._leave_quietly(presence)
                raise RoomsUnavailable("The rooms plugin is shutting down.")
            self._track(presence)
            return presence
        finally:
            self._pending.discard(key)

    async def restore(self, presence: Presence) -> Presence:
        """Resume a presence kept before a restart, if the API still has the customer.

        One ping is sent at once; if it fails (e.g. the API purged the customer while the bot
        was down) the error is raised and nothing is tracked, so the caller can drop the
        record or join again.
        """
        self._claim(presence.key)
        try:
            error = await self._ping_once(presence)
            if error is not None:
                raise error
            if self._closed:
                raise RoomsUnavailable("The rooms plugin is shutting down.")
            presence.failures = 0
            presence.last_error = None
            presence.last_ping_at = datetime.now(UTC)
            self._track(presence)
            return presence
        finally:
            self._pending.discard(presence.key)

    async def leave(self, performer_id: int, *, owner: str) -> Presence:
        """Stop pinging and leaveRoom.

        The presence is forgotten even when leaveRoom fails (the error is raised): with the
        pings stopped the API purges the customer on its own soon after.
        """
        key = (performer_id, owner)
        presence = self._presences.pop(key, None)
        if presence is None:
            raise RoomsNotPresent(performer_id)
        await self._stop_task(key)
        await self.client.leave_room(presence.leave_request())
        return presence

    async def leave_records(
        self, presences: Iterable[Presence], *, within: float | None = None
    ) -> list[tuple[Presence, RoomsError | None]]:
        """Leave presences that are not tracked here (e.g. stored before a restart).

        Never raises; returns each presence with its error, or None once it left.
        """
        items = list(presences)
        if not items:
            return []
        tasks = [asyncio.create_task(self._leave_quietly(p)) for p in items]
        done, pending = await asyncio.wait(tasks, timeout=within)
        for task in pending:
            task.cancel()
        results: list[tuple[Presence, RoomsError | None]] = []
        for presence, task in zip(items, tasks, strict=True):
            if task in done:
                results.append((presence, task.result()))
            else:
                results.append((presence, RoomsTimeout(within or 0.0)))
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return results

    async def leave_all(
        self, *, within: float | None = None
    ) -> list[tuple[Presence, RoomsError | None]]:
        """Leave every tracked presence at once (shutdown); never raises."""
        presences = list(self._presences.values())
        self._presences.clear()
        await asyncio.gather(*(self._stop_task(p.key) for p in presences))
        return await self.leave_records(presences, within=within)

    async def close(
        self, *, within: float | None = None
    ) -> list[tuple[Presence, RoomsError | None]]:
        """Refuse new joins and leave every presence; safe to call twice."""
        self._closed = True
        return await self.leave_all(within=within)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- internals -----------------------------------------------------------------------

    def _claim(self, key: PresenceKey) -> None:
        if self._closed:
            raise RoomsUnavailable("The rooms plugin is shutting down.")
        if key in self._presences or key in self._pending:
            raise RoomsAlreadyPresent(key[0])
        self._pending.add(key)

    def _track(self, presence: Presence) -> None:
        self._presences[presence.key] = presence
        self._tasks[presence.key] = asyncio.create_task(
            self._keep_alive(presence), name=f"rooms-ping-{presence.performer_id}"
        )

    async def _stop_task(self, key: PresenceKey) -> None:
        task = self._tasks.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _leave_quietly(self, presence: Presence) -> RoomsError | None:
        try:
            await self.client.leave_room(presence.leave_request())
        except RoomsError as exc:
            log.warning(
                "rooms: leaving performer %s for %s failed: %s",
                presence.performer_id,
                presence.owner,
                exc.message,
            )
            return exc
        except Exception:
            log.exception("rooms: leaving performer %s failed", presence.performer_id)
            return RoomsError("Leaving the room failed unexpectedly.", code="internal")
        return None

    async def _ping_once(self, presence: Presence) -> RoomsError | None:
        try:
            async with asyncio.timeout(self.ping_timeout):
                await self.client.ping_room(presence.ping_request())
        except TimeoutError:
            return RoomsTimeout(self.ping_timeout)
        except RoomsError as exc:
            return exc
        except Exception:
            log.exception("rooms: ping for performer %s failed", presence.performer_id)
            return RoomsError("The keep-alive ping failed unexpectedly.", code="internal")
        return None

    async def _keep_alive(self, presence: Presence) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.ping_interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += self.ping_interval
            error = await self._ping_once(presence)
            next_at = max(next_at, loop.time())  # a slow ping delays, never bunches, the next
            if error is None:
                presence.failures = 0
                presence.last_error = None
                presence.last_ping_at = datetime.now(UTC)
                continue
            presence.failures += 1
            presence.last_error = error
            log.info(
                "rooms: ping %d/%d for performer %s failed: %s",
                presence.failures,
                self.max_failures,
                presence.performer_id,
                error.code,
            )
            if presence.failures >= self.max_failures:
                await self._lost(presence, error)
                return

    async def _lost(self, presence: Presence, error: RoomsError) -> None:
        if self._presences.get(presence.key) is presence:
            del self._presences[presence.key]
        if self._tasks.get(presence.key) is asyncio.current_task():
            del self._tasks[presence.key]
        log.warning(
            "rooms: presence of %s in performer %s's room lost: %s",
            presence.owner,
            presence.performer_id,
            error.message,
        )
        if self.on_lost is None:
            return
        try:
            outcome = self.on_lost(presence, error)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("rooms: the presence-lost callback failed")
