"""Rooms plugin: a chat user's presence in a VS Media performer's room, kept alive, with credits.

Modules: ``client`` (the HTTP customer API), ``presence`` (the keep-alive ping per performer
and customer), ``service`` (the chat side: who sends what, stored presences, the restart
policy, notifications), ``records`` (the plugin's tables), ``commands`` (chat commands),
``simulator`` (a local server speaking the same wire format) and ``config``.

Commands: ``room join <performer id>``, ``room leave [performer id]``, ``rooms``,
``credits [n] [user]``, ``link rooms <customer id>``. With ``simulate: true`` the bundled
simulator runs in-process on a free port and the client talks to it over real HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot import Health, Topic, hookimpl
from bot_migrations.rooms import migrations

from .client import RoomsClient
from .commands import COMMANDS
from .config import RoomsConfig
from .service import PRESENCE_TOPIC, RoomsService, same_chat

if TYPE_CHECKING:
    from sqlite_utils.migrations import Migrations

    from bot import Command, PluginRuntime, Simulator

__version__ = "0.2.0"


@hookimpl
def bot_config_model() -> type[RoomsConfig]:
    return RoomsConfig


@hookimpl
def bot_commands() -> list[Command]:
    return list(COMMANDS)


@hookimpl
def bot_migrations() -> Migrations:
    return migrations


@hookimpl
def bot_alert_topics() -> list[Topic]:
    return [
        Topic(
            PRESENCE_TOPIC,
            "Your presence in a performer's room ended without you leaving (sent to the chat "
            "you joined from)",
            matches=same_chat,
        )
    ]


@hookimpl
async def bot_startup(plugin: PluginRuntime, config: RoomsConfig, bot: Any) -> None:
    """Build the client and service; resuming stored presences runs in the background.

    Nothing here waits on the network: HTTP has no connection to open, and the restore pings
    run in a task, so an unreachable API never holds up the bot's start.
    """
    simulator = None
    if config.simulate:
        from .simulator import simulator_for_config  # only a simulated run loads it

        simulator = simulator_for_config(config)
        await plugin.start_simulator(simulator)
        api = RoomsClient.from_config(config, url=simulator.url, key=simulator.key)
    else:
        api = RoomsClient.from_config(config)
    service = RoomsService(
        api,
        config,
        bot.store,
        bot.alerts,
        prefix=bot.settings.bot.prefix,
        simulator=simulator,
    )
    plugin.client = api  # the protocol client, as ctx.client promises
    plugin.state = service  # presences, credits and links: what commands use (ctx.state)
    plugin.on_shutdown(service.close)  # also runs if start-up fails after this point
    plugin.create_task(service.restore_stored(), name="restore-presences")


@hookimpl
async def bot_shutdown(plugin: PluginRuntime) -> None:
    """Leave every room before the simulator (if any) and the client go away."""
    service = plugin.state
    if isinstance(service, RoomsService):
        await service.close()


@hookimpl
def bot_health(plugin: PluginRuntime) -> Health:
    service = plugin.state
    if not isinstance(service, RoomsService):
        return Health.down("The rooms plugin is not running.")
    return service.health()


@hookimpl
def bot_simulator(argv: list[str]) -> Simulator:
    from .simulator import simulator_from_args

    return simulator_from_args(argv)
