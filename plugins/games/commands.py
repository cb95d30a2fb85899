"""The games chat commands: list and show games, follow them in a chat, and run their life
cycle as an admin. Each maps chat words to one or two client calls; the API's refusals are
ServiceErrors whose messages the dispatcher shows as they are.
"""

from __future__ import annotations

from bot import Command, Context, Permission, ServiceError, UserError, command

from .format import (
    action_names,
    close_result,
    created_game,
    game_details,
    game_list,
    inline_targets,
    names_list,
    short_id,
)
from .models import NewGame, check_names
from .service import service_of

# Commands everyone may use reach the API: a user repeating one cannot flood it.
_COOLDOWN = (5, 10.0)

# Typed in place of a list to leave it empty ("game create X football - Argentina,Brazil").
_EMPTY = "-"


def _list_arg(value: str | None, what: str, *, nested: bool = False) -> list[str]:
    """A comma list from chat, checked before anything is sent (bad input changes nothing)."""
    if value is None or value.strip() == _EMPTY:
        return []
    return check_names(value, what, nested=nested)


def _prefix(ctx: Context) -> str:
    return str(ctx.bot.settings.bot.prefix)


def _added(actions: list[str], targets: list[str]) -> str:
    parts = []
    if actions:
        parts.append(f"actions {names_list(actions)}")
    if targets:
        parts.append(f"targets {names_list(targets)}")
    return " and ".join(parts)


# ---------------------------------------------------------------- everyone


@command("games", cooldown=_COOLDOWN)
async def games(ctx: Context) -> str:
    """List the active games you can join."""
    service = service_of(ctx)
    found = await (await service.api()).list_games(service.source_id)
    service.remember_list(found)
    text = game_list(found)
    if found:
        text += f"\nSee one with {_prefix(ctx)}game <id>; the first 8 characters of an id do."
    return text


@command("game", cooldown=_COOLDOWN)
async def game(ctx: Context, game_id: str) -> str:
    """Show a game: its status, actions, targets and recent events.

    Args:
        game_id: the game's id (its first 8 characters are enough)
    """
    service = service_of(ctx)
    gid = await service.resolve_id(game_id)
    details = await (await service.api()).get_game(gid)
    service.remember_details(details)
    text = game_details(details, service.config.recent_events)
    if gid in service.followed_games(ctx.platform, ctx.chat_id):
        text += "\nThis chat gets this game's alerts."
    return text


@command("game join", cooldown=_COOLDOWN)
async def game_join(ctx: Context, game_id: str) -> str:
    """Join a game: this chat then gets its alerts (joins, changes, pools, the close).

    Args:
        game_id: the game's id (its first 8 characters are enough)
    """
    service = service_of(ctx)
    gid = await service.resolve_id(game_id)
    new = await service.follow(ctx.platform, ctx.chat_id, gid)
    label = await service.best_label(gid)
    if not new:
        return f"This chat already gets the alerts of {label}."
    return (
        f"Joined {label}. This chat now gets its alerts: who joins or leaves, changed "
        f"details, resolved or blocked pools and the close. Stop with "
        f"{_prefix(ctx)}game leave {short_id(gid)}."
    )


@command("game leave", cooldown=_COOLDOWN)
async def game_leave(ctx: Context, game_id: str) -> str:
    """Leave a game: this chat stops getting its alerts.

    Args:
        game_id: the game's id (its first 8 characters are enough)
    """
    service = service_of(ctx)
    here = service.followed_games(ctx.platform, ctx.chat_id)
    gid = await service.resolve_id(game_id, among=here)
    removed, note = await service.unfollow(ctx.platform, ctx.chat_id, gid)
    label = service.label(gid)
    if not removed:
        return f"This chat was not following {label}.{note}"
    return f"Left {label}: this chat no longer gets its alerts.{note}"


# ---------------------------------------------------------------- admins


