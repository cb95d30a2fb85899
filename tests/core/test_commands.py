"""Commands declared once: signature -> arguments, parsing, conversion, the command tree."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Literal

import pytest

from bot.commands import Permission, Registry, Rest, UserRef, command, split_args
from bot.errors import UsageError


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@command("points add", aliases=("plus",), permission=Permission.ADMIN)
async def points_add(
    ctx: object,
    user: str,
    n: Decimal,
    kind: Literal["bonus", "fine"] = "bonus",
    *,
    force: bool = False,
    note: Rest | None = None,
) -> str:
    """Add points to a viewer.

    Only admins may do this.

    Args:
        user: who gets them
        n: how many points,
           at least one
    """
    return ""


@command()
async def paint(ctx: object, colour: Colour, times: int = 1, loud: bool | None = None) -> None:
    """Paint."""


@command("greet")
async def greet(ctx: object, who: UserRef) -> None:
    """Greet someone."""


def test_signature_gives_help_and_arguments() -> None:
    assert points_add.name == "points add"
    assert points_add.help == "Add points to a viewer."
    assert points_add.description == "Only admins may do this."
    by_name = {p.name: p for p in points_add.params}
    assert by_name["user"].description == "who gets them"
    assert by_name["n"].description == "how many points, at least one"
    assert by_name["n"].required and not by_name["kind"].required
    assert by_name["kind"].choices == ("bonus", "fine")
    assert by_name["force"].flag and by_name["note"].greedy
    assert points_add.usage() == "!points add <user> <n> [bonus|fine] [--force] [note...]"


def test_quotes_group_words_and_apostrophes_are_tolerated() -> None:
    assert split_args('"bob smith" 5') == ["bob smith", "5"]
    assert split_args("Bob's 5") == ["Bob's", "5"]
    args = points_add.parse("'bob smith' 12,5 fine --force for the win")
    assert args == {
        "user": "bob smith",
        "n": Decimal("12.5"),
        "kind": "fine",
        "force": True,
        "note": "for the win",
    }


def test_conversion_of_each_type() -> None:
    assert paint.parse("RED 3 yes") == {"colour": Colour.RED, "times": 3, "loud": True}
    assert paint.parse("blue") == {"colour": Colour.BLUE, "times": 1, "loud": None}
    ref = greet.parse("<@123>", platform="discord")["who"]
    assert ref == UserRef("discord", "123", "<@123>")
    mentioned = UserRef("telegram", "42", "@ann")
    assert greet.parse("@ann", mentions={"@ann": mentioned})["who"] is mentioned


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bob x", "<n> must be a number, not 'x'"),
        ("bob nan", "<n> must be a number, not 'nan'"),
        ("bob inf", "<n> must be a number, not 'inf'"),
        ("bob 1,2,3", "<n> must be written without thousands separators"),
        ("bob 5 penalty", "<kind> must be one of bonus, fine, not 'penalty'"),
        ("bob", "missing <n>"),
    ],
)
def test_bad_input_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        points_add.parse(text)
    assert message in info.value.message


def test_whole_numbers_and_booleans_are_checked() -> None:
    with pytest.raises(UsageError, match=r"whole number, not '2\.5'"):
        paint.parse("red 2.5")
    with pytest.raises(UsageError, match="yes or no"):
        paint.parse("red 2 maybe")
    with pytest.raises(UsageError, match="too many arguments"):
        paint.parse("red 2 yes extra")


def test_registry_groups_aliases_and_longest_match() -> None:
    @command("points")
    async def points(ctx: object, user: str | None = None) -> None:
        """Show points."""

    reg = Registry()
    reg.add(points)
    reg.add(points_add)
    cmd, rest, _ = reg.resolve("points add bob 3")
    assert cmd is points_add and rest.strip() == "bob 3"
    cmd, rest, _ = reg.resolve("points plus bob 3")
    assert cmd is points_add
    cmd, rest, _ = reg.resolve("points bob")
    assert cmd is points and rest.strip() == "bob"
    assert reg.resolve("nothing")[0] is None
    with pytest.raises(ValueError, match="already declared"):
        reg.add(points)


def test_declaration_mistakes_fail_at_import_time() -> None:
    with pytest.raises(TypeError, match="async def"):

        @command()
        def sync(ctx: object) -> None: ...

    with pytest.raises(TypeError, match="follows an optional"):

        @command()
        async def bad(ctx: object, a: int | None, b: int) -> None: ...

    with pytest.raises(TypeError, match="unsupported argument type"):

        @command()
        async def odd(ctx: object, a: list[int]) -> None: ...


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1,000", "without thousands separators"),
        ("1,000,000", "without thousands separators"),
        ("1.000,50", "without thousands separators"),
        ("1e1000000", "<n> is too large"),
        ("-1e1000000", "<n> is too large"),
        ("1" * 60, "too long for a number"),
        ("0.000000001", "too many decimals"),
    ],
)
def test_numbers_are_bounded_and_never_truncated(raw: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        points_add.parse(f"bob {raw}")
    assert message in info.value.message


def test_decimal_comma_and_negative_zero() -> None:
    assert points_add.parse("bob 12,5")["n"] == Decimal("12.5")
    assert points_add.parse("bob 1,5")["n"] == Decimal("1.5")
    zero = points_add.parse("bob -0")["n"]
    assert zero == 0 and not zero.is_signed()
    with pytest.raises(UsageError, match="too large"):
        paint.parse("red 99999999999999999999")


def test_clip_marks_what_it_cut_and_blanks_control_characters() -> None:
    from bot import clip

    assert clip("short") == "short"
    assert clip("x" * 1000, 10) == "x" * 9 + "…"
    assert clip("a\x1b[2Jb") == "a [2Jb"
