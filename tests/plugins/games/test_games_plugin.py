"""The games plugin's hooks through the real bot: the embedded simulator (``simulate: true``),
health, start-up with the API down, restarts and reloads that keep chats' alerts going, and
``bot simulate games``."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

from bot_plugins.games import bot_simulator
from bot_plugins.games.client import GamesClient
from bot_plugins.games.models import Game
from bot_plugins.games.simulator import DEFAULT_ADMIN_KEY, DEFAULT_PLAYER_KEY, GamesSimulator
from bot_plugins.games.testing import (
    ADMIN,
    FAST_CLIENT,
    MakeClient,
    alert_in,
    eventually,
    games_bot,
    games_section,
)
from bot_plugins.games.wire import OP_JOIN, OP_LIST, OP_LOGON


async def test_the_embedded_simulator_serves_every_command(bot_harness) -> None:
    async with bot_harness(plugins={"games": {"simulate": True}}) as bot:
        chat = bot.chat()
        # No waiting for the connection here: the first command waits for it itself, as the
        # first line of a piped console script would.
        [listing] = await chat.say("!games")
        assert listing.startswith("Active games (1):\n- Argentina - Brazil [football]: ")
        gid = listing.split(" - id ")[1].split()[0]
        [details] = await chat.say(f"!game {gid[:8]}")
        assert "Targets:\n- Argentina [arg]\n  - 10\n- Brazil [bra]\n  - 7\n- None [non]" in (
            details
        )
        assert "Recent events (1 of 1):" in details
        [joined] = await chat.say(f"!game join {gid[:8]}")
        assert joined.startswith("Joined Argentina - Brazil")
        [status] = await chat.say("!status")
        assert "plugin games: up - following 1 game(s)" in status
        [created] = await chat.say(
            "!game create Derby football Goal Home,Away --open", user=ADMIN, admin=True
        )
        assert created.startswith("Created and opened Derby [football], id ")
        assert await chat.say(f"!game leave {gid}") == [
            f"Left Argentina - Brazil ({gid[:8]}): this chat no longer gets its alerts."
        ]
        assert bot.failures == {}


async def test_the_embedded_simulator_checks_the_vendor_login_too(bot_harness) -> None:
    async with bot_harness(plugins={"games": {"simulate": True, "user_id": 42}}) as bot:
        [listing] = await bot.chat().say("!games")
        assert listing.startswith("Active games (1):")
        assert bot.client("games").user_id == "42" and bot.failures == {}


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


async def test_the_plugin_starts_while_the_api_is_unreachable(bot_harness) -> None:
    section = {
        "url": _dead_url(),
        "source_id": "source-1",
        "session_key": "top-secret-key",
        "connect_timeout": 1.0,
    }
    async with bot_harness(plugins={"games": section}) as bot:
        assert bot.failures == {}
        client: GamesClient = bot.client("games")
        await eventually(lambda: client.last_error is not None)
        chat = bot.chat()
        [status] = await chat.say("!status")
        assert (
            "plugin games: down - The games service is not reachable (could not connect "
            "(ConnectionRefusedError)); retrying." in status
        )
        assert await chat.say("!games") == [
            "The games service is not connected right now; try again shortly."
        ]
        assert "top-secret-key" not in status


async def test_health_is_degraded_when_a_game_cannot_be_joined_again(
    bot_harness, games_sim: GamesSimulator, open_game: Game
) -> None:
    gid = open_game.game_id
    async with games_bot(bot_harness, games_sim, section={"timeout": 0.3}) as bot:
        chat = bot.chat()
        await chat.say(f"!game join {gid}")
        client: GamesClient = bot.client("games")
        games_sim.muted_ops.add(OP_JOIN)
        await games_sim.drop_connections()
        await eventually(lambda: client.connections == 2 and client.connected, within=5.0)
        [status] = await chat.say("!status")
        assert f"plugin games: degraded - Connected, but could not join {gid} again." in status


async def test_a_restarted_bot_follows_the_same_games(
    bot_harness,
    tmp_path,
    games_sim: GamesSimulator,
    open_game: Game,
    games_client: GamesClient,
    games_player: GamesClient,
) -> None:
    kept, closing = open_game.game_id, await _second_game(games_client)
    directory = tmp_path / "kept"
    directory.mkdir()
    async with games_bot(bot_harness, games_sim, directory=directory) as bot:
        await bot.chat().say(f"!game join {kept}")
        await bot.chat("chat2").say(f"!game join {closing}")
    assert games_sim.subscriber_count(kept) == 0
    await games_client.close_game(closing)  # closed while the bot was away

    async with games_bot(bot_harness, games_sim, directory=directory) as bot:
        assert games_sim.subscriber_count(kept) == 1  # joined again on connecting
        await alert_in(
            bot,
            "chat2",
            "the bot could not join it again after reconnecting (This game is closed.), so this "
            "chat stops getting its alerts.",
        )
        subscriptions = bot.bot.store.subscriptions(topic="games.events")
        assert [(s.chat_id, s.filter) for s in subscriptions] == [("chat1", kept)]
        await games_player.join_game(kept)
        # The name was learnt again after the restart, so the alert names the game.
        await alert_in(bot, "chat1", f"Argentina - Brazil ({kept[:8]}): player joined.")


async def test_a_reload_keeps_the_chats_alerts(
    bot_harness, games_sim: GamesSimulator, open_game: Game, make_games_client: MakeClient
) -> None:
    gid = open_game.game_id
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        await chat.say(f"!game join {gid}")
        old = bot.client("games")
        assert await chat.say("!plugins reload games", user=ADMIN) == [
            "games reloaded (version 0.2.0)."
        ]
        new = bot.client("games")
        assert new is not old and not old.running
        await new.wait_ready()
        assert games_sim.subscriber_count(gid) == 1
        player = await make_games_client(DEFAULT_PLAYER_KEY)
        await player.join_game(gid)
        await alert_in(bot, "chat1", "player joined.")


async def test_bot_simulate_games_builds_a_working_simulator() -> None:
    sim = bot_simulator(["--port", "0", "--demo", "--session-key", "k1", "--seed", "3"])
    # The hook imports the simulator when called (a run without simulate never loads it), so
    # after another test reloaded the plugin the class is the one sys.modules holds now.
    assert isinstance(sim, sys.modules["bot_plugins.games.simulator"].GamesSimulator)
    async with sim:
        client = GamesClient(sim.url, "k1", sim.source_id, **FAST_CLIENT)
        async with client:
            [demo] = await client.list_games()
            assert demo.name == "Argentina - Brazil"
            details = await client.get_game(demo.game_id)
            assert details.targets.paths() == [
                "argentina",
                "argentina:10",
                "brazil",
                "brazil:7",
                "none",
            ]


async def _second_game(client: GamesClient) -> str:
    from bot_plugins.games.models import NewGame

    game = await client.create_and_open_game(NewGame(name="Chess final", type="chess"))
    await client.become_admin(game.game_id)
    return game.game_id


# ---------------------------------------------------------------- the vendor's login


async def test_with_a_user_id_the_bot_logs_in_the_vendors_way(bot_harness) -> None:
    """#15: ?id=&n=&h=sha256(id + nonce + key), a fresh nonce per connection, logon op 100
    first, and the header's session key still sent on every request."""
    async with GamesSimulator(require_digest=True, require_logon=True) as sim:
        async with games_bot(bot_harness, sim, section={"user_id": 1}) as bot:
            chat = bot.chat()
            assert (await chat.say("!games"))[0] == "There are no active games right now."
            client: GamesClient = bot.client("games")
            await sim.drop_connections()
            await eventually(lambda: client.connections == 2 and client.connected, within=5.0)
            assert (await chat.say("!games"))[0] == "There are no active games right now."
            [status] = await chat.say("!status")
            assert "plugin games: up" in status
        assert [login["id"] for login in sim.logins] == ["1", "1"]
        assert sim.logins[0]["n"] != sim.logins[1]["n"]
        assert [r["op"] for r in sim.requests] == [OP_LOGON, OP_LIST, OP_LOGON, OP_LIST]
        assert all(r["header"]["session_key"] == DEFAULT_ADMIN_KEY for r in sim.requests)


