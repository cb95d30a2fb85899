"""The games client against the simulator over a real websocket."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from games_hostile import SilentProxy

from bot.errors import NotConnected, ServiceError, ServiceTimeout
from bot_plugins.games.client import GamesClient
from bot_plugins.games.errors import AdminRefused, GamesInputError, GamesRefused
from bot_plugins.games.events import (
    BettingBlocked,
    DetailsChanged,
    GameClosed,
    PoolResolved,
    RejoinFailed,
    UserJoined,
    UserLeft,
)
from bot_plugins.games.models import Game, NewGame
from bot_plugins.games.simulator import (
    DEFAULT_ADMIN_KEY,
    DEFAULT_PLAYER_KEY,
    GamesSimulator,
)
from bot_plugins.games.testing import FAST_CLIENT, EventRecorder, MakeClient, eventually
from bot_plugins.games.wire import OP_GET_DETAILS, OP_JOIN, OP_LIST, OP_PING


def _game_spec(**changes: object) -> NewGame:
    fields: dict[str, object] = {
        "name": "Spain - Italy",
        "type": "football",
        "actions": ["Goal", "Yellow card"],
        "targets": ["Spain:9", "Italy"],
    }
    fields.update(changes)
    return NewGame(**fields)  # type: ignore[arg-type]


async def _quiet(seconds: float = 0.2) -> None:
    """Let stray frames arrive before asserting that nothing more came."""
    await asyncio.sleep(seconds)


# ---------------------------------------------------------------- every op


async def test_ping_and_opcodes(games_client: GamesClient) -> None:
    assert 0 <= await games_client.ping() < 2
    codes = await games_client.get_opcodes()
    assert codes.ops["join_game"] == 363
    assert codes.ops["get_game_details"] == 372
    assert codes.res["betting_in_pool_blocked"] == 368


async def test_requests_carry_the_documented_header(
    games_client: GamesClient, games_sim: GamesSimulator
) -> None:
    before = int(time.time() * 1000)
    start = datetime.now(UTC) + timedelta(hours=1)
    await games_client.create_and_open_game(
        _game_spec(live_start_at=start, live_finish_at=start + timedelta(hours=2))
    )
    sent = games_sim.requests[-1]
    assert sent["op"] == 370
    assert sent["header"]["session_key"] == DEFAULT_ADMIN_KEY
    assert sent["header"]["api_version"] == 1.0
    assert before <= sent["header"]["t"] <= int(time.time() * 1000)
    assert sent["source_id"] == games_sim.source_id
    assert sent["actions"] == ["Goal", "Yellow card"]
    assert sent["targets"] == ["Spain:9", "Italy"]
    assert sent["live_start_at"] == int(start.timestamp() * 1000)
    assert "close_at" not in sent  # the doc recommends leaving automatic closing out


async def test_create_and_open_returns_the_target_tree(
    games_client: GamesClient, open_game: Game
) -> None:
    assert open_game.opened
    assert open_game.name == "Argentina - Brazil"
    assert [a.name for a in open_game.actions] == ["Goal", "Offside"]
    roots = {t.target_id: t for t in open_game.targets}
    assert set(roots) == {"argentina", "brazil", "none"}  # 'none' added by the server
    assert [c.path for c in roots["argentina"].children] == ["argentina:1", "argentina:2"]
    seven = open_game.targets.find("Brazil:7")
    assert seven is not None and seven.display_name == "7"
    assert roots["none"].symbol == "non"


async def test_create_then_open_an_upcoming_game(games_client: GamesClient) -> None:
    created = await games_client.create_game(_game_spec(actions=(), targets=()))
    assert not created.opened
    details = await games_client.get_game(created.game_id)
    assert details.status == "betting_not_yet_active"
    opened = await games_client.open_game(created.game_id, ["Goal"], "Spain:9,Italy")
    assert opened.opened and opened.game_id == created.game_id
    assert opened.targets.find("spain:9") is not None
    listed = {g.game_id: g for g in await games_client.list_games()}
    assert listed[created.game_id].status == "game_in_progress_betting_active"


async def test_open_accepts_340_as_well_as_3402() -> None:
    async with GamesSimulator(open_reply_code=340) as sim:
        async with GamesClient(sim.url, DEFAULT_ADMIN_KEY, sim.source_id, **FAST_CLIENT) as c:
            created = await c.create_game(_game_spec(actions=(), targets=()))
            opened = await c.open_game(created.game_id, targets=["Spain"])
            assert opened.opened and opened.targets.find("spain") is not None


async def test_get_game_details_lists_past_events_in_time_order(
    games_client: GamesClient, games_sim: GamesSimulator, open_game: Game
) -> None:
    games_sim.register_event(open_game.game_id, "brazil:7", "offside", 1417180282000)
    games_sim.register_event(open_game.game_id, "argentina:1", "goal", 1417180267000)
    details = await games_client.get_game(open_game.game_id)
    assert details.name == "Argentina - Brazil"
    assert [e.target_id for e in details.past_events] == ["argentina:1", "brazil:7"]
    assert details.past_events[0].happened_at == datetime.fromtimestamp(1417180267, UTC)
    assert details.recent_events(1)[0].action_id == "offside"
    assert details.currency == "EUR"


async def test_update_adds_targets_and_alerts_once(
    games_client: GamesClient, games_player: GamesClient, open_game: Game
) -> None:
    gid = open_game.game_id
    await games_client.join_game(gid)
    await games_player.join_game(gid)
    mine, theirs = EventRecorder(games_client), EventRecorder(games_player)

    await games_client.update_game(gid, ["Corner"], ["Brazil:10"])

    changed = await mine.wait_for(DetailsChanged)
    assert changed.details.targets.find("brazil:10") is not None
    assert any(a.name == "Corner" for a in changed.details.actions)
    await theirs.wait_for(DetailsChanged)
    await _quiet()
    # The updater receives the 342 twice (reply copy + subscriber copy): one event only.
    assert len(mine.of(DetailsChanged)) == 1
    assert len(theirs.of(DetailsChanged)) == 1
    # A later real change is still reported.
    await games_client.update_game(gid, targets=["Brazil:11"])
    await mine.wait_for(DetailsChanged, lambda e: e.details.targets.find("brazil:11") is not None)
    assert len(mine.of(DetailsChanged)) == 2


async def test_a_get_details_reply_is_not_an_event(
    games_client: GamesClient, open_game: Game
) -> None:
    await games_client.join_game(open_game.game_id)
    recorder = EventRecorder(games_client)
    await games_client.get_game(open_game.game_id)
    await _quiet(0.1)
    assert recorder.events == []


async def test_two_subscribers_see_a_third_party_join_and_leave(
    games_client: GamesClient, make_games_client: MakeClient, open_game: Game
) -> None:
    gid = open_game.game_id
    other_bot = await make_games_client(DEFAULT_ADMIN_KEY)
    third = await make_games_client(DEFAULT_PLAYER_KEY)
    await games_client.join_game(gid)
    await other_bot.join_game(gid)
    first, second = EventRecorder(games_client), EventRecorder(other_bot)

    await third.join_game(gid)
    for recorder in (first, second):
        joined = await recorder.wait_for(UserJoined)
        assert (joined.game_id, joined.user_id, joined.user_name) == (gid, "2", "player")

    await third.leave_game(gid)
    for recorder in (first, second):
        left = await recorder.wait_for(UserLeft)
        assert left.user_name == "player"
    assert gid in games_client.joined_games and gid not in third.joined_games


async def test_close_reaches_every_subscriber(
    games_client: GamesClient,
    games_player: GamesClient,
    games_sim: GamesSimulator,
    open_game: Game,
) -> None:
    gid = open_game.game_id
    await games_client.join_game(gid)
    await games_player.join_game(gid)
    mine, theirs = EventRecorder(games_client), EventRecorder(games_player)

    result = await games_client.close_game(gid)

    assert result.closed and not result.needs_manual_resolution
    await mine.wait_for(GameClosed)
    await theirs.wait_for(GameClosed)
    await _quiet(0.1)
    assert len(mine.of(GameClosed)) == 1
    assert gid not in games_client.joined_games and gid not in games_player.joined_games
    assert gid not in {g.game_id for g in await games_client.list_games()}
    assert (await games_client.get_game(gid)).status == "game_closed"
    assert games_sim.subscriber_count(gid) == 0


async def test_close_with_manual_pools_needs_a_second_request(
    games_client: GamesClient,
    games_player: GamesClient,
    games_sim: GamesSimulator,
    open_game: Game,
) -> None:
    gid = open_game.game_id
    auto = games_sim.add_pool(gid, "Goals by Argentina", target_id="argentina", action_id="goal")
    manual = games_sim.add_pool(gid, "Man of the match", manual=True)
    await games_player.join_game(gid)
    theirs = EventRecorder(games_player)
    mine = EventRecorder(games_client)

    first = await games_client.close_game(gid)
    assert not first.closed and first.needs_manual_resolution
    assert [p.pool_id for p in first.resolved] == [auto]
    assert [(p.pool_id, p.label) for p in first.blocked] == [(manual, "Man of the match")]
    assert (await theirs.wait_for(PoolResolved)).pool.name == "Goals by Argentina"
    assert (await theirs.wait_for(BettingBlocked)).pool.pool_id == manual
    assert len(mine.of(BettingBlocked)) == 1  # the requester is told too, once

    again = await games_client.close_game(gid)  # still unresolved: reminded, not closed
    assert not again.closed and [p.pool_id for p in again.blocked] == [manual]
    assert len(mine.of(BettingBlocked)) == 1  # the reminder is no new alert

    await games_sim.resolve_pool(gid, manual)
    await theirs.wait_for(PoolResolved, lambda e: e.pool.pool_id == manual)
    final = await games_client.close_game(gid)
    assert final.closed
    await theirs.wait_for(GameClosed)


async def test_concurrent_calls_get_their_own_replies(
    games_client: GamesClient, games_player: GamesClient
) -> None:
    games = await asyncio.gather(
        *(games_client.create_and_open_game(_game_spec(name=f"Game {n}")) for n in range(6))
    )
    assert len({g.game_id for g in games}) == 6
    calls = [games_client.get_game(g.game_id) for g in games]
    calls += [games_player.join_game(g.game_id) for g in games]
    results = await asyncio.gather(*calls, games_client.list_games(), games_client.ping())
    details = results[: len(games)]
    assert [d.game_id for d in details] == [g.game_id for g in games]
    assert [d.name for d in details] == [f"Game {n}" for n in range(6)]
    assert games_player.joined_games == {g.game_id for g in games}
    assert {g.game_id for g in results[-2]} >= {g.game_id for g in games}


# ---------------------------------------------------------------- refusals and errors


async def test_645_refusals_read_clearly(games_sim: GamesSimulator) -> None:
    second_admin_key = "second-admin"
    games_sim.add_session(second_admin_key, "other-bot", source_admin=True)
    games_sim.admin_limit = 1
    async with (
        GamesClient(games_sim.url, DEFAULT_ADMIN_KEY, games_sim.source_id, **FAST_CLIENT) as a,
        GamesClient(games_sim.url, second_admin_key, games_sim.source_id, **FAST_CLIENT) as b,
        GamesClient(games_sim.url, DEFAULT_PLAYER_KEY, games_sim.source_id, **FAST_CLIENT) as p,
    ):
        game = await a.create_and_open_game(_game_spec())
        await a.become_admin(game.game_id)
        await a.become_admin(game.game_id)  # asking again is fine
        with pytest.raises(AdminRefused) as full:
            await b.become_admin(game.game_id)
        assert full.value.code == "645"
        assert full.value.message == (
            f"Could not become an admin of game {game.game_id}: "
            "This game already has enough admins."
        )
        with pytest.raises(AdminRefused, match="no privileges") as none:
            await p.become_admin(game.game_id)
        assert isinstance(none.value, ServiceError) and none.value.service == "games"
        assert "second-admin" not in full.value.message
        # Game-level calls need the game admin right the refused bot does not have.
        with pytest.raises(GamesRefused, match="not an admin of this game"):
            await b.close_game(game.game_id)


async def test_666_reads_clearly_and_changes_nothing(
    games_client: GamesClient, games_sim: GamesSimulator
) -> None:
    with pytest.raises(GamesRefused) as refused:
        await games_client.join_game("no-such-game")
    assert refused.value.code == "666"
    assert refused.value.message == "The games service refused the request: No game with that id."
    assert games_client.joined_games == frozenset()
    with pytest.raises(GamesRefused, match="Unknown source"):
        await games_client.list_games("another-source")
    assert await games_client.ping() >= 0  # the connection is unharmed


async def test_an_error_without_game_id_fails_a_call_only_when_it_is_the_only_one() -> None:
    """The vendor's 666 carries only ``text``: alone in flight, a call owns it; with two
    waiting it cannot be pinned on either, so it fails neither (the other gets its reply, the
    refused one times out and quotes the error)."""
    async with GamesSimulator(error_game_id=False) as sim:
        settings = {**FAST_CLIENT, "timeout": 0.5}
        async with GamesClient(sim.url, DEFAULT_ADMIN_KEY, sim.source_id, **settings) as c:
            game = await c.create_and_open_game(_game_spec())
            with pytest.raises(GamesRefused, match="No game with that id"):
                await c.get_game("missing")
            bad, good = await asyncio.gather(
                c.get_game("missing"), c.get_game(game.game_id), return_exceptions=True
            )
            assert isinstance(bad, ServiceTimeout)
            assert bad.message == (
                "The games service did not answer the get game details request in time. It "
                "reported an error meanwhile that may concern it: No game with that id."
            )
            assert not isinstance(good, BaseException) and good.game_id == game.game_id
            assert c.stray_errors == 1


async def test_an_error_followed_by_the_calls_own_reply_was_stray(
    make_games_client: MakeClient, games_sim: GamesSimulator, open_game: Game
) -> None:
    """One call waiting, a 666 without a game id, then the call's reply: the server answers
    in order, so the error was not this call's and the call succeeds."""
    client = await make_games_client(error_grace=1.5)  # generous: a loaded machine may stall
    gid = open_game.game_id
    games_sim.muted_ops.add(OP_GET_DETAILS)
    call = asyncio.create_task(client.get_game(gid))
    await eventually(lambda: games_sim.requests[-1].get("op") == OP_GET_DETAILS)
    await games_sim.inject({"res": 666, "text": "Something went wrong."})
    await games_sim.inject({"res": 342, "game_id": gid, "name": "Mine", "status": "x"})
    assert (await call).name == "Mine"
    assert client.stray_errors == 1


