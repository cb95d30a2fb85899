"""The games chat commands end to end: the bot harness, the plugin, its client and the
simulator over a real websocket."""

from __future__ import annotations

import asyncio

from bot import ServiceError
from bot_plugins.games.client import GamesClient
from bot_plugins.games.models import Game, NewGame
from bot_plugins.games.simulator import DEFAULT_PLAYER_KEY, GamesSimulator, SimGame
from bot_plugins.games.testing import (
    ADMIN,
    MakeClient,
    alert_in,
    alert_lines,
    eventually,
    games_bot,
    settle,
)
from bot_plugins.games.wire import (
    OP_BECOME_ADMIN,
    OP_CLOSE,
    OP_CREATE,
    OP_CREATE_AND_OPEN,
    OP_JOIN,
    OP_LEAVE,
    OP_UPDATE,
)


def _ops(sim: GamesSimulator, since: int = 0) -> list[int]:
    """The ops the simulator received, from request number ``since`` on."""
    return [request.get("op") for request in sim.requests[since:]]


# ---------------------------------------------------------------- everyone


async def test_games_lists_the_active_games(
    bot_harness, games_sim: GamesSimulator, open_game: Game, games_client: GamesClient
) -> None:
    upcoming = await games_client.create_game(NewGame(name="Chess final", type="chess"))
    async with games_bot(bot_harness, games_sim) as bot:
        [reply] = await bot.chat().say("!games", user="u1")
    assert reply.startswith("Active games (2):")
    assert (
        f"- Argentina - Brazil [football]: in progress, betting open - id {open_game.game_id}"
        in reply
    )
    assert "Chess final [chess]: upcoming, betting not open yet, opens " in reply
    assert upcoming.game_id in reply


async def test_games_says_when_there_are_none(bot_harness, games_sim: GamesSimulator) -> None:
    async with games_bot(bot_harness, games_sim) as bot:
        assert await bot.chat().say("!games") == ["There are no active games right now."]


async def test_game_shows_status_actions_target_tree_and_recent_events(
    bot_harness, games_sim: GamesSimulator, open_game: Game
) -> None:
    gid = open_game.game_id
    games_sim.register_event(gid, "argentina:1", "goal", happened_at=1_417_180_267_000)
    games_sim.register_event(gid, "brazil:7", "offside", happened_at=1_417_180_282_000)
    async with games_bot(bot_harness, games_sim, section={"recent_events": 1}) as bot:
        [reply] = await bot.chat().say(f"!game {gid[:8]}")  # a short id is enough
    lines = reply.splitlines()
    assert lines[0] == "Argentina - Brazil [football]: in progress, betting open"
    assert lines[1] == f"id {gid}, #ArgentinaBrazil"
    assert "Currency: EUR" in lines
    assert "Actions: Goal, Offside" in lines
    tree = lines[lines.index("Targets:") + 1 : lines.index("Recent events (1 of 2):")]
    assert tree == [
        "- Argentina [arg]",
        "  - 1",
        "  - 2",
        "- Brazil [bra]",
        "  - 7",
        "- None [non]",
    ]
    assert lines[-1] == "  13:11 Offside - Brazil 7"  # only the latest, by name not id


async def test_two_chats_join_and_both_get_a_third_party_join_and_the_close(
    bot_harness, games_sim: GamesSimulator, open_game: Game, games_player: GamesClient
) -> None:
    gid = open_game.game_id
    async with games_bot(bot_harness, games_sim) as bot:
        start = len(games_sim.requests)
        first = bot.chat("chat1")
        second = bot.chat("chat2", platform="telegram")
        [joined] = await first.say(f"!game join {gid}", user="u1")
        assert joined.startswith("Joined Argentina - Brazil (")
        assert joined.endswith(f"Stop with !game leave {gid[:8]}.")
        await second.say(f"!game join {gid[:8]}", user="u2")
        assert await second.say(f"!game join {gid}", user="u2") == [
            f"This chat already gets the alerts of Argentina - Brazil ({gid[:8]})."
        ]
        assert _ops(games_sim, start).count(OP_JOIN) == 1  # one connection for every chat
        assert games_sim.subscriber_count(gid) == 1

        await games_player.join_game(gid)
        label = f"Argentina - Brazil ({gid[:8]})"
        await alert_in(bot, "chat1", f"{label}: player joined.")
        await alert_in(bot, "chat2", f"{label}: player joined.", platform="telegram")

        replies = await first.say(f"!game close {gid[:8]}", user=ADMIN, confirm=True)
        assert replies[0].startswith(f"Close {label}? Its automatic pools are resolved now")
        assert replies[1] == f"{label} is closed for good."
        closed = f"{label}: the game is closed, so this chat stops getting its alerts."
        await alert_in(bot, "chat1", closed)
        await alert_in(bot, "chat2", closed, platform="telegram")
        assert bot.bot.store.subscriptions(topic="games.events") == []
        [details] = await first.say(f"!game {gid}")  # a closed game can still be shown
        assert details.startswith("Argentina - Brazil [football]: closed\n")
        assert _ops(games_sim, start).count(OP_BECOME_ADMIN) == 1  # asked before the close