async def test_a_refused_login_is_said_plainly_in_status_and_at_once(bot_harness) -> None:
    async with GamesSimulator(require_digest=True) as sim:
        section = {
            "url": sim.url,
            "source_id": sim.source_id,
            "session_key": "not-the-key",
            "user_id": "1",
            "timeout": 5.0,
        }
        async with bot_harness(plugins={"games": section}) as bot:
            chat = bot.chat()
            started = time.monotonic()
            # The first command waits for the first attempt, which is refused: it says why
            # as soon as that is known, not after the call timeout.
            assert await chat.say("!games") == [
                "The games service refused the bot's login (HTTP 403); check user_id and "
                "session_key."
            ]
            assert time.monotonic() - started < 4.0
            [status] = await chat.say("!status")
            assert (
                "plugin games: down - The games service refused the bot's login (HTTP 403); "
                "check user_id and session_key; retrying." in status
            )
            assert "not-the-key" not in status
        assert sim.requests == []


async def test_a_piped_first_command_waits_for_a_slow_handshake(tmp_path: Path) -> None:
    """#13 start-up: `printf '!games\\n' | bot run` against a server (not simulated by the
    bot) that takes 1 s to accept the connection answers the command, not "not connected"."""
    async with GamesSimulator(accept_delay=1.0) as sim:
        sim.add_demo_game()
        config = tmp_path / "bot.yaml"
        config.write_text(
            "bot:\n  database: bot.db\n"
            "plugins:\n  games:\n"
            f"    url: {sim.url}\n    source_id: {sim.source_id}\n"
            f"    session_key: {DEFAULT_ADMIN_KEY}\n    timeout: 8\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "BOT_SECRET_KEY"}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            "--config",
            str(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(b"!games\n"), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith("Active games (1):\n- Argentina - Brazil [football]: ")


async def test_a_refused_logon_is_said_plainly_in_status(bot_harness) -> None:
    async with GamesSimulator() as sim:
        sim.refuse_logon = True
        section = {**games_section(sim), "user_id": "1"}
        async with bot_harness(plugins={"games": section}) as bot:
            client: GamesClient = bot.client("games")
            await eventually(lambda: client.login_refused, within=5.0)
            [status] = await bot.chat().say("!status")
            assert (
                "plugin games: down - The games service refused the bot's logon (op 100); "
                "check user_id; retrying." in status
            )
            sim.refuse_logon = False
            await eventually(lambda: client.connected, within=10.0)
            assert (await bot.chat().say("!games"))[0] == "There are no active games right now."
