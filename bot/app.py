"""The running bot: config, store, plugins, dispatcher, alerts and transports in one loop."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bot_migrations.core import migrations as core_migrations

from .access import Access
from .alerts import AlertRouter
from .commands import Registry
from .config import LoadedConfig
from .dispatch import Dispatcher
from .ops import start_ops
from .plugins import CORE_PLUGIN, PluginManager
from .store import Store
from .transports.base import Transport, split_message

if TYPE_CHECKING:
    from .ops.server import OpsServer

log = logging.getLogger(__name__)

TRANSPORT_CLASSES = {
    "console": "bot.transports.console:ConsoleTransport",
    "discord": "bot.transports.discord:DiscordTransport",
    "telegram": "bot.transports.telegram:TelegramTransport",
}

#: Transports started before the plugins, in a single process. The console reads its first
#: line while the plugins import and connect; Discord and Telegram publish the bot's command
#: list when they start, so they wait until every plugin has declared its commands.
EARLY_TRANSPORTS = ("console",)

#: Commands answered while the plugins are still starting: ``ping`` says the process answers
#: (liveness; readiness is ``/readyz`` and ``status``), which is already true. Every other
#: line waits for the start to finish, so ``help``, ``status`` and a plugin's commands see
#: every plugin that will run, as they did when the console started last.
LIVENESS_COMMANDS = frozenset({"ping"})


class SecretFilter(logging.Filter):
    """Scrubs every configured secret from log records, whatever code logged them.

    The secrets are read from the config each time, so a plugin section validated later
    (or reloaded) is covered too; logging is never on the hot path.
    """

    def __init__(self, source: Callable[[], list[str]]) -> None:
        super().__init__()
        self.source = source

    def scrub(self, text: str) -> str:
        for s in self.source():
            if len(s) >= 4:
                text = text.replace(s, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        scrubbed = self.scrub(msg)
        if scrubbed != msg:
            record.msg, record.args = scrubbed, None
        return True


def load_transport(platform: str) -> type[Transport]:
    module_name, _, cls = TRANSPORT_CLASSES[platform].partition(":")
    return getattr(importlib.import_module(module_name), cls)  # type: ignore[no-any-return]


class Bot:
    """Owns every part. ``await bot.start()`` then ``await bot.wait_stopped()``."""

    def __init__(
        self,
        config: LoadedConfig,
        *,
        transports: list[Transport] | None = None,
        clock: Callable[[], float] = time.monotonic,
        store: Store | None = None,
        serve_ops: bool = True,
        role: str = "all",
    ) -> None:
        self.loaded_config = config
        #: "all" (one process, or both roles when a cluster is configured), "gateway" or
        #: "worker"; see :mod:`bot.cluster`
        self.role = role
        #: the process's part in a cluster (a Gateway or a Worker), None in a single process
        self.cluster: Any = None
        #: what ``bot run`` exits with (1 when the cluster's broker was lost)
        self.exit_code = 0
        self.settings = config.settings
        self.clock = clock
        self.store = store or Store(config.database_path())
        #: who is calling and what they may run (owners, admins, per-chat switches); in a
        #: cluster every worker writes the switches, so each checks for the others' changes
        self.access = Access(self.settings, self.store, shared=self.settings.bot.cluster.enabled)
        self.registry = Registry()
        self.dispatcher = Dispatcher(self)
        self.alerts = AlertRouter(self)
        self.plugins = PluginManager(self)
        self._transport_override = transports
        self.transports: dict[str, Transport] = {}
        self._stopped = asyncio.Event()
        self.started_at = 0.0
        #: set when :meth:`start` has started every plugin and transport (see
        #: :meth:`answers_while_starting`)
        self.ready = asyncio.Event()
        self._secret_filter: SecretFilter | None = None
        #: the metrics and health listener (``bot.metrics.listen``), None when off
        self.ops: OpsServer | None = None
        #: False for the CLI's throw-away bots (``plugins --health``): they must not take the
        #: running bot's metrics port
        self._serve_ops = serve_ops

    # ------------------------------------------------------------------ life cycle

    def migrations(self) -> list[Any]:
        return [core_migrations]

    async def start(self) -> None:
        self.started_at = time.monotonic()
        self.store.migrate(self.migrations())
        self.access.load()
        self._install_secret_filter()
        self.ops = await start_ops(self) if self._serve_ops else None
        extra = [self.loaded_config.base_dir / d for d in self.settings.bot.plugin_dirs]
        self.plugins.discover(extra)
        if self.role == "gateway":
            await self._start_gateway()
        elif self.role == "worker":
            await self._start_worker()
        else:
            await self._start_single()
        if self.ops is not None:
            self.ops.running()
        self.ready.set()

    def answers_while_starting(self, text: str) -> bool:
        """True if ``text`` is exactly a liveness command (``!ping``) of the core plugin.

        An early transport (the console) runs such a line at once and holds any other until
        :attr:`ready`: the line order of a script is kept, and only the answer that cannot
        depend on a plugin comes sooner.
        """
        prefix = self.settings.bot.prefix
        body = text.strip()
        if not body.startswith(prefix):
            return False
        cmd, rest, _ = self.registry.resolve(body[len(prefix) :])
        return (
            cmd is not None
            and cmd.plugin == CORE_PLUGIN
            and cmd.name in LIVENESS_COMMANDS
            and not rest.strip()
        )

    async def _start_gateway(self) -> None:
        """Transports only; commands go to the cluster's workers (bot/cluster/gateway.py)."""
        from .cluster.gateway import Gateway, GatewayDispatcher

        gateway = self.cluster = Gateway(self)
        await gateway.start()
        self.dispatcher = GatewayDispatcher(gateway)  # type: ignore[assignment]
        await self._start_transports(gateway.singleton_transports)
        gateway.members.beat(gateway.owns())  # before any await: before the first command
        await gateway.consume_outbound()
        await gateway.start_leases()

    async def _start_worker(self) -> None:
        """Dispatch, the alert router and the plugins this worker comes to own."""
        from .cluster.worker import Worker

        await self.alerts.start()
        await self.plugins.try_enable(CORE_PLUGIN)
        self.cluster = Worker(self)
        await self.cluster.start()

    async def _start_single(self) -> None:
        await self.alerts.start()
        await self.plugins.try_enable(CORE_PLUGIN)
        early = self._transport_override is None
        if early:
            await self._start_chosen(self._load_transports(EARLY_TRANSPORTS))
        for name, section in self.settings.plugins.items():
            if section.get("enabled", True) is False:
                continue
            if name not in self.plugins.available:
                self.plugins.failures[name] = f"no plugin named {name!r} is installed"
                log.error("plugin %s: not found (plugins.%s in the config)", name, name)
                continue
            await self.plugins.try_enable(name)
        if early:
            late = [p for p in self._platforms() if p not in EARLY_TRANSPORTS]
            await self._start_chosen(self._load_transports(late))
        else:
            await self._start_transports()

    def _install_secret_filter(self) -> None:
        if self._secret_filter is None:
            self._secret_filter = SecretFilter(self.loaded_config.secrets)
            for handler in logging.getLogger().handlers or []:
                handler.addFilter(self._secret_filter)
            logging.getLogger().addFilter(self._secret_filter)

    async def _start_transports(
        self, select: Callable[[list[Transport]], list[Transport]] | None = None
    ) -> None:
        if self._transport_override is not None:
            chosen = list(self._transport_override)
        else:
            chosen = self._load_transports(self._platforms())
        if select is not None:
            chosen = select(chosen)  # a cluster gateway keeps back what it must own first
        await self._start_chosen(chosen)

    def _platforms(self) -> list[str]:
        """The platforms whose transport the config enables, in start order."""
        cfg = self.settings.transports
        return [p for p in ("console", "discord", "telegram") if getattr(cfg, p).enabled]

    def _load_transports(self, platforms: Iterable[str]) -> list[Transport]:
        """Import and build the enabled transports of ``platforms`` (a failure is logged)."""
        chosen = []
        for platform in platforms:
            if not getattr(self.settings.transports, platform).enabled:
                continue
            try:
                chosen.append(load_transport(platform)())
            except Exception as exc:
                log.error("transport %s cannot be loaded: %s", platform, exc)
        return chosen

    async def _start_chosen(self, chosen: list[Transport]) -> None:
        for t in chosen:
            self.transports[t.platform] = t
        for t in chosen:
            try:
                await t.start(self)
            except Exception as exc:
                t.state, t.reason = "failed", str(exc) or type(exc).__name__
                log.error("transport %s failed to start: %s", t.platform, t.reason)

    def request_stop(self) -> None:
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        """Finish in-flight commands, stop plugins, deliver the last alerts, then disconnect.

        Transports stop last so that what plugins say while shutting down (a presence left,
        a final alert) still reaches the chats.
        """
        if self.ops is not None:
            self.ops.stopping()
        self.dispatcher.abandon_asks()
        try:
            await asyncio.wait_for(self.dispatcher.idle(), 10)
        except TimeoutError:
            log.warning("commands still running at shutdown were cancelled")
        if self.role == "worker" and self.cluster is not None:
            await self.cluster.stop()  # gives partitions and plugins back to the cluster
        await self.plugins.stop_all()
        await self.alerts.stop()
        for t in list(self.transports.values()):
            try:
                await t.stop()
            except Exception:
                log.exception("transport %s failed to stop", t.platform)
        if self.role == "gateway" and self.cluster is not None:
            await self.cluster.stop()
        self.plugins.unregister(CORE_PLUGIN)
        if self.ops is not None:
            await self.ops.stop()
        self.store.close()
        if self._secret_filter is not None:
            logging.getLogger().removeFilter(self._secret_filter)
            for handler in logging.getLogger().handlers:
                handler.removeFilter(self._secret_filter)

    # ------------------------------------------------------------------ output

    def scrub(self, text: str) -> str:
        """``text`` with every configured secret (tokens, keys, passwords) masked."""
        return self._secret_filter.scrub(text) if self._secret_filter else text

    async def send(self, platform: str, chat_id: str, text: str) -> None:
        """Send unsolicited text (alerts) through the chat's transport, split to its limit."""
        transport = self.transports.get(platform)
        if transport is None:
            log.warning("no %s transport running; message to %s not sent", platform, chat_id)
            return
        if len(text) <= transport.max_length:  # the usual case: one message, no split
            await transport.send(chat_id, text)
            return
        for part in split_message(text, transport.max_length):
            await transport.send(chat_id, part)
