"""Fixtures for ChatWars tests: a private RabbitMQ broker, the simulator, a connected client.

One broker serves the whole session (it takes seconds to boot). Every test gets its own app
name, so its exchange, queues and feeds are its own, and the simulator deletes them afterwards.
The client logs in as a broker user without "configure" rights, as the real server treats
apps: any attempt to declare a queue or exchange would fail the test.

Later phases reuse these for command tests: ``chatwars_sim``, ``chatwars_client`` and
``link_user`` (a linked player's UserToken, through the real createAuthCode/grantToken flow).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bot.backoff import backoff_delays
from bot_plugins.chatwars.client import ChatWarsClient
from bot_plugins.chatwars.feeds import FeedKind
from bot_plugins.chatwars.models import UserToken
from bot_plugins.chatwars.simulator import ChatWarsSimulator


def _load_support(module: str) -> ModuleType:
    """tests/ has no packages (rootdir-based test names), so load a helper by path."""
    name = f"chatwars_test_support_{module}"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[2] / "support" / f"{module}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


kafka = _load_support("kafka")

#: The app's broker password in tests; asserted never to appear in messages or status.
APP_PASSWORD = "s3cret-app-pw"


def fast_reconnects() -> Iterator[float]:
    return backoff_delays(0.05, 0.5)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The session's private Kafka-protocol broker (tests/support/kafka.py), started on the
    first test that needs it. Where its binary cannot be fetched the tests are skipped, unless
    BOT_TEST_REQUIRE_KAFKA=1 (scripts/test.sh, so CI) makes that a failure."""
    try:
        with kafka.running_kafka() as bootstrap:
            yield bootstrap
    except kafka.BrokerError as exc:
        if os.environ.get("BOT_TEST_REQUIRE_KAFKA") == "1":
            pytest.fail(f"{exc} (BOT_TEST_REQUIRE_KAFKA=1: the Kafka tests must run)")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def rabbitmq_url(rabbitmq_broker: Any) -> str:
    """An all-powerful login (the simulator's: it plays the server and declares)."""
    return str(rabbitmq_broker.url)


@pytest.fixture(scope="session")
def chatwars_app_password() -> str:
    """The app's broker password, which must never show up in a message or a status line."""
    return APP_PASSWORD


@pytest.fixture(scope="session")
def chatwars_app_url(rabbitmq_broker: Any) -> str:
    """A login that may publish and consume but not declare, like the real server's apps."""
    return str(rabbitmq_broker.add_user("cwapp", APP_PASSWORD, configure="^$"))


@pytest.fixture
def chatwars_app() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def chatwars_sim(rabbitmq_url: str, chatwars_app: str) -> AsyncIterator[ChatWarsSimulator]:
    sim = ChatWarsSimulator(
        rabbitmq_url,
        chatwars_app,
        seed=1234,
        feed_exchange_prefix=f"{chatwars_app}.",
        delete_on_stop=True,
    )
    async with sim:
        yield sim


@pytest.fixture
async def make_client(
    chatwars_app_url: str, chatwars_sim: ChatWarsSimulator
) -> AsyncIterator[Callable[..., Awaitable[ChatWarsClient]]]:
    """Start clients for the simulator's app with test-friendly timings; closed afterwards."""
    clients: list[ChatWarsClient] = []

    async def make(**options: Any) -> ChatWarsClient:
        settings: dict[str, Any] = {
            "timeout": 3.0,
            "max_rate": 500.0,
            "feeds": list(FeedKind),
            "late_reply_grace": 10.0,
            "reconnect_delays": fast_reconnects,
        }
        settings.update(options)
        url = settings.pop("amqp_url", chatwars_app_url)
        app = settings.pop("app", chatwars_sim.app)
        client = ChatWarsClient(url, app, **settings)
        clients.append(client)
        await client.start()
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def chatwars_client(make_client: Callable[..., Awaitable[ChatWarsClient]]) -> ChatWarsClient:
    client = await make_client()
    assert client.connected, client.status.reason
    return client


@pytest.fixture
def link_user(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator
) -> Callable[..., Awaitable[UserToken]]:
    """Link a player through the real flow; ``operations`` are then granted directly."""

    async def link(user_id: int, *operations: str) -> UserToken:
        await chatwars_client.create_auth_code(user_id)
        code = chatwars_sim.world.last_code(user_id, "auth")
        granted = await chatwars_client.grant_token(user_id, code)
        for operation in operations:
            chatwars_sim.world.grant_operation(user_id, operation)
        return granted.credentials

    return link


# --------------------------------------------------------------------------- the bot harness


@pytest.fixture
def chatwars_settings(chatwars_app_url: str, chatwars_sim: ChatWarsSimulator) -> dict[str, Any]:
    """The plugin's config section for the test's simulator, with test-friendly timings.

    Tests that use the bot must not also use ``chatwars_client``: one client per app (a
    second consumer would split the reply queue).
    """
    return {
        "amqp_url": chatwars_app_url,
        "app": chatwars_sim.app,
        "timeout": 3.0,
        "max_requests_per_second": 30,
        "alert_interval": 0.2,
        "reconnect_min_delay": 0.05,
        "reconnect_max_delay": 0.5,
    }


@pytest.fixture
def chatwars_bot(
    bot_harness: Callable[..., Any], chatwars_settings: dict[str, Any]
) -> Callable[..., Any]:
    """``async with chatwars_bot(**overrides) as bot``: a bot with the plugin connected to
    the test's simulator; ``boss`` is an admin on the console."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Any]:
        async with bot_harness(
            plugins={"chatwars": {**chatwars_settings, **overrides}},
            admins={"console": ["boss"]},
        ) as bot:
            assert "chatwars" not in bot.failures, bot.failures
            assert await bot.client("chatwars").wait_connected(5)
            yield bot

    return start


def grant_token(sim: ChatWarsSimulator, user_id: int, *operations: str) -> UserToken:
    """A token for a player straight from the simulated game (no broker round trip)."""
    return UserToken(user_id, sim.world.token_for(user_id, *operations))


@pytest.fixture
def chatwars_link(chatwars_sim: ChatWarsSimulator) -> Callable[..., UserToken]:
    """``chatwars_link(bot, chat_user, telegram_id, *operations)``: a linked chat user, as
    ``cw code`` leaves it, with a token the simulated game granted (fast: for tests that are
    not about linking)."""

    def link(
        bot: Any, user: str, telegram_id: int, *operations: str, platform: str = "console"
    ) -> UserToken:
        token = grant_token(chatwars_sim, telegram_id, *operations)
        bot.bot.store.set_link(
            platform,
            user,
            "chatwars",
            str(telegram_id),
            token=token.token,
            data={
                "telegram_id": telegram_id,
                "game_id": chatwars_sim.world.users[telegram_id].game_id,
            },
            proof="proven",  # as cw code leaves it: the game proved the account
        )
        return token

    return link