async def test_a_stray_error_fails_none_of_the_calls_in_flight(
    games_client: GamesClient, games_sim: GamesSimulator, open_game: Game
) -> None:
    """#14 item 4: a 666 without a game id failed 3 of 3 unrelated calls."""
    gid = open_game.game_id
    games_sim.muted_ops |= {OP_GET_DETAILS, OP_LIST, OP_JOIN}
    calls = asyncio.gather(
        games_client.get_game(gid),
        games_client.list_games(),
        games_client.join_game(gid),
        return_exceptions=True,
    )
    await eventually(lambda: len(games_sim.requests) >= 5)  # create, admin and the three
    await games_sim.inject({"res": 666, "text": "Something went wrong."})
    await games_sim.inject({"res": 666, "game_id": "another-game", "text": "Not yours."})
    # The replies the muted ops held back, by hand, after the strays.
    await games_sim.inject({"res": 342, "game_id": gid, "name": "Held back", "status": "x"})
    await games_sim.inject({"res": 345, "source_id": games_sim.source_id, "games": {}})
    await games_sim.inject({"res": 333, "game_id": gid})
    details, listing, joined = await calls
    assert not isinstance(details, BaseException) and details.name == "Held back"
    assert listing == [] and joined is None
    assert games_client.stray_errors == 2 and gid in games_client.joined_games


