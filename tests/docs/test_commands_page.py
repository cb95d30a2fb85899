"""docs/commands.md cannot drift: each example is a plugin, and each session is run on it.

An ``<!-- example: NAME -->`` marker is followed by a Python block, written as the single-file
plugin NAME into a plugin directory; a ``<!-- session: NAME -->`` marker by a text block whose
``user> text`` lines are said in a chat, in order, as that user, and whose other lines must be
exactly the bot's replies (a reply of several lines gives several lines).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.testing import BotHarness

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "commands.md"
BLOCK = r"<!-- {kind}: (?P<name>\w+) -->\n```(?:\w+)\n(?P<body>.*?)```\n"
#: the roles the page's introduction gives the users of its sessions
ADMINS = ["ada"]
OWNERS = ["olivia"]


def blocks(kind: str) -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    found = [(m["name"], m["body"]) for m in re.finditer(BLOCK.format(kind=kind), text, re.S)]
    assert len({n for n, _ in found}) == len(found), f"two {kind} blocks share a name"
    return dict(found)


def test_every_example_has_a_session_and_the_page_covers_every_option() -> None:
    examples, sessions = blocks("example"), blocks("session")
    assert examples and set(examples) == set(sessions)
    code = "\n".join(examples.values())
    for option in (
        "Literal[",
        "enum.Enum",
        "*, twice: bool",
        ": Rest",
        "Permission.LINKED",
        "Permission.ADMIN",
        "Permission.OWNER",
        "aliases=",
        "hidden=True",
        "private=True",
        "cooldown=",
        "Annotated[str,",
        "UserRef",
        "Decimal",
        ": int",
        ": bool",
    ):
        assert option in code, f"no example of {option}"


async def run_session(bot: BotHarness, session: str) -> tuple[list[str], list[str]]:
    """Replay a session; returns (the lines shown, the lines the bot gave)."""
    chat = bot.chat()
    shown: list[str] = []
    got: list[str] = []
    for line in session.splitlines():
        said = re.match(r"^(\w+)> (.*)$", line)
        if said is None:
            shown.append(line)
            continue
        shown.append(line)
        got.append(line)
        for reply in await chat.say(said[2], user=said[1]):
            got += reply.splitlines()
    return shown, got


@pytest.mark.parametrize("name", sorted(blocks("example")))
async def test_the_session_gives_the_replies_shown(
    name: str, tmp_path: Path, bot_harness: Callable[..., BotHarness]
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / f"{name}.py").write_text(blocks("example")[name], encoding="utf-8")
    bot = bot_harness(
        {name: {}},
        config={"bot": {"plugin_dirs": [str(plugins)]}},
        admins={"console": ADMINS},
        owners={"console": OWNERS},
    )
    async with bot:
        assert bot.failures == {}
        shown, got = await run_session(bot, blocks("session")[name])
        assert got == shown


async def test_the_autocomplete_example_suggests_what_it_says(
    tmp_path: Path, bot_harness: Callable[..., BotHarness]
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "weather.py").write_text(blocks("example")["weather"], encoding="utf-8")
    bot = bot_harness({"weather": {}}, config={"bot": {"plugin_dirs": [str(plugins)]}})
    async with bot:
        (param,) = bot.bot.registry.find("weather").params
        assert param.autocomplete is not None
        assert await param.autocomplete(None, "Os") == ["osaka", "oslo"]
