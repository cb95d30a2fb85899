"""Plain-language text for games in chat: lists, details, target trees, close results, alerts.

Kept apart from the commands so replies and alerts word the same things the same way, and so
the wording can be tested without a connection. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .events import (
    BettingBlocked,
    DetailsChanged,
    GameClosed,
    GameEvent,
    PoolResolved,
    RejoinFailed,
    UserJoined,
    UserLeft,
)
from .models import (
    Action,
    CloseResult,
    Game,
    GameDetails,
    GameSummary,
    PastEvent,
    PoolInfo,
    Target,
    TargetTree,
)
from .wire import (
    STATUS_BETTING_CLOSED,
    STATUS_CLOSED,
    STATUS_IN_PROGRESS,
    STATUS_NOT_YET_ACTIVE,
    STATUS_PRE_GAME,
)

# Ids are UUIDs: too long to read in an alert, so alerts and lists lead with this many
# characters, which commands accept as a prefix.
SHORT_ID = 8

# A chat message is no place for a thousand targets; beyond these the text says how many more.
MAX_TARGET_LINES = 40
MAX_LISTED_GAMES = 25
MAX_NAMES_IN_LINE = 10
MAX_ACTIONS_IN_LINE = 30

_STATUS_WORDS = {
    STATUS_NOT_YET_ACTIVE: "upcoming, betting not open yet",
    STATUS_PRE_GAME: "betting open, not started yet",
    STATUS_IN_PROGRESS: "in progress, betting open",
    STATUS_BETTING_CLOSED: "in progress, betting closed",
    STATUS_CLOSED: "closed",
}


def status_words(status: str) -> str:
    """The API's status code as words; an unknown status is shown readably, not hidden."""
    return _STATUS_WORDS.get(status, status.replace("_", " ") or "unknown")


def short_id(game_id: str) -> str:
    return game_id[:SHORT_ID] if len(game_id) > SHORT_ID + 4 else game_id


def game_label(game_id: str, name: str | None) -> str:
    """How a game is named in one line: its name and the short id to type in commands."""
    return f"{name} ({short_id(game_id)})" if name else f"game {short_id(game_id)}"


def when(stamp: datetime | None) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M UTC") if stamp else "-"


def names_list(names: Sequence[str], limit: int = MAX_NAMES_IN_LINE) -> str:
    """'a, b and c', or 'a, b, ... and 7 more' when the list is long."""
    items = list(names)
    if len(items) > limit:
        shown = ", ".join(items[:limit])
        return f"{shown} and {len(items) - limit} more"
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


# ---------------------------------------------------------------- targets


def inline_targets(tree: TargetTree, limit: int = MAX_TARGET_LINES) -> str:
    """The tree on one line: 'Argentina (1, 2), Brazil (7), None'; past ``limit`` targets it
    says how many more (the API sets no bound on a game's targets)."""
    shown = 0

    def render(target: Target) -> str | None:
        nonlocal shown
        if shown >= limit:
            return None
        shown += 1
        inner = ", ".join(r for child in target.children if (r := render(child)) is not None)
        return f"{target.display_name} ({inner})" if inner else target.display_name

    text = ", ".join(r for root in tree if (r := render(root)) is not None) or "none"
    total = sum(1 for _ in tree.walk())
    return text + (f" and {total - shown} more" if total > shown else "")


def target_lines(tree: TargetTree, limit: int = MAX_TARGET_LINES) -> list[str]:
    """The tree as an indented list, children under their parent, cut at ``limit`` lines."""
    lines: list[str] = []
    total = 0

    def walk(target: Target, depth: int) -> None:
        nonlocal total
        total += 1
        if len(lines) < limit:
            same = target.symbol.lower() == target.display_name.lower()
            symbol = "" if same else f" [{target.symbol}]"
            lines.append(f"{'  ' * depth}- {target.display_name}{symbol}")
        for child in target.children:
            walk(child, depth + 1)

    for root in tree:
        walk(root, 0)
    if total > limit:
        lines.append(f"  ... and {total - limit} more")
    return lines


def target_display(tree: TargetTree, path: str) -> str:
    """A target id such as 'argentina:1' as its display names ('argentina 1')."""
    names: list[str] = []
    level = tree.roots
    for part in path.split(":"):
        node = next((t for t in level if t.target_id.lower() == part.strip().lower()), None)
        if node is None:
            return path
        names.append(node.display_name)
        level = node.children
    return " ".join(names) or path


def action_names(actions: Sequence[Action]) -> str:
    """Actions on one line, cut after :data:`MAX_ACTIONS_IN_LINE` with how many more."""
    names = [a.name for a in actions]
    if len(names) > MAX_ACTIONS_IN_LINE:
        more = len(names) - MAX_ACTIONS_IN_LINE
        return f"{', '.join(names[:MAX_ACTIONS_IN_LINE])} and {more} more"
    return ", ".join(names) or "none"


# ---------------------------------------------------------------- replies


def game_list(games: Sequence[GameSummary]) -> str:
    if not games:
        return "There are no active games right now."
    lines = [f"Active games ({len(games)}):"]
    for game in games[:MAX_LISTED_GAMES]:
        kind = f" [{game.type}]" if game.type else ""
        opens = f", opens {when(game.open_at)}" if game.status == STATUS_NOT_YET_ACTIVE else ""
        lines.append(
            f"- {game.name or 'unnamed'}{kind}: {status_words(game.status)}{opens} "
            f"- id {game.game_id}"
        )
    if len(games) > MAX_LISTED_GAMES:
        lines.append(f"... and {len(games) - MAX_LISTED_GAMES} more.")
    return "\n".join(lines)


