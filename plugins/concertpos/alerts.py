"""ConcertPOS broadcasts -> chat alerts on the ``concertpos.updates`` topic.

The client has already dropped its product, payment-method and deposit caches when an
``updatepos`` arrives (before any listener runs), so a chat that reads the alert and types
``pos products`` sees the new prices. Other broadcasts are announcements by the service's
admins and are passed on as text. Replies nobody waited for and stray errors are not chat
news and stay in the log.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

from bot import Topic

from .models import PosEvent

TOPIC = "concertpos.updates"

TOPICS = [
    Topic(
        TOPIC,
        "ConcertPOS point-of-sale updates (prices, products, payment methods) and announcements",
    )
]

#: seconds within which the same alert text is not published again
REPEAT_AFTER = 5.0
#: longest announcement text passed on to chat
_MAX_TEXT = 300
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MASS_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)

Publish = Callable[[str, str, dict[str, Any]], int]


def _clean(text: str) -> str:
    """Server text made safe to post: no control characters, no mass mentions, bounded."""
    text = _CONTROL.sub("", text).strip()
    text = _MASS_MENTION.sub("@\u200b\\1", text)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def alert_for(event: PosEvent, prefix: str) -> tuple[str, dict[str, Any]] | None:
    """The alert text and data for an event, or None if chats need not hear about it."""
    if event.is_updatepos:
        return (
            "ConcertPOS: prices, products or payment methods were updated. "
            f"See {prefix}pos products for the new list.",
            {"event": "updatepos"},
        )
    if event.kind == "broadcast":
        text = _clean(event.name)
        if not text:
            return None
        return f"ConcertPOS announcement: {text}", {"event": "broadcast"}
    return None


def event_publisher(
    publish: Publish,
    prefix: Callable[[], str],
    *,
    repeat_after: float = REPEAT_AFTER,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[PosEvent], None]:
    """A client listener that publishes each alert-worthy event on :data:`TOPIC`.

    An admin editing several prices sends an ``updatepos`` per edit; the same alert text
    again within ``repeat_after`` seconds tells a chat nothing new, so it is published once.
    ``prefix`` is read per event so a changed command prefix shows in later alerts.
    """
    last: dict[str, float] = {}

    def on_event(event: PosEvent) -> None:
        alert = alert_for(event, prefix())
        if alert is None:
            return
        now = clock()
        text = alert[0]
        if now - last.get(text, -math.inf) < repeat_after:
            return
        last.clear()  # only the latest text matters; keeps this from growing
        last[text] = now
        publish(TOPIC, *alert)

    return on_event
