"""Matching replies to requests when the server echoes no id of ours.

Every reply lands in one queue. The public clients' rule is followed: match by (action,
payload.userId), falling back to the token and then the transactionId. Two extra rules make
that safe when money moves:

* Requests that could not be told apart by their reply (same user) are never in flight at the
  same time: :meth:`Correlator.serial` queues them per key. Fifty users at once run in
  parallel; one user's two payouts run one after the other.
* A request whose caller gave up (timeout, cancellation) stays as a *ghost* for a grace period,
  so its late reply is recognised as late instead of being taken for the next request of the
  same user: a late "Ok" for payout A must never be read as the answer to payout B. For
  requests that move money the ghost also keeps the user's key: the next money request of that
  user is not sent until the late reply came or the grace period ended, because a payout
  reply names only the user and two of them in flight could not be told apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from .requests import Reply, Request


@dataclass(eq=False)
class Pending:
    """A sent request waiting for its reply, or (``ghost``) one nobody waits for any more."""

    request: Request[Any]
    future: asyncio.Future[Reply]
    sent_at: float
    ghost_until: float | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ghost(self) -> bool:
        return self.ghost_until is not None


@dataclass
class _KeyQueue:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Correlator:
    """The table of requests in flight and the rule that picks one for each reply."""

    def __init__(self, *, grace: float = 120.0, clock: Callable[[], float] = time.monotonic):
        self.grace = grace
        self._clock = clock
        self._entries: list[Pending] = []  # in send order: the oldest match wins
        self._keys: dict[Hashable, _KeyQueue] = {}

    def __len__(self) -> int:
        return sum(1 for e in self._entries if not e.ghost)

    @property
    def ghosts(self) -> int:
        return sum(1 for e in self._entries if e.ghost)

    @contextlib.asynccontextmanager
    async def serial(self, request: Request[Any]) -> AsyncIterator[None]:
        """Hold the request's key so no other request with that key is in flight meanwhile."""
        key = request.key
        queue = self._keys.setdefault(key, _KeyQueue())
        queue.users += 1
        try:
            async with queue.lock:
                await self._wait_for_ghosts(request)
                yield
        finally:
            queue.users -= 1
            if queue.users == 0:
                self._keys.pop(key, None)

    async def _wait_for_ghosts(self, request: Request[Any]) -> None:
        """Wait until no abandoned money request of this key may still be answered.

        A retry of the same transaction need not wait: whichever of the two replies it gets
        ("Ok" or "DuplicateTransaction"), both say the money moved once.
        """
        while True:
            self._prune()
            blocking = [
                e
                for e in self._entries
                if e.ghost_until is not None
                and not e.request.idempotent
                and e.request.key == request.key
                and (
                    request.transaction_id is None
                    or e.request.transaction_id != request.transaction_id
                )
            ]
            if not blocking:
                return
            ghost = blocking[0]
            assert ghost.ghost_until is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, ghost.ghost_until - self._clock())):
                    await ghost.settled.wait()

    def add(self, request: Request[Any]) -> Pending:
        self._prune()
        pending = Pending(request, asyncio.get_running_loop().create_future(), self._clock())
        self._entries.append(pending)
        return pending

    def discard(self, pending: Pending) -> None:
        """Forget a request that was certainly never sent."""
        with contextlib.suppress(ValueError):
            self._entries.remove(pending)
        pending.settled.set()

    def abandon(self, pending: Pending) -> None:
        """The caller stopped waiting; keep the entry a while to absorb its late reply."""
        if pending in self._entries:
            pending.ghost_until = self._clock() + self.grace

    def match(self, reply: Reply) -> Pending | None:
        """Take the request this reply answers out of the table (None: a stray reply).

        Synchronous on purpose: replies are matched in the order they arrive.
        """
        self._prune()
        candidates = self._entries
        if reply.action is not None:
            candidates = [e for e in candidates if e.request.action == reply.action]
        matched = False
        for attribute, value in (
            ("user_id", reply.user_id),
            ("token", reply.token),
            ("transaction_id", reply.transaction_id),
            ("request_id", reply.request_id),
        ):
            if value is None:
                continue
            narrowed = [e for e in candidates if getattr(e.request, attribute) == value]
            if narrowed:
                candidates, matched = narrowed, True
        if not matched:
            # Nothing identifies the reply: only a request that names no user (getInfo) may
            # be recognised by its action alone.
            if reply.action is None:
                return None
            candidates = [
                e for e in candidates if e.request.user_id is None and e.request.token is None
            ]
        if not candidates:
            return None
        chosen = candidates[0]
        if chosen.ghost and chosen.request.transaction_id is not None:
            # A retry of the same transaction is waiting: either reply answers it alike
            # ("Ok" or "DuplicateTransaction"), and the caller is still there to hear it.
            retry = next(
                (
                    e
                    for e in candidates
                    if not e.ghost and e.request.transaction_id == chosen.request.transaction_id
                ),
                None,
            )
            chosen = retry or chosen
        self._entries.remove(chosen)
        chosen.settled.set()
        return chosen

    def fail_all(self, error: BaseException) -> None:
        """Wake every waiter with ``error`` (the client is closing)."""
        for entry in self._entries:
            if not entry.future.done():
                entry.future.set_exception(error)
            entry.settled.set()
        self._entries.clear()

    def _prune(self) -> None:
        now = self._clock()
        expired = [e for e in self._entries if e.ghost_until is not None and e.ghost_until <= now]
        for entry in expired:
            self._entries.remove(entry)
            entry.settled.set()