async def test_leaving_stops_the_alerts_and_the_last_chat_leaves_the_game(
    bot_harness, games_sim: GamesSimulator, open_game: Game, make_games_client: MakeClient
) -> None:
    gid = open_game.game_id
    player = await make_games_client(DEFAULT_PLAYER_KEY)
    await player.join_game(gid)
    async with games_bot(bot_harness, games_sim) as bot:
        start = len(games_sim.requests)
        first, second = bot.chat("chat1"), bot.chat("chat2")
        await first.say(f"!game join {gid}")
        await second.say(f"!game join {gid}")
        assert await first.say(f"!game leave {gid[:8]}") == [
            f"Left Argentina - Brazil ({gid[:8]}): this chat no longer gets its alerts."
        ]
        assert OP_LEAVE not in _ops(games_sim, start)  # chat2 still follows it
        await player.leave_game(gid)
        start = len(games_sim.requests)
        await alert_in(bot, "chat2", "player left.")
        await settle(bot)
        assert not any("player left" in line for line in alert_lines(bot, "chat1"))

        await second.say(f"!game leave {gid}")
        await eventually(lambda: games_sim.subscriber_count(gid) == 0)
        assert _ops(games_sim, start).count(OP_LEAVE) == 1
        assert await second.say(f"!game leave {gid}") == [
            f"This chat was not following Argentina - Brazil ({gid[:8]})."
        ]


async def test_an_update_alerts_once_and_says_what_changed(
    bot_harness, games_sim: GamesSimulator, open_game: Game
) -> None:
    gid = open_game.game_id
    # No gathering on the plugin's side: a duplicate 342 would show as a second line.
    async with games_bot(bot_harness, games_sim, section={"alert_coalesce": 0}) as bot:
        chat = bot.chat()
        await chat.say(f"!game join {gid}")
        reply = await chat.say(f"!game update {gid[:8]} Corner Brazil:9", user=ADMIN)
        assert reply == [
            f"Updated Argentina - Brazil ({gid[:8]}): added actions Corner and targets Brazil:9."
        ]
        await alert_in(bot, "chat1", "details were updated")
        await settle(bot)
        changed = [line for line in alert_lines(bot, "chat1") if "details were updated" in line]
        # The updater gets the 342 both as a reply and as a subscriber: one alert, not two.
        assert changed == [
            f"Argentina - Brazil ({gid[:8]}): details were updated: "
            "new actions Corner, new targets Brazil 9."
        ]
        assert _ops(games_sim).count(OP_UPDATE) == 1


async def test_a_burst_of_joins_becomes_one_alert(
    bot_harness, games_sim: GamesSimulator, open_game: Game, make_games_client: MakeClient
) -> None:
    gid = open_game.game_id
    players = []
    for name in ("alice", "bob", "carol"):
        games_sim.add_session(f"{name}-key", name)
        players.append(await make_games_client(f"{name}-key"))
    async with games_bot(bot_harness, games_sim, section={"alert_coalesce": 0.5}) as bot:
        await bot.chat().say(f"!game join {gid}")
        await asyncio.gather(*(player.join_game(gid) for player in players))
        alert = await alert_in(bot, "chat1", "joined")
        label, _, who = alert.text.partition(": ")
        assert label == f"Argentina - Brazil ({gid[:8]})"
        assert who.endswith(" joined.") and " and " in who  # "a, b and c joined."
        names = who.removesuffix(" joined.").replace(" and ", ", ").split(", ")
        assert sorted(names) == ["alice", "bob", "carol"]  # arrival order may vary
        await settle(bot)
        assert len(bot.alerts_sent) == 1


