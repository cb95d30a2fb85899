"""Constants and helpers shared by the ConcertPOS conftest and test files.

A module of its own (not ``conftest``) because test files cannot import from a conftest
reliably: every plugin's test folder has one, all named ``conftest``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot_plugins.concertpos.client import ConcertPOSClient

CONCERTPOS_API_KEY = "test-key-5d1c0e"
CONCERTPOS_INSTANCE = "festival"
#: a short window: the doc's 100 points per 30 s become 100 points per WINDOW s
WINDOW = 0.6

#: client settings for tests: the simulator's window, fast timeouts and reconnects
FAST: dict[str, Any] = {
    "timeout": 2.0,
    "connect_timeout": 1.0,
    "rate_window": WINDOW,
    "rate_margin": 0.05,
    "reconnect_min": 0.02,
    "reconnect_max": 0.1,
}

ClientFactory = Callable[..., Awaitable[ConcertPOSClient]]


def plugin_section(url: str | list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    """A ``plugins.concertpos`` config section for the test simulator, with the same short
    window, timeouts and reconnects as :data:`FAST` (``url=None``: set it in ``overrides``)."""
    section: dict[str, Any] = {
        "api_key": CONCERTPOS_API_KEY,
        "timeout": FAST["timeout"],
        "connect_timeout": FAST["connect_timeout"],
        "rate_window": WINDOW,
        "rate_margin": FAST["rate_margin"],
        "reconnect_min": FAST["reconnect_min"],
        "reconnect_max": FAST["reconnect_max"],
    }
    if url is not None:
        section["url"] = url
    section.update(overrides)
    return section