def past_event_line(event: PastEvent, details: GameDetails) -> str:
    action = next((a.name for a in details.actions if a.action_id == event.action_id), None)
    what = action or event.action_id or "something"
    target = target_display(details.targets, event.target_id) if event.target_id else ""
    at = event.happened_at.strftime("%H:%M") if event.happened_at else "--:--"
    return f"  {at} {what}" + (f" - {target}" if target else "")


def game_details(details: GameDetails, recent: int) -> str:
    """Everything `game <id>` shows: status, times, actions, targets tree, recent events."""
    kind = f" [{details.type}]" if details.type else ""
    lines = [
        f"{details.name or 'Unnamed game'}{kind}: {status_words(details.status)}",
        f"id {details.game_id}" + (f", {details.hashtag}" if details.hashtag else ""),
    ]
    times = [
        ("opens", details.open_at),
        ("live from", details.live_start_at),
        ("live until", details.live_finish_at),
        ("closes", details.close_at),
    ]
    shown = [f"{label} {when(stamp)}" for label, stamp in times if stamp is not None]
    if shown:
        lines.append("; ".join(shown))
    if details.currency:
        lines.append(f"Currency: {details.currency}")
    lines.append(f"Actions: {action_names(details.actions)}")
    if len(details.targets):
        lines.append("Targets:")
        lines += target_lines(details.targets)
    else:
        lines.append("Targets: none yet")
    events = details.recent_events(recent)
    if events:
        lines.append(f"Recent events ({len(events)} of {len(details.past_events)}):")
        lines += [past_event_line(e, details) for e in events]
    elif recent > 0:
        lines.append("No events yet.")
    return "\n".join(lines)


def created_game(game: Game) -> str:
    verb = "Created and opened" if game.opened else "Created"
    state = "" if game.opened else " It is upcoming, not open for betting yet."
    lines = [f"{verb} {game.name or 'the game'} [{game.type}], id {game.game_id}.{state}"]
    if game.actions:
        lines.append(f"Actions: {action_names(game.actions)}")
    if len(game.targets):
        lines.append(f"Targets: {inline_targets(game.targets)}")
    return "\n".join(lines)


def pool_names(pools: Sequence[PoolInfo]) -> str:
    return names_list([p.label for p in pools])


def close_result(result: CloseResult, label: str, again: str) -> str:
    """The reply to a close; ``again`` is the exact command to re-send once pools are done."""
    resolved = (
        f" {len(result.resolved)} pool(s) were resolved automatically: "
        f"{pool_names(result.resolved)}."
        if result.resolved
        else ""
    )
    if result.closed:
        return f"{label} is closed for good.{resolved}"
    if result.blocked:
        return (
            f"{label} is not closed yet: betting is blocked in {len(result.blocked)} pool(s) "
            f"that must be resolved by hand: {pool_names(result.blocked)}.{resolved} "
            f"Resolve them, then send {again} again to close the game for good."
        )
    return f"The games service did not confirm that {label} closed; check it with {again}."


# ---------------------------------------------------------------- alerts


def _details_change(before: GameDetails | None, after: GameDetails) -> str:
    if before is None:
        return (
            f"details were updated ({len(after.actions)} actions, "
            f"{len(after.targets.paths())} targets)"
        )
    old_actions = {a.action_id for a in before.actions}
    old_targets = {p.lower() for p in before.targets.paths()}
    new_actions = [a.name for a in after.actions if a.action_id not in old_actions]
    new_targets = [
        target_display(after.targets, p)
        for p in after.targets.paths()
        if p.lower() not in old_targets
    ]
    parts = []
    if new_actions:
        parts.append(f"new actions {names_list(new_actions)}")
    if new_targets:
        parts.append(f"new targets {names_list(new_targets)}")
    if after.status != before.status:
        parts.append(f"now {status_words(after.status)}")
    return "details were updated" + (f": {', '.join(parts)}" if parts else "")


def alert_text(label: str, events: Sequence[GameEvent], before: GameDetails | None) -> str:
    """One message for a burst of one game's events: who joined or left, details changed,
    pools resolved or blocked, the game closed."""
    joined = [e.user_name for e in events if isinstance(e, UserJoined)]
    left = [e.user_name for e in events if isinstance(e, UserLeft)]
    details = [e.details for e in events if isinstance(e, DetailsChanged)]
    resolved = [e.pool for e in events if isinstance(e, PoolResolved)]
    blocked = [e.pool for e in events if isinstance(e, BettingBlocked)]
    rejoin = [e for e in events if isinstance(e, RejoinFailed)]
    parts: list[str] = []
    if joined:
        parts.append(f"{names_list(joined)} joined")
    if left:
        parts.append(f"{names_list(left)} left")
    if details:
        parts.append(_details_change(before, details[-1]))
    if resolved:
        parts.append(f"{_pools(len(resolved))} resolved: {pool_names(resolved)}")
    if blocked:
        parts.append(
            f"betting blocked in {_pools(len(blocked))} waiting to be resolved by hand: "
            f"{pool_names(blocked)}"
        )
    if any(isinstance(e, GameClosed) for e in events):
        parts.append("the game is closed, so this chat stops getting its alerts")
    if rejoin:
        parts.append(
            f"the bot could not join it again after reconnecting ({rejoin[-1].reason}), "
            "so this chat stops getting its alerts"
        )
    return f"{label}: {'; '.join(parts)}."


def _pools(count: int) -> str:
    return "1 pool" if count == 1 else f"{count} pools"