async def test_close_with_manual_pools_asks_to_resend_then_closes_for_good(
    bot_harness, games_sim: GamesSimulator, open_game: Game
) -> None:
    gid = open_game.game_id
    games_sim.add_pool(gid, "Goals by Argentina", target_id="argentina", action_id="goal")
    manual = games_sim.add_pool(gid, "Man of the match", manual=True)
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        await chat.say(f"!game join {gid}")
        label = f"Argentina - Brazil ({gid[:8]})"
        replies = await chat.say(f"!game close {gid}", user=ADMIN, confirm=True)
        assert replies[-1] == (
            f"{label} is not closed yet: betting is blocked in 1 pool(s) that must be resolved "
            "by hand: Man of the match. 1 pool(s) were resolved automatically: Goals by "
            f"Argentina. Resolve them, then send !game close {gid} again to close the game "
            "for good."
        )
        await alert_in(bot, "chat1", "waiting to be resolved by hand: Man of the match")
        lines = alert_lines(bot, "chat1")
        # The resolution and the block of one close arrive as one coalesced alert line.
        assert lines == [
            f"{label}: 1 pool resolved: Goals by Argentina; betting blocked in 1 pool waiting "
            "to be resolved by hand: Man of the match."
        ]
        assert gid in {g.game_id for g in games_sim.games.values() if not g.closed}

        await games_sim.resolve_pool(gid, manual)
        await alert_in(bot, "chat1", "1 pool resolved: Man of the match")
        replies = await chat.say(f"!game close {gid}", user=ADMIN, confirm=True)
        assert replies[-1] == f"{label} is closed for good."
        await alert_in(bot, "chat1", "the game is closed")
        assert games_sim.games[gid].closed


async def test_closing_a_game_no_chat_follows_names_the_blocked_pool(
    bot_harness, games_sim: GamesSimulator, open_game: Game
) -> None:
    """#13: the simulator sends 362/368 to subscribers only (the document's strict reading),
    so the bot joins the game for the close, reports the pools, and leaves it again."""
    gid = open_game.game_id
    games_sim.add_pool(gid, "Goals by Argentina", target_id="argentina", action_id="goal")
    manual = games_sim.add_pool(gid, "Man of the match", manual=True)
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        client: GamesClient = bot.client("games")
        since = len(games_sim.requests)
        replies = await chat.say(f"!game close {gid[:8]}", user=ADMIN, confirm=True)
        assert replies[-1] == (
            f"Argentina - Brazil ({gid[:8]}) is not closed yet: betting is blocked in 1 pool(s) "
            "that must be resolved by hand: Man of the match. 1 pool(s) were resolved "
            f"automatically: Goals by Argentina. Resolve them, then send !game close {gid} "
            "again to close the game for good."
        )
        ops = _ops(games_sim, since)
        assert ops.index(OP_JOIN) < ops.index(OP_CLOSE) < ops.index(OP_LEAVE)
        assert games_sim.subscriber_count(gid) == 0 and client.joined_games == frozenset()

        await games_sim.resolve_pool(gid, manual)
        replies = await chat.say(f"!game close {gid[:8]}", user=ADMIN, confirm=True)
        assert replies[-1] == f"Argentina - Brazil ({gid[:8]}) is closed for good."
        assert games_sim.games[gid].closed
        await settle(bot)
        assert bot.alerts_sent == []  # no chat followed it: nobody is alerted


# ---------------------------------------------------------------- refusals read clearly


async def test_a_645_refusal_reads_clearly_in_chat(
    bot_harness, games_sim: GamesSimulator, make_games_client: MakeClient
) -> None:
    games_sim.admin_limit = 1
    games_sim.add_session("other-admin", "other", source_admin=True)
    other = await make_games_client("other-admin")
    game = await other.create_and_open_game(NewGame(name="Derby", type="football"))
    await other.become_admin(game.game_id)
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        expected = (
            f"Could not become an admin of game {game.game_id}: "
            "This game already has enough admins."
        )
        assert await chat.say(f"!game admin {game.game_id}", user=ADMIN) == [expected]
        replies = await chat.say(f"!game close {game.game_id}", user=ADMIN, confirm=True)
        assert replies[-1] == expected
        assert OP_CLOSE not in _ops(games_sim)
        assert not games_sim.games[game.game_id].closed


