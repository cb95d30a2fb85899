"""One chat's commands in order, different chats side by side (grammY's ``sequentialize``).

A lane runs each job to completion, or until its command asks a question: then the next
message of the chat may be the answer, so the lane moves on while the command waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Lanes:
    def __init__(self) -> None:
        self._lanes: dict[Hashable, deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: Hashable, job: Job) -> None:
        """Queue ``job`` behind the chat's earlier jobs (call without awaiting first, so the
        order of calls is the order of jobs)."""
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(job)
            return
        self._lanes[key] = deque([job])
        task = asyncio.create_task(self._drain(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: Hashable) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                try:
                    await lane[0]()
                except Exception:  # a job's own bug: the chat's later commands still run
                    log.exception("a command of the cluster failed")
                lane.popleft()
        finally:
            del self._lanes[key]

    def busy(self) -> bool:
        return bool(self._lanes)

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
