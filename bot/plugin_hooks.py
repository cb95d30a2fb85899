"""Calling one plugin's implementation of a hook, as its owner, optionally traced.

Every hook call goes through :func:`call_hook`, whether on the live manager or on a scratch
manager that only reads a stopped plugin's declarations, so tracing and task ownership are
the same for both.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from typing import Any

import pluggy

from .errors import BotError
from .plugin_runtime import PluginRuntime
from .plugin_tasks import _OWNER

#: BOT_TRACE_HOOKS=1 logs every hook call here, at INFO, with its duration
trace_log = logging.getLogger("bot.trace")


def trace_enabled() -> bool:
    """Whether ``BOT_TRACE_HOOKS`` asks for every hook call to be logged."""
    return os.environ.get("BOT_TRACE_HOOKS", "") not in ("", "0", "false", "no")


async def call_hook(
    pm: pluggy.PluginManager, name: str, hook: str, kwargs: dict[str, Any], *, trace: bool
) -> Any:
    """Call plugin ``name``'s ``hook`` with the arguments it asked for; None if it has none."""
    caller = getattr(pm.hook, hook)
    for impl in caller.get_hookimpls():
        if impl.plugin_name != name:
            continue
        args = {a: kwargs[a] for a in impl.argnames if a in kwargs}
        runtime = kwargs.get("plugin")
        token = _OWNER.set(runtime) if isinstance(runtime, PluginRuntime) else None
        started = time.perf_counter()
        try:
            result = impl.function(**args)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            if trace:
                trace_log.info(
                    "hook %s of %s failed after %.3f ms: %s",
                    hook,
                    name,
                    (time.perf_counter() - started) * 1e3,
                    reason(exc),
                )
            raise
        finally:
            if token is not None:
                _OWNER.reset(token)
        if trace:
            trace_log.info(
                "hook %s of %s took %.3f ms", hook, name, (time.perf_counter() - started) * 1e3
            )
        return result
    return None


def reason(exc: BaseException) -> str:
    """One line for chat and logs: a BotError's own words, else the exception type and text."""
    if isinstance(exc, BotError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
