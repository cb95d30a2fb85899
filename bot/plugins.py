"""Plugin discovery, life cycle and ownership of everything a plugin starts.

Plugins come from three places: the bundled ``plugins/`` directory (installed as the package
``bot_plugins``), extra directories named in ``bot.plugin_dirs``, and installed packages that
declare the ``bot.plugins`` entry point. Each is registered with pluggy under its name.

The framework, not the plugin, owns the tasks, simulators and clean-up callbacks a plugin
starts (through its :class:`PluginRuntime`), so disabling or reloading a plugin tears down
everything it started, and one plugin failing to import, validate or start is reported and
disabled while the rest of the bot runs.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .alerts import Topic
from .commands import Command
from .config import PluginConfig
from .errors import BotError, ConfigError
from .simulation import Simulator

if TYPE_CHECKING:
    from .app import Bot

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "bot.plugins"
BUNDLED_PACKAGE = "bot_plugins"
CORE_PLUGIN = "core"


@dataclass(frozen=True)
class Health:
    """A plugin's own view of whether it can serve commands right now."""

    state: str  # "up", "degraded" or "down"
    reason: str = ""

    @classmethod
    def up(cls, reason: str = "") -> Health:
        return cls("up", reason)

    @classmethod
    def degraded(cls, reason: str) -> Health:
        return cls("degraded", reason)

    @classmethod
    def down(cls, reason: str) -> Health:
        return cls("down", reason)


@dataclass
class PluginInfo:
    """Where a plugin came from; enough to import it again on reload."""

    name: str
    source: str  # "core", "bundled", "directory" or "package"
    module_name: str
    path: Path | None = None
    entry_point: importlib.metadata.EntryPoint | None = None
    dist_version: str | None = None


class PluginRuntime:
    """What one running plugin owns. Handed to its hooks as ``plugin``."""

    def __init__(self, bot: Bot, info: PluginInfo, module: ModuleType) -> None:
        self.bot = bot
        self.info = info
        self.name = info.name
        self.module = module
        self.config: PluginConfig = PluginConfig()
        #: the protocol client commands reach as ``ctx.client``
        self.client: Any = None
        self.state = "loaded"  # loaded, running, failed, disabled
        self.error = ""
        self.commands: list[Command] = []
        self.topics: list[Topic] = []
        self.log = logging.getLogger(f"bot.plugin.{info.name}")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cleanups: list[Callable[[], Any]] = []

    # ------------------------------------------------------------------ for plugins

    @property
    def store(self) -> Any:
        return self.bot.store

    @property
    def version(self) -> str:
        return str(getattr(self.module, "__version__", None) or self.info.dist_version or "-")

    def create_task(
        self, coro: Coroutine[Any, Any, Any], name: str | None = None
    ) -> asyncio.Task[Any]:
        """Start background work the framework cancels when the plugin stops."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name or 'task'}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.log.error("background task %s failed", task.get_name(), exc_info=exc)

    def on_shutdown(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` (sync or async) when the plugin stops; last registered runs first."""
        self._cleanups.append(callback)

    async def start_simulator(self, sim: Simulator) -> Simulator:
        """Start a bundled simulator owned by this plugin (``simulate: true``)."""
        await sim.start()
        self.on_shutdown(sim.stop)
        return sim

    def publish(self, topic: str, text: str, data: dict[str, Any] | None = None) -> int:
        """Send an event to every chat subscribed to ``topic``; returns how many matched."""
        return self.bot.alerts.publish(topic, text, data)

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset(self._tasks)

    # ------------------------------------------------------------------ for the manager

    async def teardown(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        while self._cleanups:
            cb = self._cleanups.pop()
            try:
                result = cb()
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, 10)
            except Exception:
                self.log.exception("clean-up of plugin %s failed", self.name)
        self.client = None


def _trace_enabled() -> bool:
    return os.environ.get("BOT_TRACE_HOOKS", "") not in ("", "0", "false", "no")


