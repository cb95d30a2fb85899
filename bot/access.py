"""Who is calling, and may they: owners and admins from the config, and the per-chat switches
admins set (``!plugins disable NAME here``).

Every way in asks here (text commands, slash commands and their autocomplete, help listings,
alert delivery), so no entry point carries its own copy of a rule. A :class:`Caller` is
worked out once per message; :meth:`Access.check` refuses a command the caller may not run
in that chat, with the message the user sees; :meth:`Access.shows` says whether help lists it.
The link a ``linked`` command needs is checked by the dispatcher after this (it needs the
store's link for the caller, see :mod:`bot.links`).

The switches are few and read on every command, so they are kept in memory. In a cluster
every worker writes them, and a command turned off in a chat on one worker must be off on
all: there each use first compares the store's change stamp (see :meth:`Store.stamp`) and,
when some row changed, the switches' version row, and reloads on a new version.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from .commands import Command, Permission
from .errors import PermissionDenied, UserError
from .plugin_loading import CORE_PLUGIN

if TYPE_CHECKING:
    from .config import Settings
    from .messages import Message
    from .store import Store

#: the meta row that every change of the switches bumps, in the same transaction
_VERSION_KEY = "chat_controls_version"


class Caller(NamedTuple):
    """The person behind a message, and what the config (or the chat) makes them.

    A named tuple: immutable like a frozen dataclass at a third of its construction cost,
    and one is built for every command.
    """

    platform: str
    user_id: str
    is_owner: bool = False
    is_admin: bool = False

    @property
    def role(self) -> str:
        return "owner" if self.is_owner else "admin" if self.is_admin else "user"


class Access:
    """Owner and admin ids per platform, and the per-chat switches of plugins and commands."""

    def __init__(self, settings: Settings, store: Store, *, shared: bool = False) -> None:
        b = settings.bot
        platforms = ("discord", "telegram", "console")
        self._owners = {p: frozenset(b.owners.get(p)) for p in platforms}
        self._admins = {p: frozenset(b.admins.get(p)) | self._owners[p] for p in platforms}
        console = settings.transports.console
        if console.admin:
            self._admins["console"] |= {console.user_id}
        self.store = store
        #: other processes write the switches too (a cluster): check for their changes
        self.shared = shared
        self._controls: dict[tuple[str, str, str, str], bool] = {}
        self._version: str | None = None
        self._stamp: tuple[int, int] | None = None

    # ------------------------------------------------------------------ who

    def caller(self, platform: str, user_id: str, platform_admin: bool = False) -> Caller:
        """``platform_admin``: the platform vouches for admin rights (a Telegram group's
        administrators, when ``chat_admins_are_admins`` is on)."""
        owners = self._owners.get(platform)
        is_owner = owners is not None and user_id in owners
        admins = self._admins.get(platform)
        is_admin = is_owner or platform_admin or (admins is not None and user_id in admins)
        return Caller(platform, user_id, is_owner, is_admin)

    def caller_of(self, message: Message) -> Caller:
        return self.caller(message.platform, message.user_id, message.platform_admin)

    # ------------------------------------------------------------------ may they

    def check(self, caller: Caller, cmd: Command, chat_id: str) -> None:
        """Raise the refusal a user sees if ``caller`` may not run ``cmd`` in ``chat_id``."""
        if not self.chat_allows(caller.platform, chat_id, cmd.plugin, cmd.name):
            raise UserError(f"{cmd.name} is turned off in this chat.")
        if cmd.permission >= Permission.OWNER and not caller.is_owner:
            raise PermissionDenied("Only the bot's owners can use this command.")
        if cmd.permission >= Permission.ADMIN and not caller.is_admin:
            raise PermissionDenied("This command is for admins only.")

    def shows(self, caller: Caller, cmd: Command, chat_id: str | None = None) -> bool:
        """Listed for ``caller``: what they may run, less the everyday commands switched off
        in ``chat_id`` (an admin still sees admin commands, to switch them back on)."""
        if not cmd.visible_to(is_owner=caller.is_owner, is_admin=caller.is_admin):
            return False
        return (
            chat_id is None
            or cmd.permission >= Permission.ADMIN
            or self.chat_allows(caller.platform, chat_id, cmd.plugin, cmd.name)
        )

    # ------------------------------------------------------------------ per-chat switches

    @property
    def any_chat_controls(self) -> bool:
        """Some chat has a switch set; with none (the usual case) every check says yes, and
        a fan-out to thousands of chats can skip asking."""
        if self.shared:
            self._fresh()
        return bool(self._controls)

    def chat_allows(self, platform: str, chat_id: str, plugin: str, command: str | None) -> bool:
        """False if an admin turned this plugin or command off in this chat."""
        if self.shared:
            self._fresh()
        controls = self._controls
        if not controls or plugin == CORE_PLUGIN:
            return True
        key = (platform, str(chat_id), plugin)
        if not controls.get((*key, ""), True):
            return False
        return command is None or controls.get((*key, command), True)

    def set_chat_control(
        self, platform: str, chat_id: str, plugin: str, command: str, enabled: bool
    ) -> None:
        """Switch ``plugin`` (``command`` empty) or one of its commands on or off in a chat."""
        store = self.store
        with store.transaction() as conn:
            conn.execute(
                "insert into chat_controls (platform, chat_id, plugin, command, enabled, updated)"
                " values (?, ?, ?, ?, ?, ?) on conflict (platform, chat_id, plugin, command)"
                " do update set enabled = excluded.enabled, updated = excluded.updated",
                (platform, str(chat_id), plugin, command, int(enabled), time.time()),
            )
            store.set_meta(_VERSION_KEY, str(int(store.get_meta(_VERSION_KEY) or 0) + 1))
        self.load()

    def load(self) -> None:
        """(Re)read the switches from the store."""
        store = self.store
        self._stamp = store.stamp()
        self._version = store.get_meta(_VERSION_KEY)
        self._controls = {
            (r["platform"], r["chat_id"], r["plugin"], r["command"]): bool(r["enabled"])
            for r in store.db["chat_controls"].rows
        }

    def _fresh(self) -> None:
        stamp = self.store.stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        if self.store.get_meta(_VERSION_KEY) != self._version:
            self.load()