async def test_a_666_error_reads_clearly_and_changes_nothing(
    bot_harness, games_sim: GamesSimulator
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        refused = "The games service refused the request: No game with that id."
        assert await chat.say(f"!game {unknown}") == [refused]
        assert await chat.say(f"!game join {unknown}") == [refused]
        assert bot.bot.store.subscriptions(topic="games.events") == []
        assert await chat.say(f"!game open {unknown}", user=ADMIN) == [refused]
        audit = bot.bot.store.audit_rows()
        assert audit[0]["command"] == "game open"
        assert audit[0]["outcome"] == f"refused: {refused}"


async def test_huge_text_from_the_api_is_clipped_in_replies_and_alerts(
    bot_harness, games_sim: GamesSimulator, open_game: Game, make_games_client: MakeClient
) -> None:
    """#14 item 11: 100 KB names, statuses and errors reached the chat unbounded."""
    gid = open_game.game_id
    game = games_sim.games[gid]
    game.name = "N" * 100_000
    game.type = "T" * 100_000
    games_sim.add_session("long-name-key", "U" * 100_000)
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        [listing] = await chat.say("!games")
        assert len(listing) < 1000 and "N" * 199 + "…" in listing
        [details] = await chat.say(f"!game {gid}")
        assert len(details) < 2000 and details.startswith("N" * 199 + "… [" + "T" * 199 + "…]")
        await chat.say(f"!game join {gid}")
        stranger = await make_games_client("long-name-key")
        await stranger.join_game(gid)
        alert = await alert_in(bot, "chat1", " joined.")
        assert len(alert.text) < 600 and "U" * 99 + "… joined." in alert.text
        games_sim.muted_ops.add(OP_CLOSE)
        client: GamesClient = bot.client("games")
        close = asyncio.create_task(client.close_game(gid))
        await eventually(lambda: games_sim.requests[-1].get("op") == OP_CLOSE)
        await games_sim.inject({"res": 666, "game_id": gid, "text": "E" * 100_000})
        try:
            await close
        except ServiceError as refused:
            assert refused.message == ("The games service refused the request: " + "E" * 199 + "…")
        else:
            raise AssertionError("the close was not refused")


async def test_joining_a_closed_game_is_refused(
    bot_harness, games_sim: GamesSimulator, open_game: Game, games_client: GamesClient
) -> None:
    await games_client.close_game(open_game.game_id)
    async with games_bot(bot_harness, games_sim) as bot:
        assert await bot.chat().say(f"!game join {open_game.game_id}") == [
            "The games service refused the request: This game is closed."
        ]
        assert bot.bot.store.subscriptions() == []


# ---------------------------------------------------------------- admin commands


async def test_admin_commands_are_refused_to_others_and_audited(
    bot_harness, games_sim: GamesSimulator, open_game: Game
) -> None:
    gid = open_game.game_id
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        before = list(games_sim.requests)
        for line in (
            "!game create Derby football",
            f"!game open {gid}",
            f"!game update {gid} Corner",
            f"!game admin {gid}",
            f"!game close {gid}",
        ):
            assert await chat.say(line, user="u1") == ["This command is for admins only."]
        assert games_sim.requests == before  # nothing reached the API
        assert await chat.say(f"!game admin {gid}", user=ADMIN) == [
            f"The bot is now an admin of Argentina - Brazil ({gid[:8]}): it may update and "
            "close it."
        ]
        [row] = bot.bot.store.audit_rows()
        assert (row["user_id"], row["command"], row["outcome"]) == (ADMIN, "game admin", "ok")
        # A non-admin is not even told the admin commands exist.
        assert await chat.say("!help game create", user="u1") == [
            "No command !game create. Try !help."
        ]


async def test_create_and_open_with_nested_targets(bot_harness, games_sim: GamesSimulator) -> None:
    async with games_bot(bot_harness, games_sim) as bot:
        [reply] = await bot.chat().say(
            '!game create "Argentina - Brazil" football Goal,Offside '
            "Argentina,Brazil,Argentina:1,Argentina:2,Brazil:7 --open",
            user=ADMIN,
        )
    [game] = games_sim.games.values()
    assert reply.splitlines() == [
        f"Created and opened Argentina - Brazil [football], id {game.game_id}.",
        "Actions: Goal, Offside",
        "Targets: Argentina (1, 2), Brazil (7), None",
    ]
    sent = games_sim.requests[-1]
    assert sent["op"] == OP_CREATE_AND_OPEN
    assert sent["targets"] == ["Argentina", "Brazil", "Argentina:1", "Argentina:2", "Brazil:7"]
    assert game.opened and set(game.targets) == {"argentina", "brazil", "none"}


async def test_create_upcoming_with_lists_then_open(bot_harness, games_sim: GamesSimulator) -> None:
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        [reply] = await chat.say("!game create Final chess - White,Black", user=ADMIN)
        [game] = games_sim.games.values()
        gid = game.game_id
        assert reply.splitlines() == [
            f"Created Final [chess], id {gid}. It is upcoming, not open for betting yet.",
            "Added targets White and Black.",
            f"Open it for betting with !game open {gid}.",
        ]
        assert _ops(games_sim)[-3:] == [OP_CREATE, OP_BECOME_ADMIN, OP_UPDATE]
        assert not game.opened and set(game.targets) == {"white", "black", "none"}

        [opened] = await chat.say(f"!game open {gid[:8]} Check,Mate", user=ADMIN)
        assert opened.splitlines() == [
            f"Opened Final ({gid[:8]}) for betting.",
            "Actions: Check, Mate",
            "Targets: White, Black, None",
        ]
        assert game.opened


async def test_bad_input_gets_a_clear_message_and_sends_nothing(
    bot_harness, games_sim: GamesSimulator, open_game: Game
) -> None:
    gid = open_game.game_id
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        before = len(games_sim.requests)
        cases = {
            "!game create Derby football - Argentina::1 --open": [
                "The target 'Argentina::1' has an empty level around ':'."
            ],
            f'!game create "{"x" * 201}" football': [
                "The game name is longer than 200 characters."
            ],
            f"!game update {gid}": [
                "Give actions and/or targets to add, e.g. !game update <id> Corner Brazil:9 "
                "(use - to skip the actions)."
            ],
            "!game join": ["missing <game_id>\nUsage: !game join <game_id>"],
            "!game bad\x07id": ["That is not a valid game id."],
        }
        for line, expected in cases.items():
            assert await chat.say(line, user=ADMIN) == expected, line
        assert len(games_sim.requests) == before
        assert not games_sim.games[gid].closed


async def test_declining_a_close_changes_nothing(
    bot_harness, games_sim: GamesSimulator, open_game: Game
) -> None:
    gid = open_game.game_id
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        replies = await chat.say(f"!game close {gid}", user=ADMIN, confirm=False)
        assert replies[-1] == "Nothing was closed."
        # Typed answers work where there are no buttons.
        [question] = await chat.say(f"!game close {gid}", user=ADMIN)
        assert question.endswith("This cannot be undone. (yes/no)")
        assert await chat.say("no", user=ADMIN) == ["Nothing was closed."]
        assert OP_CLOSE not in _ops(games_sim)
        assert not games_sim.games[gid].closed
        assert bot.bot.store.audit_rows()[0]["outcome"] == "refused: Nothing was closed."


async def test_an_ambiguous_short_id_asks_for_more(bot_harness, games_sim: GamesSimulator) -> None:
    for suffix in ("1", "2"):
        gid = f"abcdef01-0000-4000-8000-00000000000{suffix}"
        games_sim.games[gid] = SimGame(gid, games_sim.source_id, f"Game {suffix}", "f", True)
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        assert await chat.say("!game abcdef01") == [
            "abcdef01 is the start of 2 game ids; type more of it."
        ]
        [shown] = await chat.say("!game abcdef01-0000-4000-8000-000000000002")
        assert shown.startswith("Game 2 [f]")


# ---------------------------------------------------------------- outages


async def test_after_the_simulator_restarts_the_bot_rejoins_and_alerts_continue(
    bot_harness, games_sim: GamesSimulator, open_game: Game, make_games_client: MakeClient
) -> None:
    gid = open_game.game_id
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        await chat.say(f"!game join {gid}")
        client = bot.client("games")
        await games_sim.restart()
        await eventually(lambda: client.connections == 2 and client.connected, within=5.0)
        assert games_sim.subscriber_count(gid) == 1

        games_sim.add_session("carol-key", "carol")
        carol = await make_games_client("carol-key")
        await carol.join_game(gid)
        await alert_in(bot, "chat1", "carol joined.")
        assert "plugin games: up - following 1 game(s)" in (await chat.say("!status"))[0]


async def test_commands_fail_fast_and_clearly_while_the_service_is_down(
    bot_harness, games_sim: GamesSimulator
) -> None:
    async with games_bot(bot_harness, games_sim) as bot:
        chat = bot.chat()
        await games_sim.stop()
        client = bot.client("games")
        await eventually(lambda: not client.connected)
        started = asyncio.get_running_loop().time()
        assert await chat.say("!games") == [
            "The games service is not connected right now; try again shortly."
        ]
        assert asyncio.get_running_loop().time() - started < 1.0
        [status] = await chat.say("!status")
        assert "plugin games: down - The games service is not reachable (" in status
