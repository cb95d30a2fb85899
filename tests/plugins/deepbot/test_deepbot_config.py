"""The ``deepbot`` config section: clear refusals, and the secret never shown."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bot_plugins.deepbot.client import DeepBotClient
from bot_plugins.deepbot.config import DeepBotConfig
from bot_plugins.deepbot.simulator import DeepBotSimulator

SECRET = "s3cr3t-value"


def test_defaults_and_stable_keys() -> None:
    config = DeepBotConfig(secret=SECRET)
    assert config.enabled and not config.simulate
    assert config.url == "ws://127.0.0.1:3337"
    assert config.timeout == 5.0
    assert config.secret_value() == SECRET
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


def test_simulate_needs_no_secret() -> None:
    assert DeepBotConfig(simulate=True).secret_value() is None
    assert DeepBotConfig(enabled=False).secret is None


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"url": "http://127.0.0.1:3337"}, "not a ws:// or wss:// URL"),
        ({"url": "127.0.0.1:3337"}, "not a ws:// or wss:// URL"),
        ({"url": "ws://"}, "not a ws:// or wss:// URL"),
        ({"url": "ws://host:99999"}, "port"),
        ({"secret": None}, "secret is required"),
        ({"secret": "a|" + SECRET}, "cannot contain '|'"),
        ({"secret": SECRET + "\n"}, "line breaks"),
        ({"secret": "  "}, "empty"),
        ({"timeout": 0}, "greater than 0"),
        ({"timeout": "inf"}, "finite"),
        ({"reconnect_min_delay": 20, "reconnect_max_delay": 10}, "cannot be larger"),
        ({"token": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_values_are_refused_clearly_without_echoing_them(
    values: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        DeepBotConfig(**{"secret": SECRET, **values})
    text = str(caught.value)
    assert reason in text
    assert SECRET not in text


async def test_client_from_config_connects(deepbot_sim: DeepBotSimulator) -> None:
    config = DeepBotConfig(url=deepbot_sim.url, secret=deepbot_sim.secret, timeout=1)
    async with DeepBotClient.from_config(config) as client:
        assert client.timeout == 1
        assert await client.get_points("bob") == 100
    simulated = DeepBotConfig(simulate=True)
    async with DeepBotClient.from_config(
        simulated, url=deepbot_sim.url, secret=deepbot_sim.secret
    ) as client:
        assert await client.user_exists("alice")


def test_whole_points_unless_decimals_is_set() -> None:
    whole = DeepBotClient.from_config(DeepBotConfig(secret=SECRET))
    assert whole.whole_points
    decimal = DeepBotClient.from_config(DeepBotConfig(secret=SECRET, decimals=True))
    assert not decimal.whole_points
    with pytest.raises(ValidationError):
        DeepBotConfig(secret=SECRET, decimals="sometimes")