async def test_a_late_reply_never_answers_a_newer_call(
    make_games_client: MakeClient, games_sim: GamesSimulator, open_game: Game
) -> None:
    client = await make_games_client(timeout=0.3)
    gid = open_game.game_id
    games_sim.muted_ops.add(OP_GET_DETAILS)
    with pytest.raises(ServiceTimeout):
        await client.get_game(gid)
    second = asyncio.create_task(client.get_game(gid))
    await eventually(lambda: sum(r["op"] == OP_GET_DETAILS for r in games_sim.requests) == 2)
    # The first call's reply arrives late, then the second's: each lands where it belongs.
    await games_sim.inject({"res": 342, "game_id": gid, "name": "Stale", "status": "x"})
    await games_sim.inject({"res": 342, "game_id": gid, "name": "Fresh", "status": "x"})
    assert (await second).name == "Fresh"


async def test_api_error_text_never_echoes_the_session_key(
    games_client: GamesClient, games_sim: GamesSimulator
) -> None:
    games_sim.muted_ops.add(OP_GET_DETAILS)
    call = asyncio.create_task(games_client.get_game("some-game"))
    await asyncio.sleep(0.05)
    await games_sim.inject(
        {"res": 666, "game_id": "some-game", "text": f"session {DEFAULT_ADMIN_KEY} expired"}
    )
    with pytest.raises(GamesRefused) as refused:
        await call
    assert DEFAULT_ADMIN_KEY not in refused.value.message
    assert refused.value.message.endswith("session *** expired")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.join_game("two words"), "not a valid game id"),
        (lambda c: c.get_game(""), "A game id is needed"),
        (lambda c: c.create_and_open_game(_game_spec(name="  ")), "game name must not be empty"),
        (
            lambda c: c.create_and_open_game(_game_spec(targets=["Argentina::1"])),
            "empty level",
        ),
        (lambda c: c.update_game("g1", actions=["Goal, Corner"]), "comma"),
        (lambda c: c.update_game("g1"), "at least one action or target"),
        (
            lambda c: c.create_game(_game_spec(actions=(), targets=(), close_at=1417104170)),
            "close time must be after the open time|in the future",
        ),
        (
            lambda c: c.create_game(
                _game_spec(actions=(), targets=(), live_start_at=2e12, live_finish_at=1.9e12)
            ),
            "live finish time",
        ),
        (lambda c: c.create_game(_game_spec()), "given when the game is opened"),
        (lambda c: c.open_game("g1", targets=["x" * 101]), "longer than"),
        (lambda c: c.create_game(_game_spec(name="a\nb", actions=(), targets=())), "single line"),
    ],
)
async def test_bad_input_is_refused_before_sending(
    games_client: GamesClient, games_sim: GamesSimulator, call, message: str
) -> None:
    sent = len(games_sim.requests)
    with pytest.raises(GamesInputError, match=message):
        await call(games_client)
    assert len(games_sim.requests) == sent


