"""Keeping Telegram's command menus in step with the running commands, cheaply.

``setMyCommands`` is a network call per scope (one per admin), rate limited like any other, so
it is made only when a scope's menu differs from what this bot last set. The digests live in
the database (``meta``), keyed by the bot's id, so restarts cost nothing and a new token (a
different bot) starts fresh. A scope Telegram refuses (an admin who never opened a chat with
the bot: "chat not found") is not retried on every check, only when the menu changes again
or when :meth:`MenuSync.retry` is called (the admin wrote to the bot).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeChat,
    BotCommandScopeDefault,
)
from telegram.error import BadRequest, Forbidden

from ...store import Store
from .commands import MenuEntry, menu_digest

log = logging.getLogger(__name__)

SetCommands = Callable[[list[BotCommand], BotCommandScope], Awaitable[object]]
DeleteCommands = Callable[[BotCommandScope], Awaitable[object]]


def scope_for(key: str) -> BotCommandScope:
    """The Bot API scope a key of :func:`~.commands.wanted_menus` names."""
    if key == "default":
        return BotCommandScopeDefault()
    if key == "all_chat_administrators":
        return BotCommandScopeAllChatAdministrators()
    kind, _, chat_id = key.partition(":")
    if kind == "chat" and chat_id.lstrip("-").isdigit():
        return BotCommandScopeChat(int(chat_id))
    raise ValueError(f"unknown menu scope {key!r}")


class MenuSync:
    """Sets and deletes menus per scope, remembering what was set in the store."""

    def __init__(
        self, store: Store, bot_id: int, set_commands: SetCommands, delete_commands: DeleteCommands
    ) -> None:
        self.store = store
        self.meta_key = f"telegram.menus.{bot_id}"
        self._set = set_commands
        self._delete = delete_commands
        #: scope -> digest Telegram refused; skipped until the menu changes or retry()
        self.refused: dict[str, str] = {}
        self.calls = 0

    def stored(self) -> dict[str, str]:
        raw = self.store.get_meta(self.meta_key)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _save(self, digests: dict[str, str]) -> None:
        self.store.set_meta(self.meta_key, json.dumps(digests, sort_keys=True))

    def retry(self, scope: str) -> bool:
        """Forget that Telegram refused ``scope``; True if it had."""
        return self.refused.pop(scope, None) is not None

    async def sync(self, menus: dict[str, list[MenuEntry]]) -> list[str]:
        """Bring every scope up to date; returns the scopes changed. Network errors propagate."""
        digests = self.stored()
        changed: list[str] = []
        for scope, entries in menus.items():
            digest = menu_digest(entries)
            if digests.get(scope) == digest or self.refused.get(scope) == digest:
                continue
            commands = [BotCommand(e.command, e.description) for e in entries]
            try:
                self.calls += 1
                if commands:
                    await self._set(commands, scope_for(scope))
                else:
                    await self._delete(scope_for(scope))
            except (BadRequest, Forbidden) as exc:
                # An admin who never started the bot: Telegram has no chat to attach it to.
                log.warning("telegram: the command menu for %s was refused: %s", scope, exc)
                self.refused[scope] = digest
                continue
            self.refused.pop(scope, None)
            digests[scope] = digest
            self._save(digests)
            changed.append(scope)
        for scope in [s for s in digests if s not in menus]:
            try:
                self.calls += 1
                await self._delete(scope_for(scope))
            except (BadRequest, Forbidden) as exc:
                log.warning("telegram: could not remove the command menu of %s: %s", scope, exc)
            except ValueError:
                pass
            del digests[scope]
            self._save(digests)
            changed.append(scope)
        return changed
