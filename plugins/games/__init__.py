"""Games plugin (Instamrkt live prediction games): list, show, join and leave games, run
their life cycle as an admin, and get each game's live events as chat alerts.

The protocol client is ``client.py`` (typed calls) over ``connection.py`` (socket, login, reply
matching, reconnects), with the op contract both ends share in ``wire.py``; its local server
is ``simulator.py``. The commands are in ``commands.py`` and what they share (followed games,
names, admin rights, alert batching) in ``service.py``. The plugin owns no tables: which
chats follow which games is kept as alert subscriptions in the core's store.
"""

from __future__ import annotations

from typing import Any

from bot import Command, Health, PluginRuntime, Simulator, Topic, hookimpl

from .alerts import games_topic
from .client import GamesClient
from .commands import COMMANDS
from .config import GamesConfig
from .service import GamesService, register, service_for

__version__ = "0.2.0"


@hookimpl
def bot_config_model() -> type[GamesConfig]:
    return GamesConfig


@hookimpl
def bot_commands() -> list[Command]:
    return list(COMMANDS)


@hookimpl
def bot_alert_topics() -> list[Topic]:
    return [games_topic()]


@hookimpl
async def bot_startup(plugin: PluginRuntime, config: GamesConfig, bot: Any) -> None:
    """Create the client and start connecting without waiting: an unreachable API leaves the
    plugin running, retrying in the background and reporting itself down in ``status``."""
    url = config.url
    session_key = config.session_key.get_secret_value() if config.session_key else None
    source_id = config.source_id
    if config.simulate:
        from .simulator import (  # only a simulated run loads the simulator
            DEFAULT_ADMIN_KEY,
            DEFAULT_PLAYER_KEY,
            DEFAULT_SOURCE_ID,
            GamesSimulator,
            SimUser,
        )

        session_key = session_key or DEFAULT_ADMIN_KEY
        source_id = source_id or DEFAULT_SOURCE_ID
        # With user_id set the bot logs in the vendor's way; the simulator's bot user takes
        # that id so the digest checks out (a numeric id, as the vendor's are).
        bot_id = int(config.user_id) if config.user_id and config.user_id.isdigit() else 1
        sim = GamesSimulator(
            "127.0.0.1",
            0,
            source_id=source_id,
            sessions={
                DEFAULT_PLAYER_KEY: SimUser(bot_id + 1, "player"),
                session_key: SimUser(bot_id, "games-bot", source_admin=True),
            },
        )
        sim.add_demo_game()
        await plugin.start_simulator(sim)
        url = sim.url
    client = GamesClient.from_config(config, url=url, session_key=session_key, source_id=source_id)
    service = GamesService(client, config, bot, plugin.publish, source_id=source_id)
    plugin.client = client
    register(plugin, service)
    plugin.on_shutdown(client.close)
    plugin.on_shutdown(service.close)
    # Chats that followed games before a restart keep getting their alerts.
    client.keep_joined(service.followed_games())
    client.start()
    plugin.create_task(service.warm_up(), name="warm-up")


@hookimpl
def bot_shutdown(plugin: PluginRuntime) -> None:
    """Hand on the alerts still being gathered: on disable or reload the router still runs."""
    service = service_for(plugin)
    if service is not None:
        service.batcher.flush_all()


@hookimpl
def bot_health(plugin: PluginRuntime) -> Health:
    client: GamesClient | None = plugin.client
    if client is None:
        return Health.down("The games plugin is not running.")
    if client.connected:
        if client.last_error:
            return Health.degraded(f"Connected, but {client.last_error}.")
        followed = len(client.joined_games)
        return Health.up(f"following {followed} game(s)" if followed else "")
    if client.starting:
        return Health.down("Connecting to the games service.")
    if client.login_refused and client.last_error:
        return Health.down(f"The games service {client.last_error}; retrying.")
    reason = client.last_error or "not connected"
    return Health.down(f"The games service is not reachable ({reason}); retrying.")


@hookimpl
def bot_simulator(argv: list[str]) -> Simulator:
    from .simulator import simulator_from_args

    return simulator_from_args(argv)
