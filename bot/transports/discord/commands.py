"""The bot's commands as Discord application commands, and slash options back into arguments.

A command is declared once (``bot.commands``); this module renders the registry's tree of
words as Discord's three levels: ``/top``, ``/top sub`` and ``/top group sub``. Discord's rules
shape the mapping, so they are enforced here rather than discovered as a 400 at sync time:

- names are 1-32 lower-case word characters or ``-``; descriptions 1-100 characters;
- at most 100 top-level commands, 25 subcommands per level, 25 options, 25 choices;
- required options come before optional ones;
- a command with subcommands cannot itself be invoked, so a group that is also a command
  (``points [user]`` beside ``points add``) gets its own command as the subcommand ``show``
  (``/points show [user]``; ``run`` or ``default`` if a real subcommand is called ``show``);
- visibility (``default_member_permissions``) exists only on top-level commands, so a top-level
  command is hidden from non-admins only when *every* command under it is admin-only; mixed
  groups stay visible and the dispatcher refuses their admin subcommands at run time;
- commands nested deeper than three words, hidden commands and aliases stay prefix-only.

The rendered payload is deterministic (sorted), so its hash says exactly when a re-sync is due.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ...commands import Command, Node, Param, Permission, UserRef, convert
from ...errors import UsageError

log = logging.getLogger(__name__)

# Application command option types (Discord API v10).
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, NUMBER = 3, 4, 5, 6, 10
CHAT_INPUT = 1

MAX_TOP_LEVEL = 100
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_NAME = 32
MAX_DESCRIPTION = 100
#: Discord's integers are JSON numbers; beyond 2**53 they lose precision in every client
MAX_SAFE_INTEGER = 2**53
#: names tried, in order, for the subcommand that runs a group's own command
GROUP_SELF_NAMES = ("show", "run", "default", "this")

_NAME_OK = re.compile(r"^[-_\w]{1,32}$")
_NAME_BAD_CHARS = re.compile(r"[^-_\w]+")

Path = tuple[str, ...]


def slash_name(word: str) -> str | None:
    """A command word or parameter name as Discord accepts it, or None if nothing is left."""
    name = _NAME_BAD_CHARS.sub("-", word.strip().lower()).strip("-")[:MAX_NAME]
    return name if name and _NAME_OK.match(name) else None


def _description(text: str, fallback: str) -> str:
    text = " ".join((text or "").split()) or fallback
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - 1].rstrip() + "…"
    return text


@dataclass(frozen=True)
class SlashRoute:
    """Where a slash path leads: the command's name and Discord option name -> parameter."""

    command: str
    options: Mapping[str, str]


@dataclass
class SlashCatalog:
    """The rendered commands plus what is needed to turn an interaction back into a call."""

    payload: list[dict[str, Any]] = field(default_factory=list)
    routes: dict[Path, SlashRoute] = field(default_factory=dict)
    #: commands that exist only as prefix commands, with the reason (shown in logs)
    skipped: dict[str, str] = field(default_factory=dict)

    def digest(self, application_id: int | str) -> str:
        """A hash of exactly what would be sent, tied to the application it is registered for."""
        blob = json.dumps(
            {"application_id": str(application_id), "commands": self.payload},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode()).hexdigest()


