"""Running the whole bot with its Discord transport against the fake Discord on 127.0.0.1.

The bot is built from a config (as ``bot run`` would), with a small plugin written to a
temporary plugin directory; discord.py runs unmodified and reaches the fake only through the
transport's own ``api_base`` / ``gateway_url`` settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import textwrap
import time
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401

from fake_discord import FakeDiscord

from bot.app import Bot
from bot.config import config_from_dict
from bot.messages import CollectingResponder, Message
from bot.transports.discord import DiscordTransport

for _name in ("discord", "aiohttp.access"):
    logging.getLogger(_name).setLevel(logging.WARNING)
logging.getLogger("discord.client").setLevel(logging.ERROR)

#: a plugin declaring every kind of command the transport must render and run
DEMO_PLUGIN = '''
import asyncio
from decimal import Decimal
from typing import Annotated, Literal

from bot import (
    Permission, Rest, Topic, UserError, UserRef, command, hookimpl, subscription_command,
)

FRUITS = ["apple", "apricot", "banana", "cherry"]


async def fruit_names(ctx, current):
    return [f for f in FRUITS if f.startswith(current.lower())]


@command()
async def echo(ctx, n: int, word: str, price: Decimal | None = None, *, loud: bool = False) -> str:
    """Repeat a word.

    Args:
        n: how many times
        word: the word to repeat
        price: a price to show
        loud: shout it
    """
    text = " ".join([word] * n)
    text = text.upper() if loud else text
    shown = f" (price {price})" if price is not None else ""
    return f"{text}{shown} by {ctx.user_name}"


@command()
async def greet(ctx, who: UserRef, mood: Literal["happy", "grumpy"] = "happy") -> str:
    """Greet someone."""
    return f"{mood} hello to {who.name} ({who.platform}:{who.id})"


@command()
async def fruit(ctx, name: Annotated[str, fruit_names]) -> str:
    """Pick a fruit."""
    return f"you picked {name}"


Shade = Literal[tuple(f"shade{i:02d}" for i in range(30))]


@command()
async def paint(ctx, shade: Shade) -> str:
    """Pick one of 30 shades (more than Discord lists as choices)."""
    return f"painted {shade}"


@command("points")
async def points(ctx, user: str | None = None) -> str:
    """Show points."""
    return f"{user or ctx.user_name} has 10 points"


@command("points add", permission=Permission.ADMIN)
async def points_add(ctx, user: str, n: int) -> str:
    """Give points."""
    return f"gave {n} points to {user}"


@command(permission=Permission.ADMIN)
async def payout(ctx, user: str, amount: Decimal) -> str:
    """Pay out money."""
    if not await ctx.confirm(f"Pay {amount} to {user}?"):
        return "Payout cancelled."
    return f"Paid {amount} to {user}."


@command("long")
async def long_(ctx) -> str:
    """A reply longer than one Discord message."""
    return "\\n".join(f"line {i:03d} " + "x" * 60 for i in range(70))


@command(private=True)
async def secret(ctx) -> str:
    """Private data."""
    return "your balance is 42"


@command()
async def boom(ctx) -> str:
    """Always refuses."""
    raise UserError("That cannot be done right now.")


@command()
async def slow(ctx, *, fail: bool = False) -> str:
    """Takes longer than the defer window."""
    await asyncio.sleep(0.4)
    if fail:
        raise UserError("It failed, slowly.")
    return "finally done"


@command(permission=Permission.ADMIN)
async def announce(ctx, text: Rest) -> str:
    """Publish an alert."""
    return f"published to {ctx.publish('demo.news', text)} chats"


@command()
async def name(ctx) -> str:
    """Ask for a name."""
    answer = await ctx.ask("What is your name?")
    return f"Hello {answer}"


news = subscription_command("news", "demo.news")


@hookimpl
def bot_commands():
    return [echo, greet, fruit, paint, points, points_add, payout, long_, secret, boom, slow,
            announce, name, news]


@hookimpl
def bot_alert_topics():
    return [Topic("demo.news", "Demo news")]
'''

#: a second plugin, enabled later to change the command set
MORE_PLUGIN = '''
from bot import command, hookimpl


@command()
async def added(ctx) -> str:
    """A command added later."""
    return "new"


@hookimpl
def bot_commands():
    return [added]
'''


def discord_settings(fake: FakeDiscord, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "enabled": True,
        "token": fake.token,
        "api_base": fake.api_base,
        "gateway_url": fake.gateway_url,
        "guild_ids": [g.id for g in fake.guilds],
        "guild_ready_timeout": 0.05,
        "reconnect_delay": 0.05,
        "reconnect_max_delay": 0.2,
        "confirm_timeout": 5.0,
        "defer_after": 1.5,
    }
    settings.update(overrides)
    return settings


def write_plugins(tmp_path: Path, plugins: dict[str, str]) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir(exist_ok=True)
    for name, source in plugins.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return directory


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_bot(
    tmp_path: Path,
    fake: FakeDiscord,
    *,
    wait_up: bool = True,
    plugins: dict[str, str] | None = None,
    admins: list[int] | None = None,
    **discord_overrides: Any,
) -> AsyncIterator[tuple[Bot, DiscordTransport]]:
    """A started bot whose Discord transport is connected (unless ``wait_up`` is false)."""
    plugins = {"demo": DEMO_PLUGIN} if plugins is None else plugins
    write_plugins(tmp_path, plugins)
    guild = fake.guilds[0] if fake.guilds else None
    admin_ids = admins if admins is not None else ([guild.member("alice").id] if guild else [])
    config = {
        "bot": {
            "database": "bot.db",
            "plugin_dirs": ["plugins"],
            "admins": {"discord": admin_ids},
            "alert_window": 0.05,
            "ask_timeout": 5,
        },
        "transports": {
            "console": {"enabled": False},
            "discord": discord_settings(fake, **discord_overrides),
        },
        "plugins": {name: {} for name in plugins},
    }
    bot = Bot(config_from_dict(config, base_dir=tmp_path))
    await bot.start()
    try:
        transport = bot.transports["discord"]
        assert isinstance(transport, DiscordTransport)
        if wait_up:
            await wait_until(lambda: transport.state == "up", what="discord transport up")
            sync = transport._sync_task
            if sync is not None:
                await asyncio.wait_for(asyncio.shield(sync), 5)
        yield bot, transport
    finally:
        await bot.stop()


async def console_says(bot: Bot, text: str) -> list[str]:
    """Run one command as the console user, to show the rest of the bot keeps working."""
    responder = CollectingResponder()
    message = Message("console", "console", "console", "console", text, responder)
    await bot.dispatcher.process(message)
    return [r.text for r in responder.replies]
