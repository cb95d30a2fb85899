"""Rendering the command registry as Discord application commands, and options back.

These are the rules Discord would otherwise enforce with a 400 at registration time (the
end-to-end tests in test_discord.py show the fake accepting what is rendered here).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import pytest

from bot.commands import Command, Permission, Registry, UserRef, command
from bot.errors import UsageError
from bot.transports.discord.commands import (
    STRING,
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
    build_catalog,
    convert_options,
    interaction_path,
    slash_name,
)

Colour = Literal[tuple(f"c{i}" for i in range(30))]  # type: ignore[valid-type]


def registry(*commands: Command) -> Registry:
    reg = Registry()
    for cmd in commands:
        cmd.plugin = "test"
        reg.add(cmd)
    return reg


async def _noop(ctx: object) -> str:
    """Do nothing."""
    return ""


def plain(name: str, **options: object) -> Command:
    return command(name, **options)(_noop)  # type: ignore[arg-type]


def test_groups_nest_three_levels_and_deeper_commands_stay_prefix_only() -> None:
    reg = registry(
        plain("admin points add", permission=Permission.ADMIN),
        plain("admin points", permission=Permission.ADMIN),
        plain("admin ban", permission=Permission.ADMIN),
        plain("a b c d"),
        plain("points"),
        plain("points show"),
        plain("secret", hidden=True),
    )
    catalog = build_catalog(reg.root, admin_permissions=8)
    tops = {c["name"]: c for c in catalog.payload}
    assert set(tops) == {"admin", "points"}  # "a b c d" is too deep, "secret" is hidden
    admin = tops["admin"]
    assert admin["default_member_permissions"] == "8"
    assert [(o["name"], o["type"]) for o in admin["options"]] == [
        ("ban", SUB_COMMAND),
        ("points", SUB_COMMAND_GROUP),
    ]
    group = admin["options"][1]["options"]
    assert [o["name"] for o in group] == ["show", "add"]
    # "points show" exists, so the group's own command takes the next reserved name.
    assert [o["name"] for o in tops["points"]["options"]] == ["run", "show"]
    assert catalog.routes[("admin", "points", "show")].command == "admin points"
    assert catalog.routes[("points", "run")].command == "points"
    assert "a b c d" in catalog.skipped


def test_options_follow_discords_rules() -> None:
    @command(help="Paint something in a colour described at great length. " + "x" * 120)
    async def paint(
        ctx: object,
        colour: Colour,
        who: UserRef,
        amount: Decimal | None = None,
        *,
        gloss: bool = False,
    ) -> str:
        return ""

    catalog = build_catalog(registry(paint).root, admin_permissions=32)
    (entry,) = catalog.payload
    assert len(entry["description"]) == 100 and entry["description"].endswith("…")
    colour = entry["options"][0]
    # 30 choices do not fit Discord's 25: they are offered while typing instead.
    assert colour["type"] == STRING and colour["autocomplete"] is True
    assert "choices" not in colour
    assert [o["required"] for o in entry["options"]] == [True, True, False, False]
    assert all(1 <= len(o["description"]) <= 100 for o in entry["options"])


def test_names_are_made_acceptable_or_skipped() -> None:
    assert slash_name("Points") == "points"
    assert slash_name("top.10") == "top-10"
    assert slash_name("élan") == "élan"
    assert slash_name("!!!") is None
    assert slash_name("x" * 40) == "x" * 32
    catalog = build_catalog(registry(plain("!!!"), plain("ok")).root, admin_permissions=32)
    assert [c["name"] for c in catalog.payload] == ["ok"]


def test_digest_changes_only_with_what_would_be_sent() -> None:
    one = build_catalog(registry(plain("ping")).root, admin_permissions=32)
    same = build_catalog(registry(plain("ping")).root, admin_permissions=32)
    other = build_catalog(registry(plain("ping", help="Other help")).root, admin_permissions=32)
    assert one.digest(1) == same.digest(1)
    assert one.digest(1) != other.digest(1)
    assert one.digest(1) != one.digest(2)  # another application needs its own registration


def test_options_convert_like_typed_text() -> None:
    @command()
    async def pay(ctx: object, who: UserRef, amount: Decimal, *, now: bool = False) -> str:
        """Pay."""
        return ""

    catalog = build_catalog(registry(pay).root, admin_permissions=32)
    path, options = interaction_path(
        {
            "name": "pay",
            "options": [
                {"name": "who", "type": 6, "value": "42"},
                {"name": "amount", "type": 10, "value": 7.0},
                {"name": "now", "type": 5, "value": True},
            ],
        }
    )
    resolved = {"users": {"42": {"username": "bob", "global_name": "Bobby"}}}
    args = convert_options(pay, catalog.routes[path], options, resolved)
    assert args == {"who": UserRef("discord", "42", "Bobby"), "amount": Decimal("7"), "now": True}
    _, options = interaction_path({"name": "pay", "options": [{"name": "amount", "value": 0.1}]})
    assert convert_options(pay, catalog.routes[path], options, {})["amount"] == Decimal("0.1")

    with pytest.raises(UsageError, match="no option 'tip'"):
        convert_options(pay, catalog.routes[path], [{"name": "tip", "value": 1}], {})
    with pytest.raises(UsageError, match="not a Discord user"):
        convert_options(pay, catalog.routes[path], [{"name": "who", "value": "@bob"}], [])  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="must be a number"):
        convert_options(pay, catalog.routes[path], [{"name": "amount", "value": "lots"}], {})


def test_subcommand_paths_are_read_from_nested_options() -> None:
    path, options = interaction_path(
        {
            "name": "admin",
            "options": [
                {
                    "name": "points",
                    "type": 2,
                    "options": [{"name": "add", "type": 1, "options": [{"name": "n", "value": 3}]}],
                }
            ],
        }
    )
    assert path == ("admin", "points", "add") and options == [{"name": "n", "value": 3}]
    assert interaction_path({"name": "x", "options": "junk"}) == (("x",), [])
