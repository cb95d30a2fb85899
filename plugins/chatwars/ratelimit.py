"""Keeping our request rate modest, as the API's operators ask.

Public ChatWars clients cap themselves near 30 requests per second. The cap is read strictly:
no one-second span ever holds more than the allowed number of sends (a refilling bucket could
burst past it), and waiting callers are served in arrival order.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``rate * period`` events in any span of ``period`` seconds."""

    def __init__(
        self, rate: float, period: float = 1.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or period <= 0:
            raise ValueError("rate and period must be positive")
        self.limit = max(1, math.floor(rate * period))
        self.period = period
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()  # FIFO: an early caller is never overtaken

    async def acquire(self) -> None:
        """Wait until one more event fits in the window, then count it."""
        async with self._lock:
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.period:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] + self.period - now)
