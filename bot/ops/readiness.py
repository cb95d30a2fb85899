"""Is every enabled plugin and transport up? One answer for ``status``, ``/readyz`` and metrics.

The chat command, the health endpoint and the connection-state series read the same list, so
an operator sees the same words in chat, in a supervisor's log and on a dashboard.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import Bot

#: the core plugin (help, status, ...) is always there and has nothing to connect to
_CORE = "core"


@dataclass(frozen=True)
class Component:
    """One plugin or transport and its health: ``state`` is "up" when it works."""

    kind: str  # "plugin" or "transport"
    name: str
    state: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "up"

    def line(self) -> str:
        """As ``status`` prints it: ``plugin deepbot: down - <why>``."""
        return f"{self.kind} {self.name}: {self.state}" + (
            f" - {self.reason}" if self.reason else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def components(bot: Bot) -> list[Component]:
    """Every enabled plugin (also those that failed to start) and transport, with its health.

    Reasons come from exceptions and APIs (a URL with a password in it), so every configured
    secret is masked in them, as in the logs.
    """
    found: list[Component] = []
    for name in sorted(set(bot.plugins.runtimes) | set(bot.plugins.failures)):
        if name == _CORE:
            continue
        health = await bot.plugins.health(name)
        found.append(Component("plugin", name, health.state, bot.scrub(health.reason)))
    cluster = getattr(bot, "cluster", None)
    if cluster is not None and hasattr(cluster, "remote_commands"):  # a worker
        for name in sorted(set(cluster.remote_commands) - set(bot.plugins.runtimes)):
            if name in bot.plugins.failures:
                continue
            said = cluster.members.plugin_health(name)
            state, reason = said if said else ("down", "no worker of the cluster owns it")
            found.append(Component("plugin", name, state, bot.scrub(reason)))
    for platform, transport in sorted(bot.transports.items()):
        state, reason = transport.status()
        found.append(Component("transport", platform, state, bot.scrub(reason)))
    return found
