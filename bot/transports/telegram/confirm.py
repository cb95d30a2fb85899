"""Yes/no questions answered with inline buttons (callback queries).

Each question gets a random token carried in the buttons' ``callback_data``; a press resolves
the question only if the token is still open and the presser is the person who ran the command
(in a group anyone can press any button). Tokens are forgotten when answered or expired, so a
late or replayed press is told the question expired and changes nothing.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from enum import Enum

PREFIX = "confirm"
YES, NO = "y", "n"


class Outcome(Enum):
    ANSWERED = "answered"
    EXPIRED = "expired"
    NOT_YOURS = "not yours"
    INVALID = "invalid"


@dataclass
class _Open:
    user_id: str
    future: asyncio.Future[bool]


def callback_data(token: str, choice: str) -> str:
    """What a button carries (Telegram allows 1-64 bytes)."""
    return f"{PREFIX}:{token}:{choice}"


class Confirmations:
    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}

    def __len__(self) -> int:
        return len(self._open)

    def open(self, user_id: str) -> tuple[str, asyncio.Future[bool]]:
        token = secrets.token_urlsafe(9)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._open[token] = _Open(user_id, future)
        return token, future

    def close(self, token: str) -> None:
        self._open.pop(token, None)

    def press(self, data: str, user_id: str) -> tuple[Outcome, bool | None]:
        """Apply a button press; returns the outcome and, when answered, the answer."""
        parts = data.split(":")
        if len(parts) != 3 or parts[0] != PREFIX or parts[2] not in (YES, NO):
            return Outcome.INVALID, None
        entry = self._open.get(parts[1])
        if entry is None or entry.future.done():
            return Outcome.EXPIRED, None
        if entry.user_id != user_id:
            return Outcome.NOT_YOURS, None
        answer = parts[2] == YES
        del self._open[parts[1]]
        entry.future.set_result(answer)
        return Outcome.ANSWERED, answer

    def abandon(self) -> None:
        """Shutting down: every open question is answered "no", so nothing is done."""
        for entry in self._open.values():
            if not entry.future.done():
                entry.future.set_result(False)
        self._open.clear()