def _option_for(p: Param, name: str) -> dict[str, Any]:
    opt: dict[str, Any] = {
        "type": STRING,
        "name": name,
        "description": _description(p.description, p.type_name),
        "required": bool(p.required),
    }
    if p.choices:
        if len(p.choices) <= MAX_CHOICES and all(len(c) <= 100 for c in p.choices):
            opt["choices"] = [{"name": c, "value": c} for c in p.choices]
        else:
            # Too many for Discord's list: offer them while typing instead.
            opt["autocomplete"] = True
        return opt
    if p.kind is bool:
        opt["type"] = BOOLEAN
    elif p.kind is int:
        opt.update(type=INTEGER, min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    elif p.kind in (float, Decimal):
        opt["type"] = NUMBER
    elif p.kind is UserRef:
        opt["type"] = USER
    if p.autocomplete is not None and opt["type"] in (STRING, INTEGER, NUMBER):
        opt["autocomplete"] = True
    return opt


def _options_for(cmd: Command) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Options in Discord's order (required first) and the option name -> parameter map."""
    options: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for p in sorted(cmd.params, key=lambda p: not p.required):
        name = slash_name(p.name)
        if name is None or name in names:
            raise ValueError(f"argument {p.name!r} has no usable Discord option name")
        names[name] = p.name
        options.append(_option_for(p, name))
    if len(options) > MAX_OPTIONS:
        raise ValueError(f"it has {len(options)} arguments; Discord allows {MAX_OPTIONS}")
    return options, names


def _visible(cmd: Command | None) -> bool:
    return cmd is not None and not cmd.hidden


def _commands_under(node: Node) -> Iterable[Command]:
    if _visible(node.command):
        assert node.command is not None
        yield node.command
    for child in node.children.values():
        yield from _commands_under(child)


class _Builder:
    def __init__(self, admin_permissions: int) -> None:
        self.admin_permissions = admin_permissions
        self.catalog = SlashCatalog()

    def skip(self, cmd: Command, reason: str) -> None:
        self.catalog.skipped[cmd.name] = reason

    def leaf(self, cmd: Command, path: Path, kind: int) -> dict[str, Any] | None:
        """A command (top level) or subcommand carrying ``cmd``'s options; None if impossible."""
        try:
            options, names = _options_for(cmd)
        except ValueError as exc:
            self.skip(cmd, str(exc))
            return None
        self.catalog.routes[path] = SlashRoute(cmd.name, names)
        entry: dict[str, Any] = {
            "type": kind,
            "name": path[-1],
            "description": _description(cmd.help, cmd.name),
        }
        if options or kind == CHAT_INPUT:
            entry["options"] = options
        return entry

    def children(self, node: Node, path: Path, depth: int) -> list[dict[str, Any]]:
        """Subcommands (and at depth 2, subcommand groups) of ``node``, sorted by name."""
        entries: dict[str, dict[str, Any]] = {}
        for word in sorted(node.children):
            child = node.children[word]
            if not any(True for _ in _commands_under(child)):
                continue
            name = slash_name(word)
            if name is None or name in entries:
                for cmd in _commands_under(child):
                    self.skip(cmd, f"the word {word!r} has no usable Discord name")
                continue
            sub_path = (*path, name)
            real_children = [c for c in child.children.values() if any(_commands_under(c))]
            if real_children and depth < 2:
                group_options = self.children(child, sub_path, depth + 1)
                if _visible(child.command):
                    assert child.command is not None
                    self.add_self(child.command, sub_path, group_options, SUB_COMMAND)
                group_options = self.fit(sub_path, group_options)
                if group_options:
                    entries[name] = {
                        "type": SUB_COMMAND_GROUP,
                        "name": name,
                        "description": _description(
                            child.command.help if child.command else "", f"{word} commands"
                        ),
                        "options": group_options,
                    }
                continue
            if real_children:
                for c in real_children:
                    for cmd in _commands_under(c):
                        self.skip(cmd, "Discord allows at most three words in a slash command")
            if _visible(child.command):
                assert child.command is not None
                entry = self.leaf(child.command, sub_path, SUB_COMMAND)
                if entry is not None:
                    entries[name] = entry
        return list(entries.values())

    def fit(self, path: Path, options: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep the first 25 subcommands under ``path``; the rest stay prefix-only."""
        for extra in options[MAX_OPTIONS:]:
            self.drop((*path, extra["name"]), f"more than {MAX_OPTIONS} subcommands")
        return options[:MAX_OPTIONS]

    def drop(self, prefix: Path, reason: str) -> None:
        """Forget the routes under ``prefix`` (it did not fit) and say why in the log."""
        for p in [p for p in self.catalog.routes if p[: len(prefix)] == prefix]:
            self.catalog.skipped[self.catalog.routes.pop(p).command] = reason

    def add_self(self, cmd: Command, path: Path, siblings: list[dict[str, Any]], kind: int) -> None:
        """Give a group's own command a subcommand name no real subcommand uses."""
        taken = {s["name"] for s in siblings}
        name = next((n for n in GROUP_SELF_NAMES if n not in taken), None)
        if name is None:
            self.skip(cmd, "its group already uses every name reserved for it")
            return
        entry = self.leaf(cmd, (*path, name), kind)
        if entry is not None:
            siblings.insert(0, entry)

    def top(self, word: str, name: str, node: Node) -> dict[str, Any] | None:
        real_children = [c for c in node.children.values() if any(_commands_under(c))]
        if real_children:
            options = self.children(node, (name,), 1)
            if _visible(node.command):
                assert node.command is not None
                self.add_self(node.command, (name,), options, SUB_COMMAND)
            options = self.fit((name,), options)
            if not options:
                return None
            entry: dict[str, Any] = {
                "type": CHAT_INPUT,
                "name": name,
                "description": _description(
                    node.command.help if node.command else "", f"{word} commands"
                ),
                "options": options,
            }
        else:
            assert node.command is not None
            leaf = self.leaf(node.command, (name,), CHAT_INPUT)
            if leaf is None:
                return None
            entry = leaf
        admin_only = all(c.permission >= Permission.ADMIN for c in _commands_under(node))
        entry["default_member_permissions"] = str(self.admin_permissions) if admin_only else None
        return entry


def build_catalog(root: Node, *, admin_permissions: int) -> SlashCatalog:
    """Render the registry's tree (``bot.registry.root``) as Discord application commands."""
    builder = _Builder(admin_permissions)
    tops: dict[str, dict[str, Any]] = {}
    for word in sorted(root.children):
        node = root.children[word]
        commands = list(_commands_under(node))
        name = slash_name(word)
        if not commands:
            continue
        if name is None or name in tops:
            for cmd in commands:
                builder.skip(cmd, f"the word {word!r} has no free Discord name")
            continue
        entry = builder.top(word, name, node)
        if entry is not None:
            tops[name] = entry
    payload = list(tops.values())
    for extra in payload[MAX_TOP_LEVEL:]:
        builder.drop((extra["name"],), f"Discord allows {MAX_TOP_LEVEL} top-level commands")
    payload = payload[:MAX_TOP_LEVEL]
    builder.catalog.payload = payload
    for name, reason in builder.catalog.skipped.items():
        log.warning("command %s is not a Discord slash command: %s", name, reason)
    return builder.catalog


# --------------------------------------------------------------------------- invocation


def interaction_path(data: Mapping[str, Any]) -> tuple[Path, list[dict[str, Any]]]:
    """The slash path (``("points", "add")``) and the leaf's options from interaction data."""
    path: list[str] = [str(data.get("name", ""))]
    options = data.get("options") or []
    while (
        isinstance(options, list)
        and len(options) == 1
        and isinstance(options[0], dict)
        and options[0].get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)
    ):
        path.append(str(options[0].get("name", "")))
        options = options[0].get("options") or []
    leaf = [o for o in options if isinstance(o, dict)] if isinstance(options, list) else []
    return tuple(path), leaf


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _user_ref(value: Any, resolved: Mapping[str, Any]) -> UserRef:
    uid = str(value)
    if not uid.isdigit():
        raise UsageError(f"{uid!r} is not a Discord user")
    member = _dict(_dict(resolved.get("members")).get(uid))
    user = _dict(_dict(resolved.get("users")).get(uid)) or _dict(member.get("user"))
    name = member.get("nick") or user.get("global_name") or user.get("username") or uid
    return UserRef("discord", uid, str(name))


def convert_options(
    cmd: Command,
    route: SlashRoute,
    options: list[dict[str, Any]],
    resolved: Mapping[str, Any],
) -> dict[str, Any]:
    """Typed arguments for ``cmd`` from a slash command's options.

    Values go through the same converter as typed text, so a choice, a number or a yes/no
    means the same whichever way it was entered, and anything odd the API sends (a number as
    a string, an unknown option) gets the same plain UsageError.
    """
    params = {p.name: p for p in cmd.params}
    resolved = _dict(resolved)
    kwargs: dict[str, Any] = {}
    for opt in options:
        pname = route.options.get(str(opt.get("name", "")))
        param = params.get(pname or "")
        if param is None:
            raise UsageError(f"this command has no option {opt.get('name')!r}")
        value = opt.get("value")
        if value is None:
            continue
        if param.kind is UserRef and not param.choices:
            kwargs[param.name] = _user_ref(value, resolved)
        elif param.kind is bool and isinstance(value, bool):
            kwargs[param.name] = value
        elif param.greedy or (param.kind is str and not param.choices):
            kwargs[param.name] = str(value)
        else:
            raw = str(value)
            if isinstance(value, float) and value.is_integer() and abs(value) < MAX_SAFE_INTEGER:
                raw = str(int(value))  # JSON says 7.0 for a typed 7; show it as typed
            kwargs[param.name] = convert(param, raw, platform="discord")
    return kwargs


def focused_option(options: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((o for o in options if o.get("focused")), None)
