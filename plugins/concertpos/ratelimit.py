"""The ConcertPOS rate budget, kept on our side so the server's limit is never tripped.

The doc says each command adds its points to a budget of 100 per 30 seconds but not how the
window moves, so it is read strictly: the points sent in *any* 30-second span stay at or under
the limit. A token bucket would not do: one that refills continuously can spend more than the
limit inside a single span. Instead every spend is logged with its time and a request waits
until the span ending at its own send time has room. Spends are kept for ``window + margin``
so that network jitter (the server counts at arrival, we count at sending) cannot squeeze two
spends closer together on the server's clock than on ours.

Waiting requests are served in arrival order: each reserves its slot at once, so a burst is
spread out instead of stampeding when the window frees up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from bot import metrics

from .errors import BudgetExhausted
from .models import BudgetSnapshot

#: points per command, from the protocol document
DEFAULT_COSTS: Mapping[str, int] = {
    "getconfig": 25,
    "getdeposit": 10,
    "getlicense": 4,
    "listpm": 20,
    "listproducts": 25,
    "payitems": 1,
    "registerdevice": 10,
    "version": 50,
    "getstatus": 15,
    "listtransactions": 2,
    # Not in the doc (the vendor client sends them): priced like the calls they resemble,
    # a list of points of sale like ``listproducts``, a password check like ``registerdevice``.
    "listpos": 25,
    "verifyauth": 10,
}
DEFAULT_LIMIT = 100
DEFAULT_WINDOW = 30.0
#: ``shared``: every command spends from one budget (the doc's strict reading, the default);
#: ``per_command``: each command has its own (what the vendor client's start-up suggests)
BudgetMode = Literal["shared", "per_command"]


@dataclass(slots=True, eq=False)
class Spend:
    """One request's points; ``at`` is its planned, then its actual, send time.

    Compared by identity: two requests of the same command at the same time are two spends.
    """

    at: float
    points: int
    command: str
    #: set once the spend may go out (or was given up): the next in line waits for it
    settled: asyncio.Event = field(default_factory=asyncio.Event)


class RateBudget:
    """A sliding-window log of spent points shared by every request of one client."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        *,
        margin: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit <= 0 or window <= 0 or margin < 0:
            raise ValueError("limit and window must be positive and margin not negative")
        self.limit = limit
        self.window = window
        self.margin = margin
        self._clock = clock
        self._spends: list[Spend] = []
        self._not_before = 0.0

    @property
    def _span(self) -> float:
        return self.window + self.margin

    def _prune(self, now: float) -> None:
        cutoff = now - self._span
        self._spends = [s for s in self._spends if s.at > cutoff or not s.settled.is_set()]

    def _earliest(self, points: int, prior: list[Spend], now: float) -> float:
        """The first time >= now at which ``points`` fit after the ``prior`` spends.

        Only earlier reservations count: later ones already made room for this one, and
        counting them too could push two waiters past each other forever.
        """
        start = max(now, self._not_before, max((s.at for s in prior), default=now))
        live = sorted((s for s in prior if s.at > start - self._span), key=lambda s: s.at)
        used = sum(s.points for s in live)
        slot = start
        for spend in live:
            if used + points <= self.limit:
                break
            slot = max(slot, spend.at + self._span)
            used -= spend.points
        return slot

    def wait_time(self, points: int) -> float:
        """Seconds a request of ``points`` would wait if it asked now (0 when it fits)."""
        now = self._clock()
        self._prune(now)
        return max(0.0, self._earliest(points, self._spends, now) - now)

    async def acquire(self, points: int, *, max_wait: float, command: str = "") -> Spend:
        """Reserve ``points`` and sleep until they may be sent; the caller sends at once.

        Raises :class:`BudgetExhausted` (nothing reserved) when the wait would exceed
        ``max_wait``. If the caller does not send after all, it must :meth:`refund`.
        """
        if points > self.limit:
            raise ValueError(f"{command or 'a command'} costs more than the whole budget")
        now = self._clock()
        deadline = now + max_wait
        self._prune(now)
        slot = self._earliest(points, self._spends, now)
        if slot > deadline:
            raise BudgetExhausted(retry_after=slot - now, command=command)
        spend = Spend(slot, points, command)
        self._spends.append(spend)
        try:
            while True:
                prior = self._spends[: self._spends.index(spend)]
                ahead = next((s for s in reversed(prior) if not s.settled.is_set()), None)
                if ahead is not None:
                    # First come, first served: go only after the one ahead has gone.
                    left = deadline - self._clock()
                    try:
                        await asyncio.wait_for(ahead.settled.wait(), max(0.0, left))
                    except TimeoutError:
                        raise BudgetExhausted(
                            retry_after=max(spend.at, ahead.at) - self._clock(), command=command
                        ) from None
                    continue
                # Re-check on waking: an earlier request may have gone out later than planned.
                now = self._clock()
                slot = self._earliest(points, prior, now)
                if slot <= now:
                    spend.at = now
                    spend.settled.set()
                    return spend
                if slot > deadline:
                    raise BudgetExhausted(retry_after=slot - now, command=command)
                spend.at = slot
                metrics.rate_limit_wait("concertpos", slot - now)
                await asyncio.sleep(slot - now)
        except BaseException:
            self.refund(spend)
            raise

    def mark_sent(self, spend: Spend) -> None:
        """Move a spend to when it really went out, so later slots are measured from there."""
        spend.at = max(spend.at, self._clock())

    def refund(self, spend: Spend) -> None:
        """Forget a reservation that was never sent (safe to call twice)."""
        spend.settled.set()
        if spend in self._spends:
            self._spends.remove(spend)

    def pause(self, seconds: float) -> None:
        """The server said ``retry_after``: send nothing at all before then."""
        self._not_before = max(self._not_before, self._clock() + max(0.0, seconds))

    def shorten_pause(self, at_most: float) -> None:
        """Keep a pause from outliving ``at_most`` seconds from now (after a reconnect, a
        wait longer than one window has nothing in the doc's limit to explain it)."""
        self._not_before = min(self._not_before, self._clock() + max(0.0, at_most))

    def snapshot(self) -> BudgetSnapshot:
        now = self._clock()
        self._prune(now)
        used = sum(s.points for s in self._spends if s.at > now - self.window)
        return BudgetSnapshot(limit=self.limit, window=self.window, used=used)


