"""Recognising a message the broker hands out a second time.

RabbitMQ redelivers every unacknowledged message when a consumer's connection breaks. A
message whose handling finished but whose ack was lost would then be handled twice: a reply
matched to a newer request, a request carried out again. Both sides (client and simulator)
remember what they handled and skip redelivered copies of it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict


class RecentMessages:
    """The bodies of the last ``size`` messages handled (as hashes)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    def is_repeat(self, body: bytes, redelivered: bool | None) -> bool:
        """True for a redelivered copy of a message already handled; otherwise remember it.

        Only redelivered messages are skipped: two distinct messages may have equal bodies
        (two identical replies), and a first delivery is always new.
        """
        key = hashlib.sha256(body).hexdigest()
        if redelivered and key in self._keys:
            return True
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return False

    def forget(self, body: bytes) -> None:
        """Handling was cut short (its channel closed): the redelivered copy must be handled,
        not skipped as a repeat."""
        self._keys.pop(hashlib.sha256(body).hexdigest(), None)