# ---------------------------------------------------------------- timeouts and connection


async def test_an_unanswered_call_times_out_and_the_client_goes_on(
    make_games_client: MakeClient, games_sim: GamesSimulator
) -> None:
    client = await make_games_client(timeout=0.3)
    games_sim.muted_ops.add(OP_GET_DETAILS)
    started = time.monotonic()
    with pytest.raises(ServiceTimeout, match="answer the get game details request in time"):
        await client.get_game("whatever")
    assert time.monotonic() - started < 1.5
    assert await client.ping() >= 0


async def test_calls_fail_fast_while_disconnected_and_resume(
    games_client: GamesClient, games_sim: GamesSimulator
) -> None:
    await games_sim.stop()
    await eventually(lambda: not games_client.connected)
    started = time.monotonic()
    with pytest.raises(NotConnected):
        await games_client.list_games()
    assert time.monotonic() - started < 0.5
    await games_sim.start()
    await games_client.wait_ready()
    assert await games_client.list_games() == []


async def test_leaving_while_offline_stops_the_rejoin(
    games_client: GamesClient, games_sim: GamesSimulator, open_game: Game
) -> None:
    gid = open_game.game_id
    await games_client.join_game(gid)
    await games_sim.stop()
    await eventually(lambda: not games_client.connected)
    await games_client.leave_game(gid)
    assert games_client.joined_games == frozenset()
    await games_sim.start()
    await games_client.wait_ready()
    assert games_sim.subscriber_count(gid) == 0