class PluginManager:
    """Finds plugins, calls their hooks, and starts and stops them."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.pm = pluggy.PluginManager("bot")
        self.pm.add_hookspecs(hookspecs)
        self.available: dict[str, PluginInfo] = {}
        self.runtimes: dict[str, PluginRuntime] = {}
        #: plugins that could not be loaded or started, with the reason
        self.failures: dict[str, str] = {}
        self.trace = _trace_enabled()

    # ------------------------------------------------------------------ discovery

    def discover(self, extra_dirs: Iterable[Path] = ()) -> dict[str, PluginInfo]:
        found: dict[str, PluginInfo] = {
            CORE_PLUGIN: PluginInfo(CORE_PLUGIN, "core", "bot.builtins"),
        }
        bundled = importlib.import_module(BUNDLED_PACKAGE)
        for base in bundled.__path__:
            for entry in sorted(Path(base).iterdir()):
                if (entry / "__init__.py").exists() and not entry.name.startswith(("_", ".")):
                    found[entry.name] = PluginInfo(
                        entry.name, "bundled", f"{BUNDLED_PACKAGE}.{entry.name}", entry
                    )
        for d in extra_dirs:
            if not d.is_dir():
                self.failures[str(d)] = f"plugin directory {d} does not exist"
                continue
            for entry in sorted(d.iterdir()):
                if entry.is_dir() and (entry / "__init__.py").exists():
                    mod = f"bot_ext_{entry.name}"
                    found[entry.name] = PluginInfo(entry.name, "directory", mod, entry)
                elif entry.suffix == ".py" and not entry.name.startswith("_"):
                    found[entry.stem] = PluginInfo(
                        entry.stem, "directory", f"bot_ext_{entry.stem}", entry
                    )
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            version = ep.dist.version if ep.dist else None
            found[ep.name] = PluginInfo(ep.name, "package", ep.value, None, ep, version)
        self.available = found
        return found

    def import_plugin(self, info: PluginInfo, *, fresh: bool = False) -> ModuleType:
        """Import a plugin's module; ``fresh`` drops cached modules first (reload)."""
        if fresh:
            for name in [
                m
                for m in sys.modules
                if m == info.module_name or m.startswith(info.module_name + ".")
            ]:
                del sys.modules[name]
            importlib.invalidate_caches()
        if info.source == "package" and info.entry_point is not None:
            obj = info.entry_point.load()
            return obj if isinstance(obj, ModuleType) else sys.modules[obj.__module__]
        if info.source == "directory" and info.path is not None:
            cached = sys.modules.get(info.module_name)
            origin = info.path / "__init__.py" if info.path.is_dir() else info.path
            if cached is not None and getattr(cached, "__file__", None) == str(origin):
                return cached
            if info.path.is_dir():
                spec = importlib.util.spec_from_file_location(
                    info.module_name,
                    info.path / "__init__.py",
                    submodule_search_locations=[str(info.path)],
                )
            else:
                spec = importlib.util.spec_from_file_location(info.module_name, info.path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load plugin from {info.path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[info.module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[info.module_name]
                raise
            return module
        return importlib.import_module(info.module_name)

    # ------------------------------------------------------------------ hook calls

    def register(self, name: str, module: ModuleType) -> None:
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.pm.register(module, name=name)
        unknown = sorted(
            caller.name for caller in self.pm.get_hookcallers(module) or [] if caller.spec is None
        )
        if unknown:
            self.pm.unregister(name=name)
            raise BotError(f"implements unknown hook(s): {', '.join(unknown)}")

    def unregister(self, name: str) -> None:
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)

    def implemented_hooks(self, name: str) -> list[str]:
        plugin = self.pm.get_plugin(name)
        if plugin is None:
            return []
        return sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])

    async def call(self, name: str, hook: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a hook, with the arguments it asked for."""
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            if impl.plugin_name != name:
                continue
            args = {a: kwargs[a] for a in impl.argnames if a in kwargs}
            started = time.perf_counter() if self.trace else 0.0
            result = impl.function(**args)
            if inspect.isawaitable(result):
                result = await result
            if self.trace:
                log.info(
                    "hook %s of %s took %.3f ms", hook, name, (time.perf_counter() - started) * 1e3
                )
            return result
        return None

    # ------------------------------------------------------------------ life cycle

    async def load(self, info: PluginInfo, *, fresh: bool = False) -> PluginRuntime:
        """Import, register and validate config; raises with a clear reason on failure."""
        try:
            module = self.import_plugin(info, fresh=fresh)
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
        name = runtime.name
        sets = await self.call(name, "bot_migrations")
        if sets is not None:
            self.bot.store.migrate(sets if isinstance(sets, list) else [sets])
        commands = list(await self.call(name, "bot_commands") or [])
        for cmd in commands:
            if not isinstance(cmd, Command):
                raise BotError(f"bot_commands returned {cmd!r}, not a @command")
            cmd.plugin = name
            if cmd.service is None and name != CORE_PLUGIN:
                cmd.service = name
        runtime.topics = list(await self.call(name, "bot_alert_topics") or [])
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
            await self.stop(runtime, state="failed")
            raise
        runtime.commands = commands
        for topic in runtime.topics:
            self.bot.alerts.add_topic(topic, owner=name)
        runtime.state = "running"
        runtime.error = ""
        self.runtimes[name] = runtime

    async def stop(self, runtime: PluginRuntime, *, state: str = "disabled") -> None:
        name = runtime.name
        self.bot.registry.remove_plugin(name)
        self.bot.alerts.remove_topics(owner=name)
        if runtime.state == "running":
            try:
                await asyncio.wait_for(self.call(name, "bot_shutdown", plugin=runtime), 15)
            except Exception:
                runtime.log.exception("shutdown of plugin %s failed", name)
        await runtime.teardown()
        runtime.state = state
        self.runtimes.pop(name, None)

    async def enable(self, name: str, *, fresh: bool = False) -> PluginRuntime:
        info = self.available.get(name)
        if info is None:
            raise BotError(f"no plugin named {name!r}")
        runtime = await self.load(info, fresh=fresh)
        await self.start(runtime)
        self.failures.pop(name, None)
        return runtime

    async def try_enable(self, name: str) -> PluginRuntime | None:
        """Enable, or record why not and carry on: one broken plugin never stops the bot."""
        try:
            return await self.enable(name)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, BotError) else f"{type(exc).__name__}: {exc}"
            self.failures[name] = reason
            self.unregister(name)
            log.error("plugin %s disabled: %s", name, reason)
            if not isinstance(exc, BotError) or exc.__cause__ is not None:
                log.debug("".join(traceback.format_exception(exc)))
            return None

    async def disable(self, name: str) -> None:
        runtime = self.runtimes.get(name)
        if runtime is None:
            raise BotError(f"plugin {name!r} is not running")
        await self.stop(runtime)
        self.unregister(name)

    async def reload(self, name: str) -> PluginRuntime:
        """Re-import and restart a plugin; if the new code fails, the old one runs again."""
        info = self.available.get(name)
        old = self.runtimes.get(name)
        if info is None:
            raise BotError(f"no plugin named {name!r}")
        if info.source == "core":
            raise BotError("the core plugin cannot be reloaded")
        saved = {
            m: mod
            for m, mod in sys.modules.items()
            if m == info.module_name or m.startswith(info.module_name + ".")
        }
        old_module = old.module if old else None
        try:
            new_runtime = await self.load(info, fresh=True)
        except Exception as exc:
            sys.modules.update(saved)
            if old_module is not None:
                self.register(name, old_module)
            raise BotError(
                f"reload of {name} failed, the old version keeps running: {exc}"
            ) from exc
        if old is not None:
            await self.stop(old)
        try:
            await self.start(new_runtime)
        except Exception as exc:
            sys.modules.update(saved)
            if old_module is not None and old is not None:
                self.register(name, old_module)
                restored = PluginRuntime(self.bot, info, old_module)
                restored.config = old.config
                await self.start(restored)
            raise BotError(
                f"reload of {name} failed to start, the old version is running again: {exc}"
            ) from exc
        return new_runtime

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

    async def stop_all(self) -> None:
        for name in reversed(list(self.runtimes)):
            await self.stop(self.runtimes[name])
