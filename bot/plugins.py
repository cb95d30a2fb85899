"""The plugin life cycle: enable, start, stop, disable, reload, health.

The framework, not the plugin, owns what a plugin starts, so disabling or reloading a plugin
tears all of it down and one plugin failing to import, validate or start is reported and
disabled while the rest of the bot runs:

- tasks started with :meth:`PluginRuntime.create_task` or :meth:`PluginRuntime.every`, and
  also every task created *while the plugin's code runs* (in ``bot_startup`` or in one of its
  own tasks, e.g. a client's keep-alive task): a context variable marks the plugin as the
  owner and a task factory on the loop records the task, so a client that spawns tasks the
  plugin never sees cannot leak them across a reload;
- clean-up callbacks (``plugin.on_shutdown``: close the client, stop the simulator);
- its commands and alert topics, which are registered from the hooks and removed on stop.

Reload imports the new code and validates its hooks and config *before* touching the running
version, and if the new version fails to start, the old one is started again.

The parts live beside this module, one topic each, and are re-exported here:
:mod:`bot.plugin_tasks` (task ownership), :mod:`bot.plugin_runtime` (what a plugin is handed),
:mod:`bot.plugin_loading` (discovery, import, pluggy registration), :mod:`bot.plugin_hooks`
(calling a hook) and :mod:`bot.plugin_info` (what ``plugins`` shows).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .alerts import Topic
from .commands import Command
from .config import PluginConfig
from .errors import BotError, ConfigError
from .plugin_hooks import call_hook, trace_enabled, trace_log
from .plugin_hooks import reason as _reason
from .plugin_info import PluginDescription, describe, describe_stopped, plugin_for_words
from .plugin_loading import (
    BUNDLED_PACKAGE,
    CORE_PLUGIN,
    DIRECTORY_PREFIX,
    ENTRY_POINT_GROUP,
    PluginInfo,
    discover_plugins,
    hook_manager,
    import_plugin,
    import_plugin_directory,
    modules_of,
    register_module,
    restore_modules,
)
from .plugin_runtime import Health, PluginRuntime
from .plugin_tasks import TEARDOWN_TIMEOUT, current_plugin, install_task_tracking

if TYPE_CHECKING:
    from .app import Bot

__all__ = [
    "BUNDLED_PACKAGE",
    "CORE_PLUGIN",
    "DIRECTORY_PREFIX",
    "ENTRY_POINT_GROUP",
    "TEARDOWN_TIMEOUT",
    "Health",
    "PluginDescription",
    "PluginInfo",
    "PluginManager",
    "PluginRuntime",
    "current_plugin",
    "import_plugin_directory",
    "install_task_tracking",
]

log = logging.getLogger(__name__)


class PluginManager:
    """Finds plugins, calls their hooks, and starts and stops them."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.pm = hook_manager()
        self.available: dict[str, PluginInfo] = {}
        self.runtimes: dict[str, PluginRuntime] = {}
        #: plugins that could not be loaded or started, with the reason
        self.failures: dict[str, str] = {}
        self.trace = trace_enabled()
        #: command names each plugin declared when it last loaded, so a command of a plugin
        #: that is down can say so instead of "Unknown command"
        self.declared: dict[str, tuple[str, ...]] = {}
        #: one life-cycle change at a time per plugin (two admins reloading at once)
        self._locks: dict[str, asyncio.Lock] = {}
        if self.trace and trace_log.level == logging.NOTSET:
            trace_log.setLevel(logging.INFO)

    # ------------------------------------------------------------------ discovery

    def discover(self, extra_dirs: Iterable[Path] = ()) -> dict[str, PluginInfo]:
        """Find every plugin that could be enabled (see :func:`discover_plugins`)."""
        self.available = discover_plugins(extra_dirs, self.failures)
        return self.available

    def import_plugin(self, info: PluginInfo, *, fresh: bool = False) -> ModuleType:
        """Import a plugin's module; ``fresh`` drops cached modules and bytecode (reload)."""
        return import_plugin(info, fresh=fresh)

    # ------------------------------------------------------------------ hook calls

    def register(self, name: str, module: ModuleType) -> None:
        """Register ``module`` with the live manager under ``name`` (see register_module)."""
        register_module(self.pm, name, module)

    def unregister(self, name: str) -> None:
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)

    def implemented_hooks(self, name: str) -> list[str]:
        plugin = self.pm.get_plugin(name)
        if plugin is None:
            return []
        return sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])

    async def call(self, name: str, hook: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a hook, with the arguments it asked for.

        Runs with the plugin as the owner of any task the hook creates (see the module
        docstring). With ``BOT_TRACE_HOOKS=1`` each call is logged with its duration.
        """
        return await call_hook(self.pm, name, hook, kwargs, trace=self.trace)

    # ------------------------------------------------------------------ life cycle

    async def load(
        self, info: PluginInfo, *, fresh: bool = False, module: ModuleType | None = None
    ) -> PluginRuntime:
        """Import, register and validate config; raises with a clear reason on failure."""
        if module is None:
            try:
                # In a worker thread: an import is tens of milliseconds of CPU with no await
                # in it, and the loop meanwhile answers an early transport (the console's
                # first ``!ping``) and keeps the plugins already started connected.
                module = await asyncio.to_thread(self.import_plugin, info, fresh=fresh)
            except Exception as exc:
                raise BotError(f"failed to import: {type(exc).__name__}: {exc}") from exc
        self.register(info.name, module)
        runtime = PluginRuntime(self.bot, info, module)
        try:
            model = await self.call(info.name, "bot_config_model")
            runtime.config = self.bot.loaded_config.validate_plugin(info.name, model)
        except ConfigError:
            self.unregister(info.name)
            raise
        return runtime

    async def start(self, runtime: PluginRuntime) -> None:
        """Migrate, collect commands and topics, then run ``bot_startup``."""
        install_task_tracking()
        name = runtime.name
        sets = await self.call(name, "bot_migrations", plugin=runtime)
        if sets is not None:
            self.bot.store.migrate(sets if isinstance(sets, list) else [sets])
        commands = list(await self.call(name, "bot_commands", plugin=runtime) or [])
        for cmd in commands:
            if not isinstance(cmd, Command):
                raise BotError(f"bot_commands returned {cmd!r}, not a @command")
            cmd.plugin = name
            if cmd.service is None and name != CORE_PLUGIN:
                cmd.service = name
        self.declared[name] = tuple(c.name for c in commands)
        topics = list(await self.call(name, "bot_alert_topics", plugin=runtime) or [])
        for topic in topics:
            if not isinstance(topic, Topic):
                raise BotError(f"bot_alert_topics returned {topic!r}, not a Topic")
        runtime.topics = topics
        try:
            await self.call(
                name, "bot_startup", plugin=runtime, config=runtime.config, bot=self.bot
            )
        except BaseException:
            await runtime.teardown()
            raise
        try:
            for cmd in commands:
                self.bot.registry.add(cmd)
        except ValueError:
            self.bot.registry.remove_plugin(name)
            await self.stop(runtime, phase="failed")
            raise
        runtime.commands = commands
        for topic in runtime.topics:
            self.bot.alerts.add_topic(topic, owner=name)
        runtime.phase = "running"
        runtime.error = ""
        self.runtimes[name] = runtime

    async def stop(self, runtime: PluginRuntime, *, phase: str = "disabled") -> None:
        name = runtime.name
        self.bot.registry.remove_plugin(name)
        self.bot.alerts.remove_topics(owner=name)
        if runtime.phase == "running":
            try:
                await asyncio.wait_for(self.call(name, "bot_shutdown", plugin=runtime), 15)
            except Exception:
                runtime.log.exception("shutdown of plugin %s failed", name)
        await runtime.teardown()
        runtime.phase = phase
        if self.runtimes.get(name) is runtime:
            del self.runtimes[name]

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def enable(self, name: str, *, fresh: bool = False) -> PluginRuntime:
        async with self._lock(name):
            return await self._enable(name, fresh=fresh)

    async def _enable(self, name: str, *, fresh: bool) -> PluginRuntime:
        info = self.available.get(name)
        if info is None:
            raise BotError(f"no plugin named {name!r}")
        if name in self.runtimes:
            raise BotError(f"plugin {name!r} is already running")
        try:
            runtime = await self.load(info, fresh=fresh)
            await self.start(runtime)
        except Exception as exc:
            # Recorded, so ``status`` still lists the plugin as down, with this reason.
            self.failures[name] = _reason(exc)
            self.unregister(name)
            if name not in self.declared:  # failed before start() read its commands
                self.declared[name] = (await describe_stopped(self, info)).commands
            if isinstance(exc, BotError):
                raise
            raise BotError(_reason(exc)) from exc
        self.failures.pop(name, None)
        return runtime

    async def try_enable(self, name: str) -> PluginRuntime | None:
        """Enable, or record why not and carry on: one broken plugin never stops the bot."""
        try:
            return await self.enable(name)
        except Exception as exc:
            reason = _reason(exc)
            self.failures[name] = reason
            self.unregister(name)
            log.error("plugin %s disabled: %s", name, reason)
            if not isinstance(exc, BotError) or exc.__cause__ is not None:
                log.debug("".join(traceback.format_exception(exc)))
            return None

    async def disable(self, name: str) -> None:
        async with self._lock(name):
            await self._disable(name)

    async def _disable(self, name: str) -> None:
        runtime = self.runtimes.get(name)
        if runtime is None:
            raise BotError(f"plugin {name!r} is not running")
        if name == CORE_PLUGIN:
            raise BotError("the core plugin cannot be disabled")
        await self.stop(runtime)
        self.unregister(name)

    async def reload(self, name: str) -> PluginRuntime:
        """Re-import and restart a plugin; if the new code fails, the old one keeps running.

        The new code is imported and its hooks and config section are validated while the
        old version still runs; only then is the old version stopped (its own
        ``bot_shutdown`` runs) and the new one started. If that start fails, the old modules
        are put back and the old version is started again. Database migrations the new
        version applied are not undone: write migrations the old code tolerates.
        """
        async with self._lock(name):
            return await self._reload(name)

    async def _reload(self, name: str) -> PluginRuntime:
        info = self.available.get(name)
        if info is None:
            raise BotError(f"no plugin named {name!r}")
        if info.source == "core":
            raise BotError("the core plugin cannot be reloaded")
        old = self.runtimes.get(name)
        saved = modules_of(info)
        try:
            module = self.import_plugin(info, fresh=True)
            config = await self._validate_candidate(info, module)
        except Exception as exc:
            restore_modules(info, saved)
            if old is None:
                self.failures[name] = _reason(exc)
                raise BotError(
                    f"reload of {name} failed (it was not running): {_reason(exc)}"
                ) from exc
            raise BotError(
                f"reload of {name} failed, the old version keeps running: {_reason(exc)}"
            ) from exc
        if old is not None:
            await self.stop(old, phase="replaced")
        runtime = PluginRuntime(self.bot, info, module)
        runtime.config = config
        try:
            self.register(name, module)
            await self.start(runtime)
        except Exception as exc:
            reason = _reason(exc)
            self.unregister(name)
            restore_modules(info, saved)
            if old is None:
                self.failures[name] = reason
                raise BotError(f"reload of {name} failed to start: {reason}") from exc
            restored = PluginRuntime(self.bot, info, old.module)
            restored.config = old.config
            try:
                self.register(name, old.module)
                await self.start(restored)
            except Exception as again:
                self.unregister(name)
                self.failures[name] = _reason(again)
                raise BotError(
                    f"reload of {name} failed to start ({reason}), and the old version did "
                    f"not start again either: {_reason(again)}"
                ) from exc
            raise BotError(
                f"reload of {name} failed to start, the old version is running again: {reason}"
            ) from exc
        self.failures.pop(name, None)
        log.info("plugin %s reloaded (version %s)", name, runtime.version)
        return runtime

    async def _validate_candidate(self, info: PluginInfo, module: ModuleType) -> PluginConfig:
        """Check new code's hooks and config without registering it in the live manager."""
        scratch = hook_manager()
        register_module(scratch, info.name, module)
        model = await call_hook(scratch, info.name, "bot_config_model", {}, trace=self.trace)
        return self.bot.loaded_config.validate_plugin(info.name, model)

    async def health(self, name: str) -> Health:
        runtime = self.runtimes.get(name)
        if runtime is None:
            reason = self.failures.get(name, "disabled")
            return Health.down(reason)
        try:
            result = await asyncio.wait_for(self.call(name, "bot_health", plugin=runtime), 2)
        except Exception as exc:
            return Health.degraded(f"health check failed: {exc}")
        return result if isinstance(result, Health) else Health.up()

    def down_plugin_for(self, words: list[str]) -> tuple[str, str] | None:
        """``(plugin, reason)`` if ``words`` start with a command of a plugin that failed.

        Only plugins whose commands could be read are known here (one that cannot even be
        imported declared nothing). A plugin an admin disabled is not "down": its commands
        are simply gone, as they are when it is not configured.
        """
        down = {
            plugin: names
            for plugin, names in self.declared.items()
            if plugin not in self.runtimes and plugin in self.failures
        }
        plugin = plugin_for_words(words, down)
        return None if plugin is None else (plugin, self.failures[plugin])

    async def stop_all(self) -> None:
        for name in reversed(list(self.runtimes)):
            await self.stop(self.runtimes[name])

    # ------------------------------------------------------------------ introspection

    async def describe(self, name: str, *, check_health: bool = True) -> PluginDescription:
        """One plugin as ``plugins`` shows it; imports it (without starting) if not running."""
        return await describe(self, name, check_health=check_health)

    async def _describe_stopped(self, info: PluginInfo) -> PluginDescription:
        return await describe_stopped(self, info)

    async def describe_all(self, *, check_health: bool = True) -> list[PluginDescription]:
        names = sorted(set(self.available) | set(self.failures))
        return [await self.describe(n, check_health=check_health) for n in names]