async def test_a_dropped_connection_fails_the_waiting_call(
    games_client: GamesClient, games_sim: GamesSimulator
) -> None:
    games_sim.muted_ops.add(OP_GET_DETAILS)
    call = asyncio.create_task(games_client.get_game("whatever"))
    await asyncio.sleep(0.05)
    await games_sim.drop_connections()
    with pytest.raises(NotConnected, match="may or may not have been carried out"):
        await call
    await games_client.wait_ready()
    assert games_client.connections == 2


async def test_after_a_restart_the_client_rejoins_and_alerts_continue(
    games_client: GamesClient,
    games_sim: GamesSimulator,
    make_games_client: MakeClient,
    open_game: Game,
) -> None:
    gid = open_game.game_id
    await games_client.join_game(gid)
    recorder = EventRecorder(games_client)
    url = games_sim.url

    await games_sim.restart()
    assert games_sim.url == url
    await eventually(lambda: games_client.connected and games_client.connections == 2)
    assert games_sim.subscriber_count(gid) == 1
    rejoin = games_sim.requests[-1]
    assert (rejoin["op"], rejoin["game_id"]) == (363, gid)

    third = await make_games_client(DEFAULT_PLAYER_KEY)
    await third.join_game(gid)
    assert (await recorder.wait_for(UserJoined)).user_name == "player"
    await games_client.close_game(gid)
    await recorder.wait_for(GameClosed)


