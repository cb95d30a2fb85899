"""How the bot's commands map onto Telegram commands, in both directions.

Telegram commands are one word of ``[a-z0-9_]{1,32}`` and the menu holds at most 100 of them,
while our commands may have several words (``points add``) and any lower-case word. So:

- A command's **first word** is its Telegram command: ``points add bob 5`` is typed
  ``/points add bob 5``, and the menu lists ``/points`` once for the whole group (its
  description names the subcommands). Characters Telegram does not allow become ``_``
  (``pos-alerts`` -> ``/pos_alerts``, accents dropped: ``ünïcode`` -> ``/unicode``); a word
  with no usable character (``очки``) is left out of the menu but still works with the text
  prefix (``!``).
- ``/points_add bob 5`` also works (underscores tried as spaces when no command has that
  name), because Telegram clients turn a tapped ``/points_add`` into one word.
- ``/cmd@botname`` is ours only when ``botname`` is this bot; in groups an unknown ``/cmd``
  without ``@botname`` is ignored, since it is probably meant for another bot there.
- Arguments are the text after the command, parsed by the same rules as the console (quotes,
  ``--flags``, greedy rest).
- The menu for everyone lists commands of permission EVERYONE and LINKED; admins' menus add
  ADMIN commands and owners' menus OWNER ones (Telegram shows a chat the menu of its most
  specific scope, so those menus repeat the everyday commands).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass

from ...commands import Command, Node, Permission, Registry

#: Telegram's rules for a command in the menu
NAME_PATTERN = re.compile(r"[a-z0-9_]{1,32}")
MAX_COMMANDS = 100
MAX_DESCRIPTION = 256

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)(.*)$", re.DOTALL)


def telegram_name(word: str) -> str | None:
    """The Telegram command for a first word, or None if nothing usable is left of it."""
    ascii_word = unicodedata.normalize("NFKD", word.lower()).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9_]", "_", ascii_word)[:32]
    return name if name.strip("_") else None


@dataclass(frozen=True)
class SlashCommand:
    """A ``/name@target rest`` message, split; ``target`` is None without ``@``."""

    name: str
    target: str | None
    rest: str


def parse_slash(text: str) -> SlashCommand | None:
    m = _COMMAND.match(text)
    if m is None:
        return None
    rest = m.group(3)
    if rest[:1] in (" ", "\t"):
        rest = rest[1:]
    return SlashCommand(m.group(1).lower(), m.group(2), rest)


def command_body(registry: Registry, name: str, rest: str) -> str | None:
    """The prefix-less command text (``points add bob 5``) a Telegram command stands for.

    None if no command or group starts with ``name``.
    """
    root = registry.root
    word = _root_word(root, name)
    if word is None and "_" in name:
        spaced = " ".join(w for w in name.split("_") if w)
        cmd, _, matched = registry.resolve(spaced)
        if cmd is not None or matched:
            word = spaced
    if word is None:
        return None
    return f"{word} {rest}" if rest else word


def _root_word(root: Node, name: str) -> str | None:
    if root.child(name) is not None:
        return name
    for word in root.children:
        if telegram_name(word) == name:
            return word
    for alias in root.aliases:
        if telegram_name(alias) == name:
            return alias
    return None


# --------------------------------------------------------------------------- the menu


@dataclass(frozen=True)
class MenuEntry:
    command: str
    description: str


def _subtree(node: Node) -> list[Command]:
    found: list[Command] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.command is not None:
            found.append(n.command)
        stack.extend(n.children.values())
    return found


def _clip(text: str) -> str:
    text = " ".join(text.split()) or "-"
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def _describe(node: Node, visible: list[Command]) -> str:
    own = node.command if node.command in visible else None
    subs = sorted(" ".join(c.path[1:]) for c in visible if c is not own)
    if own is not None:
        return _clip(own.help + (f" (also: {', '.join(subs)})" if subs else ""))
    if len(visible) == 1:
        return _clip(f"{subs[0]}: {visible[0].help}")
    return _clip("Subcommands: " + ", ".join(subs))


def build_menu(registry: Registry, level: Permission) -> list[MenuEntry]:
    """The menu for users allowed up to ``level``: one entry per first word, sorted."""
    entries: list[MenuEntry] = []
    taken: set[str] = set()
    for word in sorted(registry.root.children):
        node = registry.root.children[word]
        name = telegram_name(word)
        if name is None or name in taken:
            continue
        visible = [c for c in _subtree(node) if not c.hidden and c.permission <= level]
        if not visible:
            continue
        taken.add(name)
        entries.append(MenuEntry(name, _describe(node, visible)))
    return entries[:MAX_COMMANDS]


def menu_digest(entries: list[MenuEntry]) -> str:
    data = [[e.command, e.description] for e in entries]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


def wanted_menus(
    registry: Registry,
    *,
    admins: list[str],
    owners: list[str],
    chat_admins: bool,
) -> dict[str, list[MenuEntry]]:
    """Scope key -> menu: ``default``, ``chat:<id>`` per admin/owner, ``all_chat_administrators``.

    A scope whose menu would equal the everyday one is left out: it would only cost calls.
    Ids that are not numbers cannot be Telegram chats and are skipped.
    """
    everyday = build_menu(registry, Permission.LINKED)
    menus: dict[str, list[MenuEntry]] = {"default": everyday}
    admin_menu = build_menu(registry, Permission.ADMIN)
    owner_menu = build_menu(registry, Permission.OWNER)
    if chat_admins and admin_menu != everyday:
        menus["all_chat_administrators"] = admin_menu
    for uid in admins:
        if uid.lstrip("-").isdigit() and admin_menu != everyday:
            menus[f"chat:{int(uid)}"] = admin_menu
    for uid in owners:
        if uid.lstrip("-").isdigit() and owner_menu != everyday:
            menus[f"chat:{int(uid)}"] = owner_menu
    return menus
