"""Readers and request checks of the games models (pure functions, no socket needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot_plugins.games.errors import BadReply, GamesInputError
from bot_plugins.games.models import (
    check_id,
    check_names,
    read_game,
    read_game_list,
    read_pool,
    read_targets,
)
from bot_plugins.games.wire import parse_time, to_epoch_ms

MOMENT = datetime(2014, 11, 27, 16, 2, 50, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        1417104170,
        1417104170000,
        "1417104170",
        "1417104170000",
        1417104170.0,
        "2014-11-27T16:02:50Z",
    ],
)
def test_times_in_any_unit_or_type_read_the_same(value: object) -> None:
    assert parse_time(value) == MOMENT


@pytest.mark.parametrize("value", [None, "", "null", "soon", -5, float("nan"), True, [1], 1e300])
def test_unreadable_times_are_absent_not_fatal(value: object) -> None:
    assert parse_time(value) is None


def test_request_times_are_sent_in_millis() -> None:
    assert to_epoch_ms(MOMENT) == 1417104170000
    assert to_epoch_ms(1417104170) == to_epoch_ms(1417104170000) == 1417104170000


def test_targets_read_as_a_tree_from_the_documented_shape() -> None:
    tree = read_targets(
        {
            "brazil": {
                "symbol": "bra",
                "display_name": "Brazil",
                "targets": {"7": {"symbol": "7", "display_name": "7", "targets": {}}},
            },
            "none": {"symbol": "non", "display_name": "None", "targets": {}},
        }
    )
    assert tree.paths() == ["brazil", "brazil:7", "none"]
    assert tree.find("BRAZIL:7") is not None and tree.find("brazil:8") is None
    assert len(tree) == 2


def test_targets_as_a_flat_list_of_paths_are_nested_too() -> None:
    tree = read_targets(["Argentina:1", "Argentina:2", "Brazil"])
    argentina = tree.find("argentina")
    assert argentina is not None and [c.target_id for c in argentina.children] == ["1", "2"]
    assert read_targets("garbage").roots == ()


def test_a_reply_without_game_id_is_a_bad_reply() -> None:
    with pytest.raises(BadReply, match="without a game id"):
        read_game({"res": 340, "game_name": "x"}, opened=True)


def test_game_list_accepts_a_mapping_or_a_list() -> None:
    keyed = read_game_list(
        {"games": {"g1": {"name": "A", "status": "game_closed", "open_at": "1"}}}
    )
    listed = read_game_list({"games": [{"game_id": "g1", "name": "A"}, "junk", {"name": "no id"}]})
    assert [g.game_id for g in keyed] == [g.game_id for g in listed] == ["g1"]
    assert read_game_list({"games": None}) == []


def test_pools_keep_unknown_fields() -> None:
    pool = read_pool({"res": 362, "game_id": "g", "bet_pool_id": 9, "winner": "arg"})
    assert (pool.pool_id, pool.label, pool.extra) == ("9", "9", {"winner": "arg"})


def test_name_lists_are_checked_and_deduplicated() -> None:
    assert check_names("Goal, Offside,,goal", "actions") == ["Goal", "Offside"]
    assert check_names(["Argentina : 1"], "targets", nested=True) == ["Argentina:1"]
    with pytest.raises(GamesInputError, match="empty name"):
        check_names(["Goal", " "], "actions")
    with pytest.raises(GamesInputError, match="At most"):
        check_names([f"t{n}" for n in range(201)], "targets")
    with pytest.raises(GamesInputError, match="must be text"):
        check_names([3], "actions")  # type: ignore[list-item]


def test_ids_are_one_bounded_word() -> None:
    assert check_id(" abc-1 ") == "abc-1"
    for bad in ("", "a b", "x" * 101, "a\x00"):
        with pytest.raises(GamesInputError):
            check_id(bad)
