"""Plugin discovery, life cycle and ownership of everything a plugin starts.

Plugins come from three places: the bundled ``plugins/`` directory (installed as the package
``bot_plugins``), extra directories named in ``bot.plugin_dirs``, and installed packages that
declare the ``bot.plugins`` entry point. Each is registered with pluggy under its name.

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
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass
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
#: BOT_TRACE_HOOKS=1 logs every hook call here, at INFO, with its duration
trace_log = logging.getLogger("bot.trace")

ENTRY_POINT_GROUP = "bot.plugins"
BUNDLED_PACKAGE = "bot_plugins"
DIRECTORY_PREFIX = "bot_ext_"
CORE_PLUGIN = "core"

#: seconds a plugin's tasks and clean-ups get to finish when it stops
TEARDOWN_TIMEOUT = 10.0


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

    @property
    def location(self) -> str:
        """Where to look for the code: a path, or the package and its entry point."""
        if self.path is not None:
            return str(self.path)
        if self.entry_point is not None:
            dist = self.entry_point.dist.name if self.entry_point.dist else "?"
            return f"{dist}: {self.entry_point.value}"
        return self.module_name


# --------------------------------------------------------------------------- task ownership

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
        self.state = "loaded"  # loaded, running, failed, disabled, replaced
        self.error = ""
        self.commands: list[Command] = []
        self.topics: list[Topic] = []
        self.log = logging.getLogger(f"bot.plugin.{info.name}")
        #: names of tasks that were still running after clean-up and had to be cancelled
        self.leaked: list[str] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._adopted: set[asyncio.Task[Any]] = set()
        self._cleanups: list[Callable[[], Any]] = []
        self._closed = False

    # ------------------------------------------------------------------ for plugins

    @property
    def store(self) -> Any:
        return self.bot.store

    @property
    def version(self) -> str:
        version = getattr(self.module, "__version__", None) or self.info.dist_version
        if version is None and self.info.source in ("core", "bundled"):
            # Bundled plugins ship inside the framework's distribution: same version.
            from . import __version__

            version = __version__
        return str(version or "-")

    def create_task(
        self, coro: Coroutine[Any, Any, Any], name: str | None = None
    ) -> asyncio.Task[Any]:
        """Start background work the framework cancels when the plugin stops.

        Tasks that this task creates in turn belong to the plugin too.
        """
        if self._closed:
            coro.close()
            raise RuntimeError(f"plugin {self.name} has stopped; it cannot start tasks")
        context = contextvars.copy_context()
        context.run(_OWNER.set, self)
        task = asyncio.get_running_loop().create_task(
            coro, name=f"{self.name}:{name or 'task'}", context=context
        )
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def every(
        self,
        seconds: float,
        job: Callable[[], Awaitable[Any]],
        *,
        name: str | None = None,
        first: float | None = None,
    ) -> asyncio.Task[Any]:
        """Run ``job`` every ``seconds`` (first after ``first`` seconds) until the plugin stops.

        A run that raises is logged and the schedule goes on: one bad poll must not end a job
        nobody is watching.
        """
        if not seconds > 0:
            raise ValueError(f"the interval must be more than 0 seconds, not {seconds!r}")

        async def schedule() -> None:
            await asyncio.sleep(seconds if first is None else first)
            while True:
                try:
                    await job()
                except Exception:
                    self.log.exception("scheduled job %s of %s failed", name or job, self.name)
                await asyncio.sleep(seconds)

        return self.create_task(schedule(), name=name or f"every {seconds:g} s")

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
        """Every live task the plugin owns: started by it, or created while its code ran."""
        return frozenset(t for t in self._tasks | self._adopted if not t.done())

    # ------------------------------------------------------------------ for the manager

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.log.error("background task %s failed", task.get_name(), exc_info=exc)

    def _adopt(self, task: asyncio.Task[Any]) -> None:
        if self._closed:
            # Created during teardown (a client's close() may spawn one): still ours to cancel.
            self.leaked.append(task.get_name())
            task.cancel()
            return
        self._adopted.add(task)
        task.add_done_callback(self._adopted.discard)

    async def teardown(self, timeout: float = TEARDOWN_TIMEOUT) -> None:
        """Cancel the plugin's tasks, run its clean-ups, then cancel anything still left.

        Clean-ups run after the plugin's own tasks stopped (so a read loop does not see its
        connection vanish and reconnect) but before stray tasks are cancelled (so a
        simulator's ``stop`` can close its connections in order).
        """
        current = asyncio.current_task()
        await _cancel_all([t for t in self._tasks if t is not current], timeout, self.log)
        self._tasks.clear()
        while self._cleanups:
            cb = self._cleanups.pop()
            try:
                result = cb()
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, timeout)
            except Exception:
                self.log.exception("clean-up of plugin %s failed", self.name)
        self._closed = True
        left = [t for t in self._adopted if not t.done() and t is not current]
        if left:
            self.leaked += sorted(t.get_name() for t in left)
            self.log.warning(
                "plugin %s left %d task(s) running after its clean-up; cancelling: %s",
                self.name,
                len(left),
                ", ".join(sorted(t.get_name() for t in left)),
            )
            await _cancel_all(left, timeout, self.log)
        self._adopted.clear()
        self.client = None


async def _cancel_all(tasks: list[asyncio.Task[Any]], timeout: float, logger: Any) -> None:
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


def _trace_enabled() -> bool:
    return os.environ.get("BOT_TRACE_HOOKS", "") not in ("", "0", "false", "no")


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
        if self.hooks or self.commands:
            lines.append(f"  commands: {', '.join(self.commands) or '-'}")
            lines.append(f"  hooks: {', '.join(self.hooks) or '-'}")
        if self.topics:
            lines.append(f"  alert topics: {', '.join(self.topics)}")
        if self.state == "running":
            lines.append(f"  tasks: {self.tasks}")
        return "\n".join(lines)


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
        #: one life-cycle change at a time per plugin (two admins reloading at once)
        self._locks: dict[str, asyncio.Lock] = {}
        if self.trace and trace_log.level == logging.NOTSET:
            trace_log.setLevel(logging.INFO)

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
                if entry.name.startswith(("_", ".")):
                    continue
                if entry.is_dir() and (entry / "__init__.py").exists():
                    mod = f"{DIRECTORY_PREFIX}{entry.name}"
                    found[entry.name] = PluginInfo(entry.name, "directory", mod, entry)
                elif entry.suffix == ".py":
                    found[entry.stem] = PluginInfo(
                        entry.stem, "directory", f"{DIRECTORY_PREFIX}{entry.stem}", entry
                    )
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            version = ep.dist.version if ep.dist else None
            found[ep.name] = PluginInfo(ep.name, "package", ep.module, None, ep, version)
        self.available = found
        return found

    def import_plugin(self, info: PluginInfo, *, fresh: bool = False) -> ModuleType:
        """Import a plugin's module; ``fresh`` drops cached modules and bytecode (reload)."""
        if fresh:
            for name, module in self._modules_of(info).items():
                _drop_bytecode(module)
                del sys.modules[name]
            if info.path is not None:
                for source in _sources(info.path):
                    _drop_bytecode_file(source)
            importlib.invalidate_caches()
        if info.source == "package" and info.entry_point is not None:
            obj = info.entry_point.load()
            return obj if isinstance(obj, ModuleType) else sys.modules[obj.__module__]
        if info.source == "directory" and info.path is not None:
            return import_plugin_directory(info.path, info.module_name)
        return importlib.import_module(info.module_name)

    def _modules_of(self, info: PluginInfo) -> dict[str, ModuleType]:
        prefix = info.module_name + "."
        return {
            m: mod
            for m, mod in list(sys.modules.items())
            if mod is not None and (m == info.module_name or m.startswith(prefix))
        }

    def _restore_modules(self, info: PluginInfo, saved: dict[str, ModuleType]) -> None:
        """Put back the modules a failed reload replaced (and drop ones it added)."""
        for name in self._modules_of(info):
            if name not in saved:
                del sys.modules[name]
        sys.modules.update(saved)
        for name, module in saved.items():
            parent, _, child = name.rpartition(".")
            if parent and parent in sys.modules:
                setattr(sys.modules[parent], child, module)

    # ------------------------------------------------------------------ hook calls

    def register(self, name: str, module: ModuleType) -> None:
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        try:
            self.pm.register(module, name=name)
        except pluggy.PluginValidationError as exc:
            raise BotError(f"has a hook with wrong arguments: {exc}") from exc
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
        """Call one plugin's implementation of a hook, with the arguments it asked for.

        Runs with the plugin as the owner of any task the hook creates (see the module
        docstring). With ``BOT_TRACE_HOOKS=1`` each call is logged with its duration.
        """
        return await _call_impl(self.pm, name, hook, kwargs, trace=self.trace)

    # ------------------------------------------------------------------ life cycle

    async def load(
        self, info: PluginInfo, *, fresh: bool = False, module: ModuleType | None = None
    ) -> PluginRuntime:
        """Import, register and validate config; raises with a clear reason on failure."""
        if module is None:
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
        runtime = await self.load(info, fresh=fresh)
        await self.start(runtime)
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
        saved = self._modules_of(info)
        try:
            module = self.import_plugin(info, fresh=True)
            config = await self._validate_candidate(info, module)
        except Exception as exc:
            self._restore_modules(info, saved)
            raise BotError(
                f"reload of {name} failed, the old version keeps running: {_reason(exc)}"
            ) from exc
        if old is not None:
            await self.stop(old, state="replaced")
        runtime = PluginRuntime(self.bot, info, module)
        runtime.config = config
        try:
            self.register(name, module)
            await self.start(runtime)
        except Exception as exc:
            reason = _reason(exc)
            self.unregister(name)
            self._restore_modules(info, saved)
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
        scratch = pluggy.PluginManager("bot")
        scratch.add_hookspecs(hookspecs)
        try:
            scratch.register(module, name=info.name)
        except pluggy.PluginValidationError as exc:
            raise BotError(f"has a hook with wrong arguments: {exc}") from exc
        unknown = sorted(c.name for c in scratch.get_hookcallers(module) or [] if c.spec is None)
        if unknown:
            raise BotError(f"implements unknown hook(s): {', '.join(unknown)}")
        model = await _call_impl(scratch, info.name, "bot_config_model", {}, trace=self.trace)
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

    async def stop_all(self) -> None:
        for name in reversed(list(self.runtimes)):
            await self.stop(self.runtimes[name])

    # ------------------------------------------------------------------ introspection

    async def describe(self, name: str, *, check_health: bool = True) -> PluginDescription:
        """One plugin as ``plugins`` shows it; imports it (without starting) if not running."""
        info = self.available.get(name)
        if info is None:
            return PluginDescription(
                name, "-", "?", "", "cannot load", reason=self.failures.get(name, "not found")
            )
        runtime = self.runtimes.get(name)
        if runtime is not None:
            return PluginDescription(
                name=name,
                version=runtime.version,
                source=info.source,
                location=info.location,
                state="running",
                health=await self.health(name) if check_health else None,
                hooks=tuple(self.implemented_hooks(name)),
                commands=tuple(c.name for c in runtime.commands),
                topics=tuple(t.name for t in runtime.topics),
                tasks=len(runtime.tasks),
            )
        return await self._describe_stopped(info)

    async def _describe_stopped(self, info: PluginInfo) -> PluginDescription:
        """Import a plugin that is not running and read its declarations (pure hooks only)."""
        name = info.name
        failure = self.failures.get(name)
        state = "failed" if failure else "not running"
        try:
            module = self.import_plugin(info)
            scratch = pluggy.PluginManager("bot")
            scratch.add_hookspecs(hookspecs)
            scratch.register(module, name=name)
            hooks = tuple(sorted(c.name for c in scratch.get_hookcallers(module) or []))
            commands = await _call_impl(scratch, name, "bot_commands", {}, trace=self.trace)
            topics = await _call_impl(scratch, name, "bot_alert_topics", {}, trace=self.trace)
        except Exception as exc:
            return PluginDescription(
                name, "-", info.source, info.location, "cannot load", reason=_reason(exc)
            )
        version = PluginRuntime(self.bot, info, module).version
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
        )

    async def describe_all(self, *, check_health: bool = True) -> list[PluginDescription]:
        names = sorted(set(self.available) | set(self.failures))
        return [await self.describe(n, check_health=check_health) for n in names]


