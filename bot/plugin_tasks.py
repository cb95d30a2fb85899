"""Which plugin owns a task: the context variable, the loop's task factory, cancelling.

Kept apart from the runtime because the task factory is installed on the loop once for all
plugins, and hook calls (:mod:`bot.plugin_hooks`) set the owner too.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plugin_runtime import PluginRuntime

#: seconds a plugin's tasks and clean-ups get to finish when it stops
TEARDOWN_TIMEOUT = 10.0

#: the plugin whose code is running; tasks created under it belong to it
_OWNER: contextvars.ContextVar[PluginRuntime | None] = contextvars.ContextVar(
    "bot_plugin_owner", default=None
)


def current_plugin() -> PluginRuntime | None:
    """The plugin whose hook or task is running now, if any."""
    return _OWNER.get()


def install_task_tracking(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Make ``loop`` record which plugin created each task (idempotent).

    Chains to a task factory already installed, so it composes with other tools.
    """
    loop = loop or asyncio.get_running_loop()
    previous = loop.get_task_factory()
    if getattr(previous, "_bot_tracks_owner", False):
        return

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        if previous is None:
            task: asyncio.Future[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        else:
            task = previous(loop, coro, **kwargs)
        context: contextvars.Context | None = kwargs.get("context")
        owner = context.get(_OWNER) if context is not None else _OWNER.get()
        if owner is not None and isinstance(task, asyncio.Task):
            owner._adopt(task)
        return task

    factory._bot_tracks_owner = True  # type: ignore[attr-defined]
    loop.set_task_factory(factory)  # type: ignore[arg-type]


async def cancel_all(tasks: list[asyncio.Task[Any]], timeout: float, logger: Any) -> None:
    for t in tasks:
        t.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    if pending:
        logger.error(
            "%d task(s) ignored cancellation for %.0f s: %s",
            len(pending),
            timeout,
            ", ".join(t.get_name() for t in pending),
        )
