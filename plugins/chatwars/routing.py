"""Where an app's messages go on the broker, derived from the app name alone.

The API names everything after the app (``<app>_ex``, ``<app>_o``, ``<app>_i``, and ``_to`` /
``_ti`` in test mode, ``<app>_deals`` for feeds); the client and the simulator both derive the
names here so they cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .feeds import FeedKind

_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_app_name(app: str) -> str:
    """The app name, or ValueError: it becomes part of queue names, so keep it plain."""
    if not _APP_NAME.fullmatch(app):
        raise ValueError(
            "the app name must be 1 to 64 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit"
        )
    return app


@dataclass(frozen=True, slots=True)
class Routing:
    """The exchange, routing key and queues of one app, in normal or test mode."""

    app: str
    test_mode: bool = False

    def __post_init__(self) -> None:
        check_app_name(self.app)

    @property
    def exchange(self) -> str:
        """The direct exchange requests are published to."""
        return f"{self.app}_ex"

    @property
    def routing_key(self) -> str:
        """The routing key of requests (it is also the server's request queue's name)."""
        return f"{self.app}_to" if self.test_mode else f"{self.app}_o"

    @property
    def inbound_queue(self) -> str:
        """The queue the server puts every reply in."""
        return f"{self.app}_ti" if self.test_mode else f"{self.app}_i"

    def feed_queue(self, kind: FeedKind) -> str:
        """The app's own queue bound to a public feed exchange."""
        return f"{self.app}_{kind.value}"