async def _call_impl(
    pm: pluggy.PluginManager, name: str, hook: str, kwargs: dict[str, Any], *, trace: bool
) -> Any:
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
                    _reason(exc),
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


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BotError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- importing


def import_plugin_directory(path: Path, module_name: str | None = None) -> ModuleType:
    """Import a plugin from a directory (or single file) the way ``bot.plugin_dirs`` does.

    The module is named ``bot_ext_<name>``; a package's own modules import relatively
    (``from .client import X``) and are then importable as ``bot_ext_<name>.client``, which is
    how a plugin directory's tests reach its client and simulator. Importing twice returns the
    cached module unless the path differs.
    """
    path = Path(path).resolve()
    name = module_name or DIRECTORY_PREFIX + (path.name if path.is_dir() else path.stem)
    origin = path / "__init__.py" if path.is_dir() else path
    cached = sys.modules.get(name)
    if cached is not None and getattr(cached, "__file__", None) == str(origin):
        return cached
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            name, origin, submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load plugin from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _sources(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]


def _drop_bytecode(module: ModuleType) -> None:
    file = getattr(module, "__file__", None)
    if file and file.endswith(".py"):
        _drop_bytecode_file(Path(file))


def _drop_bytecode_file(source: Path) -> None:
    """Remove a source file's cached bytecode so a reload compiles what is on disk now.

    Bytecode is checked against the source's mtime in whole seconds and its size, so an edit
    saved within the same second that keeps the size (``version = 1`` -> ``version = 2``)
    would otherwise import the stale code.
    """
    try:
        Path(importlib.util.cache_from_source(str(source))).unlink(missing_ok=True)
    except (OSError, NotImplementedError, ValueError):
        pass
