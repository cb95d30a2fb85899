"""The op contract in ``wire.OPS`` has both sides (STYLE.md redesign 4), and the frame and login
helpers both ends share behave at their edges."""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.errors import NotConnected, ServiceTimeout, UserError
from bot_plugins.games import errors, wire
from bot_plugins.games.client import GamesClient
from bot_plugins.games.models import Game, NewGame
from bot_plugins.games.simulator import GamesSimulator


async def _open_upcoming(client: GamesClient, _gid: str) -> Any:
    made = await client.create_game(NewGame(name="Upcoming", type="chess"))
    return await client.open_game(made.game_id, ["Mate"], ["White", "Black"])


async def _leave(client: GamesClient, gid: str) -> None:
    await client.join_game(gid)
    await client.leave_game(gid)


# The client's call for each op of the table, run against the simulator: an op added to the
# table without a client method (or a simulator handler) fails the test below.
CLIENT_CALLS: dict[int, Callable[[GamesClient, str], Awaitable[Any]]] = {
    wire.OP_PING: lambda c, gid: c.ping(),
    wire.OP_GET_OPCODES: lambda c, gid: c.get_opcodes(),
    wire.OP_LOGON: lambda c, gid: c.logon(),
    wire.OP_CREATE_AND_OPEN: lambda c, gid: c.create_and_open_game(NewGame("New", "chess")),
    wire.OP_CREATE: lambda c, gid: c.create_game(NewGame("Later", "chess")),
    wire.OP_OPEN: _open_upcoming,
    wire.OP_BECOME_ADMIN: lambda c, gid: c.become_admin(gid),
    wire.OP_GET_DETAILS: lambda c, gid: c.get_game(gid),
    wire.OP_UPDATE: lambda c, gid: c.update_game(gid, ["Corner"]),
    wire.OP_JOIN: lambda c, gid: c.join_game(gid),
    wire.OP_LEAVE: _leave,
    wire.OP_CLOSE: lambda c, gid: c.close_game(gid),
    wire.OP_LIST: lambda c, gid: c.list_games(),
}


@pytest.mark.parametrize("op", sorted(wire.OPS), ids=lambda op: wire.OPS[op].name)
async def test_every_op_has_a_client_call_and_a_simulator_handler(
    op: int, games_client: GamesClient, games_sim: GamesSimulator, open_game: Game
) -> None:
    assert op in CLIENT_CALLS, f"no client call for op {op} ({wire.OPS[op].name})"
    handler = getattr(games_sim, f"_op_{wire.OPS[op].name}", None)
    assert handler is not None, f"the simulator has no handler for {wire.OPS[op].name}"
    since = len(games_sim.requests)
    await CLIENT_CALLS[op](games_client, open_game.game_id)
    assert op in [request["op"] for request in games_sim.requests[since:]]


def test_the_table_names_only_known_reply_codes() -> None:
    for op in wire.OPS.values():
        assert op.replies and op.replies <= set(wire.RES_NAMES), op.name
        assert op.publishes <= wire.EVENT_CODES, op.name
    sessionless = {op.name for op in wire.OPS.values() if not op.needs_session}
    assert sessionless == {"ping", "get_opcodes", "logon"}


async def test_get_opcodes_answers_from_the_table(games_client: GamesClient) -> None:
    codes = await games_client.get_opcodes()
    assert codes.ops == {op.name: code for code, op in wire.OPS.items()}
    assert codes.res == {name: code for code, name in wire.RES_NAMES.items()}


# ---------------------------------------------------------------- frames


def test_frames_are_refused_with_a_reason_before_any_reader_walks_them() -> None:
    cases = {
        b"\xff\xfe": "not UTF-8",
        "[" * 100_000: "JSON nested too deeply to parse",
        '{"a": ' + "[" * 500 + "]" * 500 + "}": "JSON nested deeper than 64 levels",
        '{"a": ' + "[" * 65 + "]" * 65 + "}": "JSON nested deeper than 64 levels",
        "{'a': 1}": "not JSON",
        "[1, 2]": "a JSON list, not an object",
        "null": "a JSON NoneType, not an object",
    }
    for frame, reason in cases.items():
        with pytest.raises(wire.BadFrame) as bad:
            wire.decode_frame(frame)
        assert bad.value.reason == reason
    # Brackets inside strings are text, not nesting; 64 levels are fine.
    assert wire.decode_frame('{"name": "' + "[" * 500 + '"}')["name"] == "[" * 500
    nested = '{"a": ' + "[" * 63 + "]" * 63 + "}"
    assert wire.decode_frame(nested) == json.loads(nested)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("g-1", "g-1"),
        (17, "17"),
        ("x" * 101, None),
        ("two words", None),
        ("bad\nid", None),
        ({"a": 1}, None),
        (float("inf"), None),
        (True, None),
    ],
)
def test_ids_from_the_server_must_look_like_ids(value: object, expected: str | None) -> None:
    assert wire.read_id(value) == expected


def test_the_login_url_carries_the_vendors_digest_and_never_the_key() -> None:
    url = wire.login_url("wss://games.example:9999/ws?v=1", "17", "s3cret", nonce="1422006034742")
    digest = hashlib.sha256(b"171422006034742s3cret").hexdigest()
    assert url == f"wss://games.example:9999/ws?v=1&id=17&n=1422006034742&h={digest}"
    assert "s3cret" not in url
    assert wire.new_nonce() != wire.new_nonce()
    assert wire.safe_url(url) == "wss://games.example:9999/ws"


def test_every_error_the_client_raises_derives_from_its_base() -> None:
    """STYLE.md section 4: one base to catch; the core's kinds are kept as second bases."""
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    ]
    for cls in classes:
        if cls is errors.GamesInputError:  # refused before sending: no service error
            assert issubclass(cls, UserError) and not issubclass(cls, errors.ServiceError)
        else:
            assert issubclass(cls, errors.GamesError), cls
    assert issubclass(errors.GamesNotConnected, NotConnected)
    assert issubclass(errors.GamesTimeout, ServiceTimeout)
    assert errors.GamesTimeout("late").service == "games"
