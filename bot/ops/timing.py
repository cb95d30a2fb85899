"""Outside API calls timed without touching plugin code: a proxy around ``ctx.client``.

Every plugin exposes its protocol client to commands as ``ctx.client`` and every API call is
an awaited method of it (``await ctx.client.get_points(name)``). With metrics on, commands get
this proxy instead: each awaited method call is timed and counted by plugin, method name and
outcome. Plain attributes, synchronous helpers and private names pass through untouched, so
the client behaves exactly as before.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .. import metrics


class TimedClient:
    """Forwards everything to ``client``; awaited public method calls are measured."""

    __slots__ = ("_bot_client", "_bot_plugin")

    def __init__(self, plugin: str, client: Any) -> None:
        object.__setattr__(self, "_bot_plugin", plugin)
        object.__setattr__(self, "_bot_client", client)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._bot_client, name)
        if name.startswith("_") or isinstance(value, type) or not callable(value):
            return value
        return _timed(value, self._bot_plugin, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._bot_client, name, value)

    def __repr__(self) -> str:
        return f"TimedClient({self._bot_client!r})"


def _timed(fn: Callable[..., Any], plugin: str, call: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        if inspect.iscoroutine(result):
            return _measure(result, plugin, call, started)
        # A synchronous helper (a formatter, a state read) is no API call; a Future or Task is
        # returned as it is, so the caller can still cancel it or ask if it is done.
        return result

    return wrapper


async def _measure(awaitable: Awaitable[Any], plugin: str, call: str, started: float) -> Any:
    try:
        result = await awaitable
    except BaseException as exc:
        metrics.api_call(plugin, call, metrics.api_outcome(exc), time.perf_counter() - started)
        raise
    metrics.api_call(plugin, call, "ok", time.perf_counter() - started)
    return result