@command("game create", permission=Permission.ADMIN)
async def game_create(
    ctx: Context,
    name: str,
    type: str,
    actions: str | None = None,
    targets: str | None = None,
    *,
    open: bool = False,
) -> str:
    """Create a game; with --open it is opened for betting at once.

    Quote a name with spaces. Example: game create "Argentina - Brazil" football
    Goal,Offside Argentina,Brazil,Argentina:10 --open

    Args:
        name: the game's name, in quotes if it has spaces
        type: the kind of game, e.g. football
        actions: comma list of what can happen, e.g. Goal,Offside ("-" for none)
        targets: comma list of who it happens to, nested with ":", e.g. Argentina,Argentina:10
        open: open it for betting right away
    """
    service = service_of(ctx)
    action_list = _list_arg(actions, "actions")
    target_list = _list_arg(targets, "targets", nested=True)
    client = await service.api()
    if open:
        made = await client.create_and_open_game(
            NewGame(name=name, type=type, actions=action_list, targets=target_list)
        )
        service.remember_game(made)
        return created_game(made)
    made = await client.create_game(NewGame(name=name, type=type))
    service.remember_game(made)
    lines = [created_game(made)]
    if action_list or target_list:
        # An upcoming game takes actions and targets through an update (the doc's way).
        try:
            await service.ensure_admin(made.game_id)
            await client.update_game(made.game_id, action_list, target_list)
        except ServiceError as exc:
            service.admin_call_refused(made.game_id, exc)
            lines.append(
                f"The {_added(action_list, target_list)} were not added: {exc.message} "
                f"Give them when opening: {_prefix(ctx)}game open {made.game_id} "
                "<actions> <targets>."
            )
        else:
            lines.append(f"Added {_added(action_list, target_list)}.")
    lines.append(f"Open it for betting with {_prefix(ctx)}game open {made.game_id}.")
    return "\n".join(lines)


@command("game open", permission=Permission.ADMIN)
async def game_open(
    ctx: Context, game_id: str, actions: str | None = None, targets: str | None = None
) -> str:
    """Open an upcoming game for betting, optionally adding actions and targets.

    Args:
        game_id: the game's id (its first 8 characters are enough)
        actions: comma list of actions to add ("-" for none)
        targets: comma list of targets to add, nested with ":"
    """
    service = service_of(ctx)
    action_list = _list_arg(actions, "actions")
    target_list = _list_arg(targets, "targets", nested=True)
    gid = await service.resolve_id(game_id)
    opened = await (await service.api()).open_game(gid, action_list, target_list)
    service.remember_game(opened)
    lines = [f"Opened {service.label(gid)} for betting."]
    if opened.actions:
        lines.append(f"Actions: {action_names(opened.actions)}")
    if len(opened.targets):
        lines.append(f"Targets: {inline_targets(opened.targets)}")
    return "\n".join(lines)


@command("game update", permission=Permission.ADMIN)
async def game_update(
    ctx: Context, game_id: str, actions: str | None = None, targets: str | None = None
) -> str:
    """Add actions and/or targets to a game; chats following it are told.

    Args:
        game_id: the game's id (its first 8 characters are enough)
        actions: comma list of actions to add ("-" for none)
        targets: comma list of targets to add, nested with ":"
    """
    service = service_of(ctx)
    action_list = _list_arg(actions, "actions")
    target_list = _list_arg(targets, "targets", nested=True)
    if not action_list and not target_list:
        raise UserError(
            "Give actions and/or targets to add, e.g. "
            f"{_prefix(ctx)}game update <id> Corner Brazil:9 (use - to skip the actions)."
        )
    gid = await service.resolve_id(game_id)
    await service.ensure_admin(gid)
    try:
        await (await service.api()).update_game(gid, action_list, target_list)
    except ServiceError as exc:
        service.admin_call_refused(gid, exc)
        raise
    label = await service.best_label(gid)
    return f"Updated {label}: added {_added(action_list, target_list)}."


@command("game admin", permission=Permission.ADMIN)
async def game_admin(ctx: Context, game_id: str) -> str:
    """Make the bot an admin of a game, which updating and closing it need.

    Args:
        game_id: the game's id (its first 8 characters are enough)
    """
    service = service_of(ctx)
    gid = await service.resolve_id(game_id)
    await (await service.api()).become_admin(gid)
    service.admin_of.add(gid)
    label = await service.best_label(gid)
    return f"The bot is now an admin of {label}: it may update and close it."


@command("game close", permission=Permission.ADMIN)
async def game_close(ctx: Context, game_id: str) -> str:
    """Close a game: automatic pools are resolved, manual ones blocked until resolved by hand.

    If pools need resolving by hand, the game stays open: resolve them, then close it again.

    Args:
        game_id: the game's id (its first 8 characters are enough)
    """
    service = service_of(ctx)
    gid = await service.resolve_id(game_id)
    label = await service.describe(gid)
    question = (
        f"Close {label}? Its automatic pools are resolved now and betting in pools that need "
        "resolving by hand is blocked. This cannot be undone."
    )
    if not await ctx.confirm(question):
        raise UserError("Nothing was closed.")
    await service.ensure_admin(gid)
    try:
        result = await (await service.api()).close_game(gid)
    except ServiceError as exc:
        service.admin_call_refused(gid, exc)
        raise
    return close_result(result, label, f"{_prefix(ctx)}game close {gid}")


COMMANDS: list[Command] = [
    games,
    game,
    game_join,
    game_leave,
    game_create,
    game_open,
    game_update,
    game_admin,
    game_close,
]
