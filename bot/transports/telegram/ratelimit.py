"""Flood limits: PTB's AIORateLimiter pacing, with a 429 that pauses only its own chat.

AIORateLimiter keeps us under Telegram's limits (about 30 messages a second overall and 20 a
minute per group), but when Telegram still answers 429 "retry after N" it halts *every*
request of the bot for N seconds: one busy group would freeze replies in all other chats. Here
the pacing stays AIORateLimiter's own and the wait is per chat: the chat that got the 429
waits (and its later messages queue behind it), everyone else carries on.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

from ... import metrics

log = logging.getLogger(__name__)

#: Telegram asks for this much more than it says, in practice
_SLACK = 0.1


class _QuietBaseRetries(logging.Filter):
    """The base class logs every 429 as an error with a traceback when it has no retries
    left; here it never has any (retries are ours), so those records are noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg == "Rate limit hit after maximum of %d retries" and record.args == (0,)
        )


logging.getLogger("telegram.ext.AIORateLimiter").addFilter(_QuietBaseRetries())


def retry_after_seconds(exc: RetryAfter) -> float:
    """The wait Telegram asked for, whichever type this PTB version returns it as."""
    value: Any = exc.retry_after  # PTB 22 warns (DeprecationWarning) it becomes a timedelta
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


class ChatFloodLimiter(AIORateLimiter):
    """AIORateLimiter whose RetryAfter handling pauses one chat instead of the whole bot."""

    def __init__(
        self,
        *,
        per_second: float = 30.0,
        group_per_minute: float = 20.0,
        retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            overall_max_rate=per_second,
            overall_time_period=1 if per_second else 0,
            group_max_rate=group_per_minute,
            group_time_period=60 if group_per_minute else 0,
            max_retries=0,
        )
        self.retries = retries
        self._clock = clock
        self._paused: dict[str, float] = {}
        #: how many 429s were waited out (status and tests)
        self.flood_waits = 0

    def paused_for(self, chat_id: int | str | None) -> float:
        """Seconds this chat still waits after a 429 (0 if it does not)."""
        until = self._paused.get(self._key(chat_id))
        return max(0.0, until - self._clock()) if until else 0.0

    @staticmethod
    def _key(chat_id: Any) -> str:
        # Requests without a chat (menus, callback answers) share one bucket of their own.
        return "" if chat_id is None else str(chat_id)

    async def _wait_turn(self, key: str) -> None:
        # A loop, because another 429 in this chat may extend the pause while we sleep.
        for _ in range(100):
            left = self._paused.get(key, 0.0) - self._clock()
            if left <= 0:
                break
            await asyncio.sleep(left)
        if key in self._paused:
            del self._paused[key]

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        key = self._key(data.get("chat_id"))
        retries = self.retries if rate_limit_args is None else rate_limit_args
        attempt = 0
        while True:
            await self._wait_turn(key)
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, None)
            except RetryAfter as exc:
                if attempt >= retries:
                    raise
                attempt += 1
                self.flood_waits += 1
                wait = retry_after_seconds(exc) + _SLACK
                metrics.rate_limit_wait("telegram_flood", wait)
                until = self._clock() + wait
                self._paused[key] = max(self._paused.get(key, 0.0), until)
                log.info(
                    "telegram: flood limit on %s for chat %s; waiting %.1f s", endpoint, key, wait
                )
