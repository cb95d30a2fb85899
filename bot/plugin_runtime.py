"""What one running plugin owns and may use: :class:`PluginRuntime`, and its :class:`Health`.

A plugin's hooks receive its runtime as ``plugin``; the manager (:mod:`bot.plugins`) creates
one per start, so a reload never shares tasks or clean-ups with the version it replaces.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .alerts import Topic
from .commands import Command
from .config import PluginConfig
from .plugin_loading import PluginInfo
from .plugin_tasks import _OWNER, TEARDOWN_TIMEOUT, cancel_all
from .simulation import Simulator

if TYPE_CHECKING:
    from .alerts import AlertRouter
    from .app import Bot
    from .store import Store


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
        #: what the plugin keeps between messages beside its client (a service object: games
        #: followed, pending links, the ledger...), set in ``bot_startup``; commands reach it as
        #: ``ctx.state``. Cleared with ``client`` when the plugin stops.
        self.state: Any = None
        self.phase = "loaded"  # loaded, running, failed, disabled, replaced
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
    def store(self) -> Store:
        """The bot's one database: links, subscriptions, ledger, audit, ``store.db`` for tables."""
        return self.bot.store

    @property
    def alerts(self) -> AlertRouter:
        """The alert router: ``publish`` (as :meth:`publish`) and the chats' subscriptions.

        With :attr:`store` and :attr:`prefix` this is what plugins used to reach through the
        hooks' ``bot`` argument, whose other attributes are no contract.
        """
        return self.bot.alerts

    @property
    def prefix(self) -> str:
        """The command prefix (``!``), for replies that name a command: ``f"{prefix}help"``."""
        return self.bot.settings.bot.prefix

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
        await cancel_all([t for t in self._tasks if t is not current], timeout, self.log)
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
            await cancel_all(left, timeout, self.log)
        self._adopted.clear()
        self.client = None
        self.state = None
