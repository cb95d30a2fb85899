"""What ``bot plugins`` and the admin ``plugins`` command show about each plugin.

A stopped plugin is described by importing it and calling only its pure hooks
(``bot_commands``, ``bot_alert_topics``) on a scratch pluggy manager, so describing never
starts anything nor touches the live registration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .alerts import Topic
from .commands import Command
from .plugin_hooks import call_hook, reason
from .plugin_loading import PluginInfo, hook_manager, import_plugin, register_module
from .plugin_runtime import Health, PluginRuntime

if TYPE_CHECKING:
    from .plugins import PluginManager


@dataclass(frozen=True)
class PluginDescription:
    """What ``bot plugins`` and the admin ``plugins`` command show about one plugin."""

    name: str
    version: str
    source: str
    location: str
    #: running, failed, disabled, not enabled, invalid config, cannot load
    state: str
    health: Health | None = None
    reason: str = ""
    hooks: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    tasks: int = 0
    #: other plugins of this name that this one hides, as "SOURCE plugin at LOCATION"
    shadows: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``bot plugins --json`` (tools read that, not the text)."""
        return asdict(self)

    def format(self, *, location: bool = False) -> str:
        """Several lines; the first is ``name version [source]: state``."""
        if self.health is not None:
            status = self.health.state + (f" ({self.health.reason})" if self.health.reason else "")
        else:
            status = self.state + (f" - {self.reason}" if self.reason else "")
        lines = [f"{self.name} {self.version} [{self.source}]: {status}"]
        if location and self.location:
            lines.append(f"  from: {self.location}")
        lines += [f"  shadows: {hidden}" for hidden in self.shadows]
        if self.hooks or self.commands:
            lines.append(f"  commands: {', '.join(self.commands) or '-'}")
            lines.append(f"  hooks: {', '.join(self.hooks) or '-'}")
        if self.topics:
            lines.append(f"  alert topics: {', '.join(self.topics)}")
        if self.state == "running":
            lines.append(f"  tasks: {self.tasks}")
        return "\n".join(lines)


async def describe(
    manager: PluginManager, name: str, *, check_health: bool = True
) -> PluginDescription:
    """One plugin as ``plugins`` shows it; imports it (without starting) if not running."""
    info = manager.available.get(name)
    if info is None:
        return PluginDescription(
            name, "-", "?", "", "cannot load", reason=manager.failures.get(name, "not found")
        )
    runtime = manager.runtimes.get(name)
    if runtime is not None:
        return PluginDescription(
            name=name,
            version=runtime.version,
            source=info.source,
            location=info.location,
            state="running",
            health=await manager.health(name) if check_health else None,
            hooks=tuple(manager.implemented_hooks(name)),
            commands=tuple(c.name for c in runtime.commands),
            topics=tuple(t.name for t in runtime.topics),
            tasks=len(runtime.tasks),
            shadows=info.shadows,
        )
    return await describe_stopped(manager, info)


def plugin_for_words(words: Sequence[str], declared: Mapping[str, Iterable[str]]) -> str | None:
    """The plugin whose declared command is the longest one ``words`` start with.

    Longest, because a group and its subcommand may come from different plugins (``cw`` and
    ``cw payout``). Used where a plugin's commands are known but not registered here: a
    plugin that failed to start, and in a cluster one that runs in another process.
    """
    best: tuple[int, str] | None = None
    for plugin, names in declared.items():
        for command_name in names:
            path = command_name.split()
            if list(words[: len(path)]) == path and (best is None or len(path) > best[0]):
                best = (len(path), plugin)
    return best[1] if best else None


async def declared_commands(info: PluginInfo) -> list[Command]:
    """The commands a plugin declares, read without starting it (``bot_commands`` is pure).

    A cluster's gateways list them in menus and its workers route them to the plugin's owner;
    raises what importing the plugin or its hook raised.
    """
    module = import_plugin(info)
    scratch = hook_manager()
    register_module(scratch, info.name, module)
    commands = await call_hook(scratch, info.name, "bot_commands", {}, trace=False)
    return [c for c in commands or [] if isinstance(c, Command)]


async def describe_stopped(manager: PluginManager, info: PluginInfo) -> PluginDescription:
    """Import a plugin that is not running and read its declarations (pure hooks only)."""
    name = info.name
    failure = manager.failures.get(name)
    state = "failed" if failure else "not running"
    try:
        module = import_plugin(info)
        scratch = hook_manager()
        hooks = tuple(register_module(scratch, name, module))
        commands = await call_hook(scratch, name, "bot_commands", {}, trace=manager.trace)
        topics = await call_hook(scratch, name, "bot_alert_topics", {}, trace=manager.trace)
    except Exception as exc:
        return PluginDescription(
            name, "-", info.source, info.location, "cannot load", reason=reason(exc)
        )
    version = PluginRuntime(manager.bot, info, module).version
    return PluginDescription(
        name=name,
        version=version,
        source=info.source,
        location=info.location,
        state=state,
        reason=failure or "",
        hooks=hooks,
        commands=tuple(c.name for c in commands or [] if isinstance(c, Command)),
        topics=tuple(t.name for t in topics or [] if isinstance(t, Topic)),
        shadows=info.shadows,
    )