class RateBudgets:
    """The budget each command spends from: one shared by all (``shared``) or one per
    command (``per_command``), created on first use."""

    def __init__(
        self,
        mode: BudgetMode = "shared",
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        *,
        margin: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("shared", "per_command"):
            raise ValueError("the rate budget is 'shared' or 'per_command'")
        self.mode = mode
        self.limit = limit
        self.window = window
        self._make = lambda: RateBudget(limit, window, margin=margin, clock=clock)
        self._shared = self._make()
        self._own: dict[str, RateBudget] = {}

    def for_command(self, command: str) -> RateBudget:
        if self.mode == "shared":
            return self._shared
        budget = self._own.get(command)
        if budget is None:
            budget = self._own[command] = self._make()
        return budget

    def all(self) -> list[RateBudget]:
        return [self._shared] if self.mode == "shared" else list(self._own.values())

    def pause(self, seconds: float, command: str | None = None) -> None:
        """A ``ratelimit`` naming ``command`` pauses that command's budget (all of them when
        shared, or when no command is named)."""
        targets = self.all() if command is None else [self.for_command(command)]
        for budget in targets:
            budget.pause(seconds)

    def shorten_pauses(self, at_most: float) -> None:
        for budget in self.all():
            budget.shorten_pause(at_most)

    def snapshot(self) -> BudgetSnapshot:
        """The shared budget, or the busiest command's when each has its own."""
        snapshots = [b.snapshot() for b in self.all()] or [self._shared.snapshot()]
        return max(snapshots, key=lambda s: s.used)
