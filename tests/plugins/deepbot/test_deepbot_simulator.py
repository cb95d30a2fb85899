"""The DeepBot simulator speaks the documented wire protocol: checked with a raw websocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.simulation import Simulator
from bot_plugins.deepbot.simulator import (
    DeepBotSimulator,
    SimUser,
    format_timestamp,
    load_users,
    simulator_from_args,
)


async def ask(ws: ClientConnection, frame: str) -> dict[str, Any]:
    await ws.send(frame)
    async with asyncio.timeout(2):
        return json.loads(await ws.recv())


async def no_answer(ws: ClientConnection, frame: str) -> bool:
    await ws.send(frame)
    try:
        async with asyncio.timeout(0.15):
            await ws.recv()
    except TimeoutError:
        return True
    return False


@pytest.fixture
async def raw(deepbot_sim: DeepBotSimulator) -> AsyncIterator[ClientConnection]:
    """A bare websocket to the simulator, not registered."""
    async with connect(deepbot_sim.url, proxy=None) as ws:
        yield ws


@pytest.fixture
async def registered(raw: ClientConnection, deepbot_secret: str) -> ClientConnection:
    reply = await ask(raw, f"api|register|{deepbot_secret}")
    assert reply == {"function": "register", "param": "register", "msg": "success"}
    return raw


async def test_everything_is_refused_before_register(
    deepbot_sim: DeepBotSimulator, raw: ClientConnection
) -> None:
    reply = await ask(raw, "api|get_points|bob")
    assert reply == {"function": "get_points", "param": "bob", "msg": "not authorized"}
    reply = await ask(raw, "api|add_points|bob|1000")
    assert reply["msg"] == "not authorized"
    assert deepbot_sim.user("bob").points == 100


async def test_a_wrong_secret_is_answered_and_changes_nothing(
    deepbot_sim: DeepBotSimulator, raw: ClientConnection, deepbot_secret: str
) -> None:
    reply = await ask(raw, "api|register|nope")
    assert reply == {"function": "register", "param": "register", "msg": "incorrect api secret"}
    assert (await ask(raw, "api|get_points|bob"))["msg"] == "not authorized"
    assert (await ask(raw, f"api|register|{deepbot_secret}|extra"))["msg"] == (
        "incorrect api secret"
    )
    assert deepbot_sim.register_attempts == 2 and deepbot_sim.registrations == 0


async def test_get_user_matches_the_documented_example(registered: ClientConnection) -> None:
    reply = await ask(registered, "api|get_user|expertsonline")
    assert reply == {
        "function": "get_user",
        "param": "expertsonline",
        "msg": {
            "user": "expertsonline",
            "points": 720.0,
            "watch_time": 13125.0,
            "vip": 10,
            "mod": 5,
            "join_date": "2014-07-05T18:09:10.3156080Z",
            "last_seen": "2015-03-01T04:17:09.5451390Z",
            "vip_expiry": "2014-12-09T00:00:00+08:00",
        },
    }


async def test_documented_reads(registered: ClientConnection) -> None:
    assert await ask(registered, "api|get_points|expertsonline") == {
        "function": "get_points",
        "param": "expertsonline",
        "msg": "720.00",
    }
    assert (await ask(registered, "api|get_hours|expertsonline"))["msg"] == "218.75"
    assert (await ask(registered, "api|get_rank|expertsonline"))["msg"] == "Sergeant - Star 2"
    # The stored spelling comes back, whatever case was asked for.
    assert (await ask(registered, "api|get_points|BOB"))["param"] == "Bob"


async def test_unknown_users_get_the_configured_answer(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection
) -> None:
    reply = await ask(registered, "api|get_points|nobody")
    assert reply == {"function": "get_points", "param": "nobody", "msg": "User not found"}
    deepbot_sim.not_found_message = "user not found"
    assert (await ask(registered, "api|get_rank|nobody"))["msg"] == "user not found"
    deepbot_sim.not_found_message = None
    assert await no_answer(registered, "api|get_user|nobody")
    assert (await ask(registered, "api|set_points|nobody|5"))["msg"] == "failed"
    assert (await ask(registered, "api|add_to_escrow|nobody|5"))["msg"] == "user not found"


async def test_requests_it_does_not_understand_get_no_answer(
    registered: ClientConnection,
) -> None:
    for frame in (
        "api|get_bananas|bob",
        "api|get_points",
        "api|get_points|bob|extra",
        "api|set_points|bob",
        "hello",
        "API|get_points|bob",
    ):
        assert await no_answer(registered, frame), frame
    await registered.send(b"api|get_points|bob")  # binary frames are not requests
    assert (await ask(registered, "api|get_points|bob"))["msg"] == "100.00"


async def test_point_changes(deepbot_sim: DeepBotSimulator, registered: ClientConnection) -> None:
    bob = deepbot_sim.user("bob")
    assert (await ask(registered, "api|set_points|bob|42"))["msg"] == "success"
    assert (await ask(registered, "api|add_points|bob|8"))["msg"] == "success"
    assert (await ask(registered, "api|del_points|bob|10"))["msg"] == "success"
    assert bob.points == Decimal(40)
    for frame in (
        "api|set_points|bob|-1",
        "api|set_points|bob|abc",
        "api|set_points|bob|42.5",  # whole points unless the install takes decimals
        "api|add_points|bob|0",
        "api|add_points|bob|1e3",
        "api|add_points|bob|2147483648",  # past Int32
        "api|del_points|bob|41|True",
        "api|del_points|bob|-1",
    ):
        assert (await ask(registered, frame))["msg"] == "failed", frame
    assert bob.points == Decimal(40)
    deepbot_sim.decimals = True
    assert (await ask(registered, "api|add_points|bob|0.5"))["msg"] == "success"
    assert bob.points == Decimal("40.5")


@pytest.mark.parametrize("flag", ["", "|False", "|false"])
async def test_del_points_more_than_the_balance_without_the_flag_sets_zero(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection, flag: str
) -> None:
    # deepclient.py, fixed against a real install: "silently set points to 0".
    assert (await ask(registered, f"api|del_points|bob|101{flag}"))["msg"] == "success"
    assert deepbot_sim.user("bob").points == 0


async def test_del_points_with_the_flag_refuses_and_changes_nothing(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection
) -> None:
    assert (await ask(registered, "api|del_points|bob|101|True"))["msg"] == "failed"
    assert (await ask(registered, "api|del_points|bob|100|True"))["msg"] == "success"
    assert deepbot_sim.user("bob").points == 0


async def test_set_vip_for_an_unknown_user_fails(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection
) -> None:
    assert (await ask(registered, "api|set_vip|nobody|1|5"))["msg"] == "failed"


async def test_user_pages_count_and_vip_expiry(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection
) -> None:
    for i in range(150):
        deepbot_sim.add_user(SimUser(f"v{i:03}", points=Decimal(i)))
    count = await ask(registered, "api|get_users_count")
    assert count == {"function": "get_users_count", "param": "", "msg": 154}
    first = await ask(registered, "api|get_users|0|500")  # at most 100 per page
    assert len(first["msg"]) == 100 and first["msg"][0]["user"] == "expertsonline"
    rest = await ask(registered, "api|get_users|100|100")
    assert len(rest["msg"]) == 54
    assert (await ask(registered, "api|get_users|154|100"))["msg"] == "List empty"
    assert len((await ask(registered, "api|get_users"))["msg"]) == 100
    top = await ask(registered, "api|get_top_users|0|3")
    assert [u["user"] for u in top["msg"]] == ["expertsonline", "Alice", "v149"]
    assert (await ask(registered, "api|get_top_users|1|2"))["msg"][0]["user"] == "Alice"
    reply = await ask(registered, "api|set_vip_expiry|bob|2030-01-02T03:04:05")
    assert reply["msg"] == "success"
    assert deepbot_sim.user("bob").vip_expiry == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (await ask(registered, "api|set_vip_expiry|bob|2030-01-02"))["msg"] == "failed"
    assert (await ask(registered, "api|set_vip_expiry|nobody|2030-01-02T00:00:00"))[
        "msg"
    ] == "failed"


async def test_msg_as_a_json_encoded_string(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection
) -> None:
    deepbot_sim.msg_as_json = True
    reply = await ask(registered, "api|get_user|bob")
    assert isinstance(reply["msg"], str) and json.loads(reply["msg"])["user"] == "Bob"
    page = await ask(registered, "api|get_top_users|0|2")
    assert [u["user"] for u in json.loads(page["msg"])] == ["expertsonline", "Alice"]
    assert (await ask(registered, "api|get_points|bob"))["msg"] == "100.00"  # text stays


async def test_cut_closes_the_connection_before_or_after_applying(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection
) -> None:
    deepbot_sim.cut("del_points", apply=True)
    await registered.send("api|del_points|bob|10|True")
    with pytest.raises(ConnectionClosed):
        await registered.recv()
    assert deepbot_sim.user("bob").points == 90


async def test_escrow_moves_points_and_cancel_all_returns_them(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection
) -> None:
    alice, bob = deepbot_sim.user("alice"), deepbot_sim.user("bob")
    assert (await ask(registered, "api|add_to_escrow|bob|0"))["msg"] == (
        "points should be a positive number"
    )
    assert (await ask(registered, "api|add_to_escrow|bob|x"))["msg"] == (
        "points should be a positive number"
    )
    assert (await ask(registered, "api|add_to_escrow|bob|101"))["msg"] == "Not enough points"
    assert (await ask(registered, "api|commit_user_escrow|bob"))["msg"] == "No points in escrow"
    assert (await ask(registered, "api|cancel_escrow|bob"))["msg"] == "No points in escrow"
    assert (await ask(registered, "api|cancel_escrow|all"))["msg"] == "No points in escrow"
    assert (await ask(registered, "api|add_to_escrow|bob|60"))["msg"] == "success"
    assert (await ask(registered, "api|add_to_escrow|alice|10"))["msg"] == "success"
    assert (bob.points, bob.escrow, alice.points, alice.escrow) == (40, 60, 490, 10)
    assert (await ask(registered, "api|get_points|bob"))["msg"] == "40.00"
    reply = await ask(registered, "api|cancel_escrow|all")
    assert reply == {"function": "cancel_escrow", "param": "all", "msg": "success"}
    assert (bob.points, bob.escrow, alice.points, alice.escrow) == (100, 0, 500, 0)
    assert (await ask(registered, "api|add_to_escrow|bob|30"))["msg"] == "success"
    assert (await ask(registered, "api|commit_user_escrow|bob"))["msg"] == "success"
    assert (bob.points, bob.escrow) == (70, 0)


async def test_set_vip(deepbot_sim: DeepBotSimulator, registered: ClientConnection) -> None:
    bob = deepbot_sim.user("bob")
    assert (await ask(registered, "api|set_vip|bob|4|30"))["msg"] == "Failed. Incorrect VIP level."
    assert (await ask(registered, "api|set_vip|bob|x|30"))["msg"] == "Failed. Incorrect VIP level."
    assert (await ask(registered, "api|set_vip|bob|1|-3"))["msg"] == (
        "Failed. Incorrect VIP length."
    )
    assert (await ask(registered, "api|set_vip|bob|1|1.5"))["msg"] == (
        "Failed. Incorrect VIP length."
    )
    assert (await ask(registered, "api|set_vip|bob|1|99999999"))["msg"] == (
        "Failed. Incorrect VIP length."
    )
    assert bob.vip == 10 and bob.vip_expiry is None
    now = datetime.now(UTC)
    assert (await ask(registered, "api|set_vip|bob|2|30"))["msg"] == "success"
    assert bob.vip == 2 and bob.vip_expiry is not None
    first = bob.vip_expiry
    assert timedelta(days=30) <= first - now < timedelta(days=30, seconds=5)
    assert (await ask(registered, "api|set_vip|bob|3|5"))["msg"] == "success"
    assert bob.vip == 3 and bob.vip_expiry - first == timedelta(days=5)
    user = (await ask(registered, "api|get_user|bob"))["msg"]
    assert user["vip"] == 3 and user["vip_expiry"].endswith("Z")


async def test_hooks_fail_silence_and_delay(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection
) -> None:
    deepbot_sim.fail("add_points", "BOB", times=2)
    assert (await ask(registered, "api|add_points|bob|5"))["msg"] == "failed"
    assert (await ask(registered, "api|add_points|alice|5"))["msg"] == "success"
    assert (await ask(registered, "api|add_points|bob|5"))["msg"] == "failed"
    assert (await ask(registered, "api|add_points|bob|5"))["msg"] == "success"
    assert deepbot_sim.user("bob").points == 105
    deepbot_sim.fail("get_points", "bob", msg=None, times=None)
    assert await no_answer(registered, "api|get_points|bob")
    assert await no_answer(registered, "api|get_points|bob")
    deepbot_sim.clear_failures()
    deepbot_sim.silent_functions.add("get_rank")
    assert await no_answer(registered, "api|get_rank|bob")
    assert (await ask(registered, "api|get_points|bob"))["msg"] == "105.00"
    deepbot_sim.silent = True
    assert await no_answer(registered, "api|get_points|bob")
    deepbot_sim.silent = False
    deepbot_sim.reply_delay = 0.1
    started = asyncio.get_running_loop().time()
    assert (await ask(registered, "api|get_hours|bob"))["msg"] == "1.50"
    assert asyncio.get_running_loop().time() - started >= 0.1


async def test_push_reaches_every_client(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection
) -> None:
    async with connect(deepbot_sim.url, proxy=None) as other:
        await asyncio.sleep(0.02)
        assert deepbot_sim.connection_count == 2
        await deepbot_sim.push("music|Song|Artist")
        async with asyncio.timeout(2):
            assert await registered.recv() == "music|Song|Artist"
            assert await other.recv() == "music|Song|Artist"


async def test_forget_registrations(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection, deepbot_secret: str
) -> None:
    deepbot_sim.forget_registrations()
    assert (await ask(registered, "api|get_points|bob"))["msg"] == "not authorized"
    assert (await ask(registered, f"api|register|{deepbot_secret}"))["msg"] == "success"
    assert (await ask(registered, "api|get_points|bob"))["msg"] == "100.00"


async def test_restart_keeps_port_and_users(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection, deepbot_secret: str
) -> None:
    await ask(registered, "api|add_points|bob|1")
    url = deepbot_sim.url
    await deepbot_sim.restart()
    assert deepbot_sim.url == url
    async with connect(url, proxy=None) as ws:
        assert (await ask(ws, "api|get_points|bob"))["msg"] == "not authorized"
        assert (await ask(ws, f"api|register|{deepbot_secret}"))["msg"] == "success"
        assert (await ask(ws, "api|get_points|bob"))["msg"] == "101.00"
    await deepbot_sim.stop()
    await deepbot_sim.stop()  # twice is fine


async def test_decimal_comma_install(
    deepbot_sim: DeepBotSimulator, registered: ClientConnection
) -> None:
    deepbot_sim.decimal_comma = True
    deepbot_sim.user("bob").points = Decimal("13.37")
    assert (await ask(registered, "api|get_points|bob"))["msg"] == "13,37"


def test_rank_is_computed_from_watch_time() -> None:
    assert SimUser("a", watch_minutes=Decimal(0)).rank_name() == "Recruit - Star 1"
    assert SimUser("a", watch_minutes=Decimal(600)).rank_name() == "Private - Star 1"
    assert SimUser("a", watch_minutes=Decimal(13125)).rank_name() == "Sergeant - Star 2"
    assert SimUser("a", rank="Legend").rank_name() == "Legend"


def test_timestamps_use_deepbots_round_trip_format() -> None:
    assert format_timestamp(None) == "0001-01-01T00:00:00"
    assert format_timestamp(datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == (
        "2020-01-02T03:04:05.0000060Z"
    )
    plus8 = datetime(2020, 1, 2, 3, 4, 5, 120000, tzinfo=UTC).astimezone(
        timezone(timedelta(hours=8))
    )
    assert format_timestamp(plus8) == "2020-01-02T11:04:05.1200000+08:00"


def test_data_file_seeds_users(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(
        json.dumps(
            {
                "users": [
                    {"user": "Dana", "points": "12.5", "watch_time": 120, "vip": 1, "mod": 1},
                    {"user": "Eve", "points": 3, "escrow": 2, "join_date": "2020-01-01T00:00:00Z"},
                ]
            }
        )
    )
    dana, eve = load_users(path)
    assert (dana.name, dana.points, dana.hours, dana.vip, dana.mod) == (
        "Dana",
        Decimal("12.5"),
        Decimal(2),
        1,
        1,
    )
    assert eve.escrow == 2 and eve.join_date == datetime(2020, 1, 1, tzinfo=UTC)
    sim = DeepBotSimulator(data_file=path, seed_example=False)
    assert sorted(sim.users) == ["dana", "eve"]


@pytest.mark.parametrize(
    "content",
    [
        "[{}]",
        '[{"user": "a|b"}]',
        '[{"user": "a", "points": "lots"}]',
        '[{"user": "a", "points": -1}]',
        '[{"user": "a", "vip": 7}]',
        '[{"user": "a", "join_date": "yesterday"}]',
        '{"people": []}',
        "42",
    ],
)
def test_bad_data_files_are_refused_with_a_reason(tmp_path: Path, content: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"\w"):
        load_users(path)


async def test_simulator_from_args_runs_standalone(tmp_path: Path) -> None:
    sim = simulator_from_args(
        ["--port", "0", "--secret", "cli-secret", "--user", "dan:5:120", "--no-example"]
    )
    assert isinstance(sim, Simulator) and sim.host == "127.0.0.1"
    assert sorted(sim.users) == ["dan"]
    async with sim, connect(sim.url, proxy=None) as ws:
        assert (await ask(ws, "api|register|cli-secret"))["msg"] == "success"
        assert (await ask(ws, "api|get_points|dan"))["msg"] == "5.00"
        assert (await ask(ws, "api|get_hours|dan"))["msg"] == "2.00"


def test_simulator_from_args_options(tmp_path: Path) -> None:
    sim = simulator_from_args(["--not-found", "silent", "--decimal-comma"])
    assert sim.port == 3337 and sim.not_found_message is None and sim.decimal_comma
    assert "expertsonline" in sim.users
    for bad in (
        ["--secret", "a|b"],
        ["--user", "x:lots"],
        ["--user", "x:-5"],
        ["--data", str(tmp_path / "missing.json")],
        ["--port", "http"],
    ):
        with pytest.raises(SystemExit):
            simulator_from_args(bad)