async def test_a_game_closed_during_an_outage_is_reported_not_rejoined(
    games_client: GamesClient, games_sim: GamesSimulator, open_game: Game
) -> None:
    gid = open_game.game_id
    await games_client.join_game(gid)
    recorder = EventRecorder(games_client)
    await games_sim.stop()
    games_sim.games[gid].closed = True
    await games_sim.start()
    failed = await recorder.wait_for(RejoinFailed)
    assert failed.game_id == gid and "closed" in failed.reason
    await games_client.wait_ready()
    assert games_client.joined_games == frozenset()


async def test_a_rejoin_that_gets_no_answer_does_not_block_the_client(
    make_games_client: MakeClient, games_sim: GamesSimulator, open_game: Game
) -> None:
    client = await make_games_client(timeout=0.3)
    await client.join_game(open_game.game_id)
    games_sim.muted_ops.add(OP_JOIN)
    await games_sim.drop_connections()
    await eventually(lambda: client.connections == 2 and client.connected)
    assert client.joined_games == {open_game.game_id}  # tried again on the next reconnect
    assert client.last_error is not None and "join" in client.last_error
    assert await client.ping() >= 0


async def test_a_failed_async_with_leaves_nothing_running() -> None:
    async with GamesSimulator() as sim:
        url = sim.url
    client = GamesClient(url, DEFAULT_ADMIN_KEY, **{**FAST_CLIENT, "connect_timeout": 0.2})
    with pytest.raises(NotConnected):
        async with client:
            pass
    assert not client.running


async def test_keep_alive_uses_websocket_pings_not_op_1(
    make_games_client: MakeClient, games_sim: GamesSimulator
) -> None:
    client = await make_games_client(ping_interval=0.05)
    before = len(games_sim.requests)
    await asyncio.sleep(0.5)  # ten ping intervals, idle
    assert games_sim.requests[before:] == [] and client.connected


async def test_a_silent_link_is_found_by_pings_and_replaced(games_sim: GamesSimulator) -> None:
    async with SilentProxy(games_sim.port) as proxy:
        settings = {**FAST_CLIENT, "ping_interval": 0.2, "timeout": 0.5}
        async with GamesClient(proxy.url, DEFAULT_ADMIN_KEY, **settings) as client:
            proxy.go_silent()  # open sockets, no bytes: only a ping can tell
            await eventually(lambda: not client.connected, within=10.0)
            proxy.speak_again()
            await eventually(lambda: client.connected, within=10.0)
            assert client.connections >= 2
            assert await client.list_games(games_sim.source_id) == []
    assert all(r.get("op") != OP_PING for r in games_sim.requests)


