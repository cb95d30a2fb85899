"""Fixtures that start the fake Discord and Telegram servers on free ports.

The fixtures only start the servers; they deliberately do not point the client libraries at
them, so an end-to-end test proves that the transport's own ``api_base`` / ``gateway_url`` /
``base_url`` settings do that job.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator

import pytest

with warnings.catch_warnings():
    # discord.player imports the deprecated audioop; importing once here keeps that quiet.
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401
from fake_discord import FakeDiscord, FakeGuild
from fake_telegram import FakeTelegram

# The libraries log every request and reconnect at INFO; failures stay readable without them.
for _name in ("discord", "telegram", "httpx", "httpcore", "aiohttp.access"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# Every discord.Client warns that the optional voice libraries are missing.
logging.getLogger("discord.client").setLevel(logging.ERROR)


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A running fake Discord with one sample guild (#general, #alerts, alice admin, bob)."""
    async with FakeDiscord(guilds=[FakeGuild.sample()]) as fake:
        yield fake
    assert not fake.errors, f"the fake itself failed: {fake.errors}"


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    """A running fake Telegram Bot API; point the client at ``fake.base_url``."""
    async with FakeTelegram() as fake:
        yield fake
    assert not fake.errors, f"the fake itself failed: {fake.errors}"
