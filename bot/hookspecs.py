"""THE plugin contract.

A plugin is a Python module (or package) that implements some of the hooks below with
``@hookimpl``. It implements only what it needs, and each implementation may take any subset
of the arguments a hook offers (pluggy passes them by name). Hooks marked *may be async* can be
``async def``; the core awaits them.

Hooks that concern one plugin (``bot_startup``, ``bot_shutdown``, ``bot_health``, ...) are
called for each plugin separately with that plugin's own :class:`bot.plugins.PluginRuntime`;
the others are collected from every plugin. Every hook here is documented in
``docs/hooks.md`` and exercised by ``tests/core/test_hookspecs.py``.

A minimal plugin::

    from bot import Context, command, hookimpl

    @command()
    async def hello(ctx: Context, name: str = "world") -> str:
        \"\"\"Say hello.\"\"\"
        return f"Hello, {name}!"

    @hookimpl
    def bot_commands():
        return [hello]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

    from .alerts import Topic
    from .commands import Command
    from .config import PluginConfig
    from .plugins import Health, PluginRuntime
    from .simulation import Simulator

hookspec = pluggy.HookspecMarker("bot")
hookimpl = pluggy.HookimplMarker("bot")


@hookspec(firstresult=True)
def bot_config_model() -> type[PluginConfig] | None:
    """Return the pydantic model of this plugin's config section.

    Called once, before start-up, to validate ``plugins.<name>`` in the config file. Subclass
    :class:`bot.config.PluginConfig` (it adds ``enabled`` and ``simulate``); mark secrets
    ``SecretStr``. Without this hook the section may hold only ``enabled`` and ``simulate``.
    A section that does not validate disables the plugin with the error's dotted path.

    Example::

        class DeepBotConfig(PluginConfig):
            url: str = "ws://127.0.0.1:3337"
            secret: SecretStr

        @hookimpl
        def bot_config_model():
            return DeepBotConfig
    """


@hookspec
def bot_commands() -> list[Command]:
    """Return the commands this plugin declares (see :func:`bot.command`).

    Called when the plugin is enabled (at start-up, on ``plugins enable`` and on reload).
    Names may have several words (``"points add"``); commands of different plugins sharing a
    first word become one group. Two plugins declaring the same full name is an error that
    disables the later plugin.

    Example::

        @hookimpl
        def bot_commands():
            return [points, points_add]
    """


@hookspec
def bot_migrations() -> Migrations | list[Migrations]:
    """Return the sqlite-utils ``Migrations`` set(s) creating this plugin's tables.

    Called at start-up and by ``bot migrate``, before ``bot_startup``. Sets are applied in
    order; each migration runs once per database. Name the set after the plugin.

    Example::

        migrations = Migrations("rooms")

        @migrations()
        def m001_presence(db):
            db["rooms_presence"].create({...}, pk=("performer", "customer"))

        @hookimpl
        def bot_migrations():
            return migrations
    """


@hookspec
def bot_startup(plugin: PluginRuntime, config: PluginConfig, bot: Any) -> None:
    """Start the plugin: connect its client, start its simulator, schedule its jobs.

    Called once per enable, after migrations and after the config section validated; *may be
    async*. Set ``plugin.client`` to the protocol client commands use as ``ctx.client``. Start
    background work with ``plugin.create_task(...)`` and register clean-up with
    ``plugin.on_shutdown(...)``: the framework cancels and awaits both on disable, reload and
    exit, so nothing leaks. Raising here disables the plugin and reports why; the rest of the
    bot keeps running. Do not block: a client that cannot connect yet should report itself
    down through ``bot_health`` and keep retrying in a task.

    Example::

        @hookimpl
        async def bot_startup(plugin, config):
            plugin.client = DeepBotClient(config.url, config.secret.get_secret_value())
            plugin.create_task(plugin.client.run())
    """


@hookspec
def bot_shutdown(plugin: PluginRuntime) -> None:
    """Stop the plugin: the last chance to leave rooms, flush, say goodbye.

    Called on disable, before a reload, and at exit, before the framework cancels the tasks
    and runs the callbacks the plugin registered; *may be async*. Errors are logged and do not
    stop other plugins from shutting down.

    Example::

        @hookimpl
        async def bot_shutdown(plugin):
            await plugin.client.leave_all()
    """


@hookspec
def bot_health(plugin: PluginRuntime) -> Health | None:
    """Report whether the plugin can do its job now, for ``status`` and ``bot plugins``.

    Called on demand; *may be async* but must be quick (no network round trips). Return a
    :class:`bot.plugins.Health` (``up``, ``degraded`` or ``down`` with a reason a chat user
    understands), or None to let the framework say ``up``.

    Example::

        @hookimpl
        def bot_health(plugin):
            if not plugin.client.connected:
                return Health.down("DeepBot is not connected: " + plugin.client.last_error)
    """


@hookspec
def bot_alert_topics() -> list[Topic]:
    """Return the alert topics this plugin publishes (see :class:`bot.alerts.Topic`).

    Called when the plugin is enabled. A topic has a name (prefixed with the plugin's name by
    convention: ``chatwars.deals``), a description for ``help``, and optionally a matcher that
    decides whether an event passes a subscription's filter. Publish with
    ``plugin.publish(topic, text, data)``.

    Example::

        @hookimpl
        def bot_alert_topics():
            return [Topic("pos.updates", "Price and product changes")]
    """


@hookspec(firstresult=True)
def bot_simulator(argv: list[str]) -> Simulator | None:
    """Build this plugin's simulator from command-line arguments, for ``bot simulate NAME``.

    Called only by ``bot simulate NAME ...`` with the arguments after the name. Return an
    unstarted :class:`bot.simulation.Simulator`; the CLI starts it and serves until Ctrl-C.

    Example::

        @hookimpl
        def bot_simulator(argv):
            from .simulator import simulator_from_args
            return simulator_from_args(argv)
    """
