"""The plain-language wording of games in chat (pure functions, no socket needed)."""

from __future__ import annotations

from bot_plugins.games.events import (
    BettingBlocked,
    DetailsChanged,
    GameClosed,
    PoolResolved,
    RejoinFailed,
    UserJoined,
    UserLeft,
)
from bot_plugins.games.format import (
    action_names,
    alert_text,
    game_label,
    inline_targets,
    names_list,
    status_words,
    target_display,
    target_lines,
)
from bot_plugins.games.models import GameDetails, PoolInfo, read_targets

GID = "dc164a36-4b82-47a4-a2b4-be757a018c9e"


def _details(targets: list[str], actions: tuple[str, ...] = ("Goal",)) -> GameDetails:
    from bot_plugins.games.models import read_actions

    return GameDetails(
        game_id=GID,
        name="Argentina - Brazil",
        status="game_in_progress_betting_active",
        actions=read_actions(list(actions)),
        targets=read_targets(targets),
    )


def test_labels_statuses_and_name_lists() -> None:
    assert game_label(GID, "Derby") == "Derby (dc164a36)"
    assert game_label(GID, None) == "game dc164a36"
    assert game_label("17", None) == "game 17"  # short ids stay whole
    assert status_words("game_in_progress_betting_closed") == "in progress, betting closed"
    assert status_words("game_suspended") == "game suspended"  # unknown, still readable
    assert names_list(["a"]) == "a"
    assert names_list(["a", "b", "c"]) == "a, b and c"
    assert names_list([str(n) for n in range(12)], limit=3) == "0, 1, 2 and 9 more"


def test_targets_render_as_a_tree_inline_and_cut_when_long() -> None:
    tree = read_targets(["Argentina", "Argentina:1", "Argentina:1:a", "Brazil"])
    assert inline_targets(tree) == "Argentina (1 (a)), Brazil"
    assert target_lines(tree) == ["- Argentina", "  - 1", "    - a", "- Brazil"]
    assert target_display(tree, "argentina:1:a") == "Argentina 1 a"
    assert target_display(tree, "chile:9") == "chile:9"
    big = read_targets([f"T{n}" for n in range(50)])
    lines = target_lines(big, limit=5)
    assert lines[-1] == "  ... and 45 more" and len(lines) == 6


def test_a_burst_of_events_reads_as_one_sentence() -> None:
    before = _details(["Argentina"])
    after = _details(["Argentina", "Argentina:10"], actions=("Goal", "Corner"))
    pool = PoolInfo(game_id=GID, pool_id="p1", name="Next goal")
    manual = PoolInfo(game_id=GID, pool_id="p2")
    events = [
        UserJoined(game_id=GID, user_id="1", user_name="ann"),
        UserLeft(game_id=GID, user_id="2", user_name="bo"),
        DetailsChanged(game_id=GID, details=after),
        PoolResolved(game_id=GID, pool=pool),
        BettingBlocked(game_id=GID, pool=manual),
        GameClosed(game_id=GID),
    ]
    assert alert_text("Derby (dc164a36)", events, before) == (
        "Derby (dc164a36): ann joined; bo left; details were updated: new actions Corner, "
        "new targets Argentina 10; 1 pool resolved: Next goal; betting blocked in 1 pool "
        "waiting to be resolved by hand: p2; the game is closed, so this chat stops getting "
        "its alerts."
    )
    unknown_before = alert_text("g", [DetailsChanged(game_id=GID, details=after)], None)
    assert unknown_before == "g: details were updated (2 actions, 2 targets)."
    lost = alert_text("g", [RejoinFailed(game_id=GID, reason="No game with that id.")], None)
    assert lost == (
        "g: the bot could not join it again after reconnecting (No game with that id.), so "
        "this chat stops getting its alerts."
    )


def test_lines_stay_short_however_many_actions_and_targets_the_api_sends() -> None:
    many = _details(
        [f"T{i}:{j}" for i in range(100) for j in range(3)], tuple(f"A{i}" for i in range(500))
    )
    assert action_names(many.actions).endswith("A29 and 470 more")
    line = inline_targets(many.targets)
    assert line.endswith(" and 360 more") and len(line) < 600
    assert inline_targets(_details(["Argentina", "Argentina:1", "Brazil"]).targets) == (
        "Argentina (1), Brazil"
    )
