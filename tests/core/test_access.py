"""Who is calling, and may they (bot/access.py): callers from the config and the platform,
the refusals users see, what help lists, and per-chat switches kept fresh across the
processes of a cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.access import Access, Caller
from bot.commands import Command, Permission, command
from bot.config import Settings
from bot.errors import PermissionDenied, UserError
from bot.store import KEY_ENV, Store
from bot_migrations.core import migrations as core


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def settings(console_admin: bool = True) -> Settings:
    return Settings.model_validate(
        {
            "bot": {
                "owners": {"discord": ["1"]},
                "admins": {"discord": ["2"], "telegram": ["3"]},
            },
            "transports": {"console": {"admin": console_admin}},
        }
    )


def cmd(name: str, permission: Permission = Permission.EVERYONE) -> Command:
    async def handler(ctx: object) -> str:
        return "ok"

    made = command(name, permission=permission)(handler)
    made.plugin = "greeter"
    return made


@pytest.fixture
def path(tmp_path: Path) -> Path:
    Store(tmp_path / "bot.db").migrate([core])
    return tmp_path / "bot.db"


@pytest.fixture
def access(path: Path) -> Iterator[Access]:
    store = Store(path)
    a = Access(settings(), store)
    a.load()
    yield a
    store.close()


def test_owners_are_admins_and_the_platform_can_vouch_for_an_admin(access: Access) -> None:
    assert access.caller("discord", "1") == Caller("discord", "1", True, True)
    assert access.caller("discord", "2") == Caller("discord", "2", False, True)
    assert access.caller("telegram", "2") == Caller("telegram", "2", False, False)
    assert access.caller("telegram", "9", platform_admin=True).is_admin
    assert access.caller("matrix", "1") == Caller("matrix", "1", False, False)
    assert [access.caller("discord", u).role for u in ("1", "2", "5")] == ["owner", "admin", "user"]


def test_the_console_user_is_an_admin_unless_the_config_says_otherwise(path: Path) -> None:
    store = Store(path)
    try:
        assert Access(settings(), store).caller("console", "console").is_admin
        assert not Access(settings(console_admin=False), store).caller("console", "console").is_admin
    finally:
        store.close()


def test_refusals_say_why(access: Access) -> None:
    user, admin = access.caller("discord", "5"), access.caller("discord", "2")
    with pytest.raises(PermissionDenied, match="for admins only"):
        access.check(user, cmd("ban", Permission.ADMIN), "c1")
    with pytest.raises(PermissionDenied, match="bot's owners"):
        access.check(admin, cmd("shutdown", Permission.OWNER), "c1")
    access.check(admin, cmd("ban", Permission.ADMIN), "c1")
    access.set_chat_control("discord", "c1", "greeter", "greet", False)
    with pytest.raises(UserError, match="greet is turned off in this chat"):
        access.check(admin, cmd("greet"), "c1")
    access.check(admin, cmd("greet"), "c2")


def test_help_lists_what_the_caller_may_run_less_what_is_off_in_the_chat(access: Access) -> None:
    user, admin = access.caller("discord", "5"), access.caller("discord", "2")
    greet, ban = cmd("greet"), cmd("ban", Permission.ADMIN)
    access.set_chat_control("discord", "c1", "greeter", "", False)
    assert not access.shows(user, ban)
    assert access.shows(user, greet) and not access.shows(user, greet, "c1")
    # an admin still sees the admin commands there, to switch things back on
    assert access.shows(admin, ban, "c1") and not access.shows(admin, greet, "c1")


def test_a_core_command_cannot_be_switched_off(access: Access) -> None:
    help_ = cmd("help")
    help_.plugin = "core"
    access.set_chat_control("discord", "c1", "core", "", False)
    access.check(access.caller("discord", "5"), help_, "c1")


@pytest.fixture
def two_processes(path: Path) -> Iterator[tuple[Access, Access]]:
    """Two workers of a cluster: each its own connection to the one database."""
    stores = [Store(path), Store(path)]
    pair = tuple(Access(settings(), store, shared=True) for store in stores)
    for access in pair:
        access.load()
    yield pair  # type: ignore[misc]
    for store in stores:
        store.close()


def test_in_a_cluster_a_switch_another_process_set_is_seen(
    two_processes: tuple[Access, Access],
) -> None:
    here, there = two_processes
    assert here.chat_allows("discord", "c1", "greeter", "greet")
    there.set_chat_control("discord", "c1", "greeter", "greet", False)
    assert not here.chat_allows("discord", "c1", "greeter", "greet")
    assert here.any_chat_controls
    there.set_chat_control("discord", "c1", "greeter", "greet", True)
    assert here.chat_allows("discord", "c1", "greeter", "greet")


async def test_in_a_running_loop_the_switch_is_seen_once_the_loop_turns(
    two_processes: tuple[Access, Access],
) -> None:
    """As with links (bot/store.py): another process's commit reaches this one through
    something the loop polls, so the check after the turn sees it."""
    here, there = two_processes
    assert here.chat_allows("discord", "c1", "greeter", None)
    there.set_chat_control("discord", "c1", "greeter", "", False)
    await asyncio.sleep(0)
    assert not here.chat_allows("discord", "c1", "greeter", None)
    # a write that is not a switch (an audit row) is seen as a change, and changes nothing
    there.store.audit("discord", "2", "ban", {}, "ok")
    await asyncio.sleep(0)
    assert not here.chat_allows("discord", "c1", "greeter", None)
