"""Reconnect delays shared by every protocol client.

Exponential growth with full jitter keeps many bots (or many shards of one bot) from
reconnecting in lockstep after an outage, while the cap keeps a long outage from turning into
minutes of silence once the service is back.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff_delays(
    base: float = 0.2, cap: float = 15.0, factor: float = 2.0, jitter: bool = True
) -> Iterator[float]:
    """Yield an endless sequence of delays: base, base*factor, ... capped, each jittered."""
    delay = base
    while True:
        yield random.uniform(delay / 2, delay) if jitter else delay
        delay = min(cap, delay * factor)
