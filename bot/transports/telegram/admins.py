"""A group's own administrators, fetched with getChatAdministrators and trusted briefly.

With ``chat_admins_are_admins`` the people who run a group may use the bot's admin commands in
that group. Asking Telegram on every command would cost a call per message (and count against
flood limits), so each group's list is kept for ``ttl`` seconds; concurrent commands in one
group share a single lookup, and a failed lookup means "not an admin" for a short while rather
than an error in chat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Fetch = Callable[[int], Awaitable[set[str]]]

#: seconds a failed lookup is remembered, so a broken group does not cost a call per message
FAILURE_TTL = 5.0


class ChatAdmins:
    def __init__(self, fetch: Fetch, ttl: float, clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[int, tuple[float, frozenset[str]]] = {}
        self._pending: dict[int, asyncio.Future[frozenset[str]]] = {}
        self.lookups = 0

    async def admins(self, chat_id: int) -> frozenset[str]:
        cached = self._cache.get(chat_id)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        pending = self._pending.get(chat_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[frozenset[str]] = asyncio.get_running_loop().create_future()
        self._pending[chat_id] = future
        try:
            self.lookups += 1
            ids = frozenset(await self._fetch(chat_id))
            ttl = self.ttl
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            log.warning("telegram: cannot list the administrators of chat %s: %s", chat_id, exc)
            ids, ttl = frozenset(), min(self.ttl, FAILURE_TTL)
        finally:
            del self._pending[chat_id]
        self._cache[chat_id] = (self._clock() + ttl, ids)
        if len(self._cache) > 4096:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        future.set_result(ids)
        return ids

    async def is_admin(self, chat_id: int, user_id: str) -> bool:
        return user_id in await self.admins(chat_id)
