"""What the bot counts for its operator: a no-op facade until ``bot.metrics.listen`` is set.

Instrumentation points (the dispatcher, the alert router, rate limiters, ``ctx.client``) call
the functions here unconditionally. Until :func:`install` is given a sink they return at once
after one global read, so a bot without ``bot.metrics`` neither imports ``prometheus_client``
nor pays for counting: start-up time and memory are measured and matter on small servers.

The sink (:class:`bot.ops.instruments.Instruments`) turns the calls into Prometheus series.
Label values are always names the code chose (command, plugin, platform, call, outcome),
never a user id, chat id, account or token, so a scrape is safe to share.
"""

from __future__ import annotations

from typing import Any, Protocol

from .errors import NotConnected, PermissionDenied, ServiceError, ServiceTimeout, UserError


class Sink(Protocol):
    """What an installed metrics backend receives."""

    def command_done(
        self, command: str, plugin: str, platform: str, outcome: str, seconds: float
    ) -> None: ...

    def api_call(self, plugin: str, call: str, outcome: str, seconds: float) -> None: ...

    def alerts(self, stage: str, count: int) -> None: ...

    def rate_limit_wait(self, limiter: str, seconds: float) -> None: ...


#: the installed backend, or None (the default: every function below returns at once)
_sink: Sink | None = None


def install(sink: Sink) -> None:
    """Start counting into ``sink`` (the last bot to enable metrics owns the facade)."""
    global _sink
    _sink = sink


def uninstall(sink: Sink) -> None:
    """Stop counting, if ``sink`` is still the installed one."""
    global _sink
    if _sink is sink:
        _sink = None


def active() -> bool:
    return _sink is not None


# --------------------------------------------------------------------------- outcomes

#: command outcomes, as the ``outcome`` label spells them
OK, USER_ERROR, REFUSED, FAILED = "ok", "user_error", "refused", "failed"


def command_outcome(exc: BaseException | None) -> str:
    """How a command ended, for the ``outcome`` label.

    ``refused``: the caller may not run it here, or the outside API said no (a
    :class:`ServiceError` with the API's answer). ``failed``: the API could not be reached or
    did not answer, or the bot hit a bug (the user saw an error id). ``user_error``: every
    other message meant for the user (usage, cooldown, no linked account).
    """
    if exc is None:
        return OK
    if isinstance(exc, NotConnected | ServiceTimeout):
        return FAILED
    if isinstance(exc, PermissionDenied | ServiceError):
        return REFUSED
    if isinstance(exc, UserError):
        return USER_ERROR
    return FAILED


def api_outcome(exc: BaseException | None) -> str:
    """How an outside API call ended: ok, refused, timeout, not_connected, cancelled, failed."""
    if exc is None:
        return "ok"
    if isinstance(exc, ServiceTimeout | TimeoutError):
        return "timeout"
    if isinstance(exc, NotConnected):
        return "not_connected"
    if isinstance(exc, ServiceError):
        return "refused"
    if not isinstance(exc, Exception):  # CancelledError, KeyboardInterrupt
        return "cancelled"
    return "failed"


# --------------------------------------------------------------------------- recording


def command_done(command: str, plugin: str, platform: str, outcome: str, seconds: float) -> None:
    """A chat command finished (called by the dispatcher for every command it ran)."""
    if _sink is not None:
        _sink.command_done(command, plugin, platform, outcome, seconds)


def api_call(plugin: str, call: str, outcome: str, seconds: float) -> None:
    """An outside API call finished (see :func:`timed_client`)."""
    if _sink is not None:
        _sink.api_call(plugin, call, outcome, seconds)


def alerts(stage: str, count: int = 1) -> None:
    """Alert events: ``published``, ``delivered`` (messages), ``coalesced``, ``dropped``."""
    if _sink is not None and count > 0:
        _sink.alerts(stage, count)


def rate_limit_wait(limiter: str, seconds: float) -> None:
    """A request waited ``seconds`` for a rate limit (``concertpos``, ``telegram_flood``)."""
    if _sink is not None:
        _sink.rate_limit_wait(limiter, seconds)


def timed_client(plugin: str, client: Any) -> Any:
    """``client`` as commands see it: timed per call when metrics are on, else itself."""
    if _sink is None or client is None:
        return client
    from .ops.timing import TimedClient

    return TimedClient(plugin, client)