async def test_connect_to_a_dead_port_raises_not_connected() -> None:
    async with GamesSimulator() as sim:
        url = sim.url
    client = GamesClient(
        url + "/?key=hidden", DEFAULT_ADMIN_KEY, **{**FAST_CLIENT, "connect_timeout": 0.3}
    )
    try:
        with pytest.raises(NotConnected) as failed:
            await client.connect()
        assert "hidden" not in failed.value.message and DEFAULT_ADMIN_KEY not in str(failed.value)
        assert client.last_error is not None and "could not connect" in client.last_error
    finally:
        await client.close()


# ---------------------------------------------------------------- tolerance


async def test_odd_frames_and_formats_are_tolerated(
    games_client: GamesClient, games_sim: GamesSimulator, open_game: Game
) -> None:
    gid = open_game.game_id
    await games_client.join_game(gid)
    recorder = EventRecorder(games_client)
    await games_sim.inject("music|not json at all")
    await games_sim.inject("[1, 2, 3]")
    await games_sim.inject({"no": "res"})
    await games_sim.inject({"res": "bogus"})
    await games_sim.inject({"res": 470})  # an event without a game id
    await games_sim.inject({"res": "470", "game_id": gid, "user_id": "17", "user_name": "foozle"})
    await games_sim.inject(
        {
            "res": 342,
            "game_id": gid,
            "name": "Renamed",
            "status": "game_in_progress_betting_closed",
            "open_at": "1417104170",
            "live_start_at": 1417105170000,
            "close_at": "null",
            "actions": ["Goal"],
            "targets": ["Argentina:1"],
            "past_events": {"e1": {"happened_at": "1417180267000", "target_id": "argentina:1"}},
        }
    )
    joined = await recorder.wait_for(UserJoined)
    assert (joined.user_id, joined.user_name) == ("17", "foozle")
    details = (await recorder.wait_for(DetailsChanged)).details
    assert details.open_at == datetime.fromtimestamp(1417104170, UTC)
    assert details.live_start_at == datetime.fromtimestamp(1417105170, UTC)
    assert details.close_at is None
    assert details.targets.find("argentina:1") is not None
    assert details.past_events[0].happened_at == datetime.fromtimestamp(1417180267, UTC)
    assert await games_client.ping() >= 0


async def test_a_deeply_nested_frame_costs_one_log_line_and_nothing_else(
    games_client: GamesClient, games_sim: GamesSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """#14 item 7: the parser's RecursionError escaped as a traceback per frame."""
    caplog.set_level(logging.WARNING, logger="bot_plugins.games")
    await games_sim.inject('{"res": 342, "targets": ' + "[" * 100_000 + "]" * 100_000 + "}")
    await eventually(lambda: games_client.bad_frames == 1)
    assert [r.getMessage() for r in caplog.records] == [
        "games: ignored a frame of 200025 bytes: JSON nested too deeply to parse"
    ]
    assert caplog.records[0].exc_info is None
    assert games_client.connections == 1 and await games_client.list_games() == []


async def test_an_oversized_frame_drops_the_link_which_comes_back(
    make_games_client: MakeClient, games_sim: GamesSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot_plugins.games")
    client = await make_games_client(max_frame_bytes=2**16)
    await games_sim.inject({"res": 470, "game_id": "g", "user_name": "x" * 2**16})
    await eventually(lambda: client.connections == 2 and client.connected)
    [lost] = [r.getMessage() for r in caplog.records]
    assert lost.startswith(f"games: connection to {games_sim.url} lost (1009")
    assert await client.list_games() == []


async def test_times_in_seconds_read_the_same_as_millis() -> None:
    start = datetime(2031, 5, 1, 18, 0, tzinfo=UTC)
    results = []
    for in_seconds in (False, True):
        async with GamesSimulator(times_in_seconds=in_seconds) as sim:
            async with GamesClient(sim.url, DEFAULT_ADMIN_KEY, sim.source_id, **FAST_CLIENT) as c:
                game = await c.create_and_open_game(_game_spec(live_start_at=start))
                listed = (await c.list_games())[0]
                results.append((game.live_start_at, listed.open_at is not None))
    assert results[0] == results[1] == (start, True)
