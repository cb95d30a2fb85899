"""The games simulator's wire behaviour, checked with a plain websocket (no client of ours)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from bot.simulation import Simulator
from bot_plugins.games.simulator import (
    DEFAULT_ADMIN_KEY,
    DEFAULT_PLAYER_KEY,
    DEFAULT_SOURCE_ID,
    GamesSimulator,
    simulator_from_args,
)
from bot_plugins.games.wire import login_digest, login_url


class Raw:
    """A bare websocket speaking JSON frames, to see exactly what the simulator sends."""

    def __init__(self, ws: ClientConnection, key: str) -> None:
        self.ws = ws
        self.key = key

    async def send(self, op: int | str, **body: Any) -> None:
        header = {"session_key": self.key, "t": 1417104170000, "api_version": 1.0}
        await self.ws.send(json.dumps({"header": header, "op": op, **body}))

    async def recv(self, within: float = 2.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            return json.loads(await self.ws.recv())

    async def call(self, op: int | str, **body: Any) -> dict[str, Any]:
        await self.send(op, **body)
        return await self.recv()

    async def nothing_more(self, within: float = 0.15) -> bool:
        try:
            await self.recv(within)
        except TimeoutError:
            return True
        return False


@pytest.fixture
async def raw_connect(games_sim: GamesSimulator) -> AsyncIterator[Any]:
    sockets: list[ClientConnection] = []

    async def open_raw(key: str = DEFAULT_ADMIN_KEY) -> Raw:
        ws = await connect(games_sim.url, proxy=None, ping_interval=None)
        sockets.append(ws)
        return Raw(ws, key)

    yield open_raw
    for ws in sockets:
        await ws.close()


async def _open_game(admin: Raw, **extra: Any) -> str:
    reply = await admin.call(
        370,
        source_id=DEFAULT_SOURCE_ID,
        game_name="Argentina - Brazil",
        type="football",
        actions=["Goal"],
        targets=["Argentina", "Argentina:1"],
        **extra,
    )
    assert reply["res"] == 340, reply
    gid = reply["game_id"]
    assert (await admin.call(616, game_id=gid))["res"] == 640
    return gid


async def test_every_frame_has_a_response_header_and_bad_frames_get_666(raw_connect) -> None:
    admin = await raw_connect()
    await admin.ws.send("not json")
    bad = await admin.recv()
    assert bad["res"] == 666 and bad["text"] == "Invalid JSON."
    assert isinstance(bad["response_header"]["t"], int)
    assert (await admin.call(999))["text"] == "Unknown op 999."
    pong = await admin.call("1")  # ops as strings are read too; ping needs no session
    assert pong["res"] == 1
    stranger = await raw_connect("wrong-key")
    refused = await stranger.call(380, source_id=DEFAULT_SOURCE_ID)
    assert (refused["res"], refused["text"]) == (666, "Invalid session key.")


async def test_create_and_open_builds_the_nested_targets_with_none(raw_connect) -> None:
    admin = await raw_connect()
    reply = await admin.call(
        370,
        source_id=DEFAULT_SOURCE_ID,
        game_name="Argentina - Brazil",
        type="football",
        actions="Goal, Offside",
        targets="Brazil:7,Argentina:1,Argentina:2",
        hashtag="#ArgBra",
    )
    assert reply["res"] == 340
    assert reply["actions"] == {"goal": {"name": "Goal"}, "offside": {"name": "Offside"}}
    targets = reply["targets"]
    assert set(targets) == {"brazil", "argentina", "none"}
    assert targets["brazil"]["symbol"] == "bra"
    assert targets["brazil"]["targets"]["7"] == {"symbol": "7", "display_name": "7", "targets": {}}
    assert set(targets["argentina"]["targets"]) == {"1", "2"}
    assert targets["none"] == {"symbol": "non", "display_name": "None", "targets": {}}
    assert reply["hashtag"] == "#ArgBra" and reply["close_at"] is None
    bad = await admin.call(
        370, source_id=DEFAULT_SOURCE_ID, game_name="X", type="f", targets=["A::1"]
    )
    assert bad["res"] == 666 and "empty level" in bad["text"]


async def test_create_open_and_lifecycle_refusals(raw_connect) -> None:
    admin = await raw_connect()
    player = await raw_connect(DEFAULT_PLAYER_KEY)
    created = await admin.call(3701, source_id=DEFAULT_SOURCE_ID, game_name="G", type="chess")
    assert created["res"] == 3401 and "targets" not in created
    gid = created["game_id"]
    details = await admin.call(372, game_id=gid)
    assert details["status"] == "betting_not_yet_active"
    assert (await player.call(3702, game_id=gid))[
        "text"
    ] == "Only admins of the source may do that."
    opened = await admin.call(3702, game_id=gid, actions=["Check"], targets=["White"])
    assert opened["res"] == 3402 and "none" in opened["targets"]
    assert (await admin.call(3702, game_id=gid))["text"] == "This game is already open."
    missing = await admin.call(3701, source_id=DEFAULT_SOURCE_ID, type="chess")
    assert missing["text"] == "game_name is missing."
    wrong = await admin.call(3701, source_id="other", game_name="G", type="chess")
    assert wrong["text"] == "Unknown source."
    past = await admin.call(370, source_id=DEFAULT_SOURCE_ID, game_name="G", type="c", close_at=5)
    assert past["res"] == 666 and "close_at" in past["text"]


async def test_become_admin_enforces_the_limit_with_645(
    games_sim: GamesSimulator, raw_connect
) -> None:
    games_sim.add_session("admin-2", "second", source_admin=True)
    games_sim.add_session("admin-3", "third", source_admin=True)
    first, second, third = (
        await raw_connect(),
        await raw_connect("admin-2"),
        await raw_connect("admin-3"),
    )
    player = await raw_connect(DEFAULT_PLAYER_KEY)
    gid = await _open_game(first)
    granted = await second.call(616, game_id=gid)
    assert isinstance(granted.pop("response_header")["t"], int)
    assert granted == {"res": 640, "game_id": gid}
    full = await third.call(616, game_id=gid)
    assert full["res"] == 645 and full["reason"] == "This game already has enough admins."
    denied = await player.call(616, game_id=gid)
    assert denied["res"] == 645 and "no privileges" in denied["reason"]
    not_admin = await third.call(373, game_id=gid, targets=["Brazil"])
    assert not_admin["res"] == 666 and "not an admin of this game" in not_admin["text"]


async def test_join_leave_publish_to_the_other_subscribers(raw_connect) -> None:
    admin = await raw_connect()
    player = await raw_connect(DEFAULT_PLAYER_KEY)
    gid = await _open_game(admin)
    joined_reply = await admin.call(363, game_id=gid)
    assert joined_reply.pop("response_header")
    assert joined_reply == {"res": 333, "game_id": gid}
    assert (await player.call(363, game_id=gid))["res"] == 333
    assert await player.nothing_more()  # the joiner is not told about itself
    joined = await admin.recv()
    assert joined == {
        "response_header": joined["response_header"],
        "res": 470,
        "game_id": gid,
        "user_id": 2,
        "user_name": "player",
    }
    assert (await player.call(363, game_id=gid))["res"] == 333  # joining twice: no new 470
    assert await admin.nothing_more()
    assert (await player.call(364, game_id=gid))["res"] == 334
    left = await admin.recv()
    assert (left["res"], left["user_name"]) == (480, "player")


async def test_update_sends_343_then_342_twice_to_a_subscribed_updater(raw_connect) -> None:
    admin = await raw_connect()
    player = await raw_connect(DEFAULT_PLAYER_KEY)
    gid = await _open_game(admin)
    await admin.call(363, game_id=gid)
    await player.call(363, game_id=gid)
    await admin.recv()  # the player's 470
    await admin.send(373, game_id=gid, actions=["Corner"], targets=["Brazil:10"])
    frames = [await admin.recv() for _ in range(3)]
    assert [f["res"] for f in frames] == [343, 342, 342]
    assert frames[1]["targets"]["brazil"]["targets"]["10"]["display_name"] == "10"
    assert frames[1]["actions"]["corner"] == {"name": "Corner"}
    assert (await player.recv())["res"] == 342
    assert await player.nothing_more()
    nothing = await admin.call(373, game_id=gid)
    assert nothing["res"] == 666 and nothing["game_id"] == gid


async def test_close_resolves_automatic_pools_and_blocks_manual_ones(
    games_sim: GamesSimulator, raw_connect
) -> None:
    admin = await raw_connect()
    player = await raw_connect(DEFAULT_PLAYER_KEY)
    gid = await _open_game(admin)
    auto = games_sim.add_pool(gid, "Goals", target_id="argentina", action_id="goal")
    manual = games_sim.add_pool(gid, "Best player", manual=True)
    await player.call(363, game_id=gid)

    # The strict reading of the document: 362 and 368 reach the game's subscribers only, so
    # an admin that closes a game it has not joined hears nothing of them.
    await admin.send(375, game_id=gid)
    to_player = [await player.recv(), await player.recv()]
    assert [(f["res"], f["pool_id"]) for f in to_player] == [(362, auto), (368, manual)]
    assert to_player[0]["resolution"] == "automatic"
    assert await admin.nothing_more()  # no 362/368 (not subscribed), no 341 (manual pool)

    await admin.call(363, game_id=gid)  # subscribed now: a re-sent close blocks it again
    assert (await player.recv())["res"] == 470
    await admin.send(375, game_id=gid)
    assert (await admin.recv())["res"] == 368
    assert (await player.recv())["res"] == 368
    assert await admin.nothing_more() and await player.nothing_more()

    await games_sim.resolve_pool(gid, manual, outcome="Messi")
    assert (await player.recv())["resolution"] == "Messi"
    assert (await admin.recv())["resolution"] == "Messi"
    await admin.send(375, game_id=gid)
    assert (await admin.recv())["res"] == 341
    assert (await player.recv())["res"] == 341
    assert games_sim.subscriber_count(gid) == 0
    assert (await player.call(363, game_id=gid))["text"] == "This game is closed."
    assert (await admin.call(375, game_id=gid))["text"] == "This game is already closed."
    listing = await admin.call(380, source_id=DEFAULT_SOURCE_ID)
    assert gid not in listing["games"]


async def test_list_sends_open_at_as_a_string(games_sim: GamesSimulator, raw_connect) -> None:
    admin = await raw_connect()
    gid = await _open_game(admin, open_at=1417104170000, live_start_at=4102444800)
    listing = await admin.call(380, source_id=DEFAULT_SOURCE_ID)
    entry = listing["games"][gid]
    assert listing["res"] == 345 and listing["source_id"] == DEFAULT_SOURCE_ID
    assert entry["open_at"] == "1417104170000"
    assert entry["status"] == "pre_game_betting_active"  # live start is in 2100
    assert entry["close_at"] is None


async def test_get_opcodes_and_hooks(games_sim: GamesSimulator, raw_connect) -> None:
    admin = await raw_connect()
    codes = await admin.call(2)
    # The vendor's field names (Instamrkt/slate), filled from the op table.
    assert codes["opcodes"]["close_game"] == 375 and codes["opcodes"]["logon"] == 100
    assert codes["response_codes"]["error"] == 666
    assert codes["response_codes"]["logon_fail_already_logged_in"] == 112
    gid = await _open_game(admin)
    event_id = games_sim.register_event(gid, "argentina:1", "goal", 1417180267000)
    details = await admin.call(372, game_id=gid)
    assert details["past_events"][event_id]["happened_at"] == 1417180267000
    await admin.call(363, game_id=gid)
    pool = games_sim.add_pool(gid, "Offsides", manual=True)
    await games_sim.block_betting(gid, pool)
    assert (await admin.recv())["res"] == 368
    games_sim.muted_ops.add(372)
    await admin.send(372, game_id=gid)
    assert await admin.nothing_more()


async def test_restart_keeps_the_port_and_the_games(games_sim: GamesSimulator, raw_connect) -> None:
    admin = await raw_connect()
    gid = await _open_game(admin)
    await admin.call(363, game_id=gid)
    url = games_sim.url
    await games_sim.restart()
    assert games_sim.url == url
    assert games_sim.subscriber_count(gid) == 0  # joins belong to connections
    again = await raw_connect()
    assert (await again.call(372, game_id=gid))["name"] == "Argentina - Brazil"


def test_simulator_from_args() -> None:
    sim = simulator_from_args(
        [
            "--port",
            "0",
            "--source-id",
            "src-1",
            "--session-key",
            "admin-key",
            "--player-key",
            "p1",
            "--player-key",
            "p2",
            "--admin-limit",
            "3",
            "--seed",
            "4",
            "--times-in-seconds",
            "--open-reply-code",
            "340",
            "--require-digest",
        ]
    )
    assert isinstance(sim, GamesSimulator) and isinstance(sim, Simulator)
    assert (sim.host, sim.port, sim.source_id, sim.admin_limit) == ("127.0.0.1", 0, "src-1", 3)
    assert sim.sessions["admin-key"].source_admin
    assert not sim.sessions["p1"].source_admin and sim.sessions["p2"].user_id == 3
    assert sim.times_in_seconds and sim.open_reply_code == 340 and sim.require_digest
    default = simulator_from_args([])
    assert isinstance(default, GamesSimulator)
    assert set(default.sessions) == {DEFAULT_ADMIN_KEY, DEFAULT_PLAYER_KEY}
    with pytest.raises(SystemExit):
        simulator_from_args(["--admin-limit", "0"])
    with pytest.raises(SystemExit):
        simulator_from_args(["--port", "70000"])


async def test_simulator_from_args_serves() -> None:
    sim = simulator_from_args(["--port", "0", "--session-key", "k"])
    async with sim:
        async with connect(sim.url, proxy=None) as ws:
            await ws.send(
                json.dumps(
                    {"header": {"session_key": "k"}, "op": 380, "source_id": DEFAULT_SOURCE_ID}
                )
            )
            assert json.loads(await ws.recv())["res"] == 345


# ---------------------------------------------------------------- the vendor's login


async def test_the_login_digest_is_checked_at_the_handshake(games_sim: GamesSimulator) -> None:
    """The vendor's docs (Instamrkt/slate): ?id=&n=&h=sha256(id + nonce + session key). A good
    digest makes the connection that user's, whatever the header says ("not used currently");
    a wrong digest, an unknown id or a nonce used before is refused with HTTP 403."""
    good = login_url(games_sim.url, "1", DEFAULT_ADMIN_KEY, nonce="1417104170000")
    async with connect(good, proxy=None) as ws:
        raw = Raw(ws, "ignored-header-key")
        listing = await raw.call(380, source_id=DEFAULT_SOURCE_ID)
        assert listing["res"] == 345
        assert (await raw.call(100))["res"] == 100
        assert (await raw.call(100))["res"] == 112  # already logged on
    assert games_sim.logins == [
        {
            "id": "1",
            "n": "1417104170000",
            "h": login_digest("1", "1417104170000", DEFAULT_ADMIN_KEY),
        }
    ]
    refused = [
        good,  # the same nonce again: a replayed URL
        login_url(games_sim.url, "1", "wrong-key"),
        login_url(games_sim.url, "99", DEFAULT_ADMIN_KEY),
        f"{games_sim.url}/?id=1&n=abc",  # no digest
    ]
    for url in refused:
        with pytest.raises(InvalidStatus) as status:
            await connect(url, proxy=None)
        assert status.value.response.status_code == 403


async def test_logon_without_a_digest_reads_the_header_and_digests_can_be_required() -> None:
    async with GamesSimulator(require_digest=True, require_logon=True) as sim:
        with pytest.raises(InvalidStatus):
            await connect(sim.url, proxy=None)
        async with connect(login_url(sim.url, "2", DEFAULT_PLAYER_KEY), proxy=None) as ws:
            raw = Raw(ws, DEFAULT_PLAYER_KEY)
            before = await raw.call(380, source_id=DEFAULT_SOURCE_ID)
            assert before == {**before, "res": 666, "text": "Log on first (op 100)."}
            assert (await raw.call(100))["res"] == 100
            assert (await raw.call(380, source_id=DEFAULT_SOURCE_ID))["res"] == 345
    async with GamesSimulator() as sim:
        async with connect(sim.url, proxy=None) as ws:
            assert (await Raw(ws, "wrong-key").call(100))["res"] == 110
            assert (await Raw(ws, DEFAULT_ADMIN_KEY).call(100))["res"] == 100
