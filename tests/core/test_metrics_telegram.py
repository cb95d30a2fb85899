"""Metrics of a bot on Telegram (the real python-telegram-bot against the fake Bot API):
flood waits are counted, and no Telegram user id, chat id or token shows in a scrape."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fake_telegram import FakeTelegram, TgUser

from bot.app import Bot
from bot.config import config_from_dict

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ALICE = TgUser(7300451, "Alice", "alice_tg")

PLUGIN = '''
from bot import command, hookimpl

@command()
async def echo(ctx, word: str) -> str:
    """Say it back."""
    return f"echo {word}"

@hookimpl
def bot_commands():
    return [echo]
'''


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_chat({"id": ALICE.id, "type": "private", "first_name": ALICE.first_name})
        yield server


async def wait_until(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_flood_waits_and_telegram_commands_are_counted_without_ids(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "tgecho.py").write_text(textwrap.dedent(PLUGIN))
    config = {
        "bot": {
            "database": str(tmp_path / "bot.db"),
            "plugin_dirs": [str(tmp_path / "plugins")],
            "metrics": {"listen": "127.0.0.1:0"},
        },
        "transports": {
            "console": {"enabled": False},
            "telegram": {
                "enabled": True,
                "token": fake.token,
                "base_url": fake.base_url,
                "base_file_url": fake.base_file_url,
                "poll_timeout": 2,
                "request_timeout": 5,
                "reconnect_min": 0.05,
                "reconnect_max": 0.2,
            },
        },
        "plugins": {"tgecho": {}},
    }
    bot = Bot(config_from_dict(config, base_dir=tmp_path))
    await bot.start()
    try:
        transport = bot.transports["telegram"]
        await wait_until(lambda: transport.state == "up")
        fake.rate_limit_next(1, retry_after=1)
        await fake.inject_message("/echo hello", user=ALICE)
        sent = await fake.wait_for_sent(ALICE.id, timeout=20)
        assert sent.result["text"] == "echo hello"
        assert bot.ops is not None
        async with httpx.AsyncClient(base_url=bot.ops.url, timeout=10) as http:
            text = (await http.get("/metrics")).text
    finally:
        await bot.stop()
    assert 'bot_rate_limit_waits_total{limiter="telegram_flood"} 1.0' in text
    assert 'bot_connection_up{kind="transport",name="telegram"} 1.0' in text
    assert (
        'bot_commands_total{command="echo",outcome="ok",platform="telegram",plugin="tgecho"} 1.0'
        in text
    )
    for private in (str(ALICE.id), fake.token, ALICE.username or "", "hello"):
        assert private not in text, private
