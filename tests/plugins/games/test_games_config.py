"""The games config section: stable keys, clear messages, secrets kept secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot_plugins.games.client import GamesClient
from bot_plugins.games.config import GamesConfig


def test_stable_keys_are_accepted() -> None:
    config = GamesConfig(url="wss://games.example/ws", source_id="src-1", session_key="s3cret")
    assert config.enabled and not config.simulate
    assert config.session_key is not None and config.session_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.model_dump())
    assert (config.timeout, config.ping_interval, config.alert_coalesce) == (10.0, 25.0, 0.5)


@pytest.mark.parametrize("url", ["http://games.example", "games.example:80", "ws://", "ws://h:x"])
def test_a_bad_url_says_what_is_expected(url: str) -> None:
    with pytest.raises(ValidationError, match=r"not a ws:// or wss:// URL"):
        GamesConfig(url=url, source_id="src", session_key="k")


def test_missing_connection_keys_are_named_unless_simulated() -> None:
    with pytest.raises(ValidationError, match="missing source_id, session_key: required unless"):
        GamesConfig(url="ws://127.0.0.1:1")
    assert GamesConfig(simulate=True).url is None
    assert GamesConfig(enabled=False).session_key is None


def test_bad_values_are_refused_without_echoing_the_secret() -> None:
    with pytest.raises(ValidationError) as bad:
        GamesConfig(url="ws://h", source_id="two words", session_key="hidden-key", timeout=0)
    text = str(bad.value)
    assert "not a source id" in text and "timeout" in text
    assert "hidden-key" not in text
    with pytest.raises(ValidationError, match="must not be empty"):
        GamesConfig(url="ws://h", source_id="s", session_key="  ")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        GamesConfig(simulate=True, sesion_key="typo")


def test_client_from_config() -> None:
    config = GamesConfig(
        url="ws://127.0.0.1:9", source_id="src", session_key="k", timeout=1.5, close_settle=0.5
    )
    client = GamesClient.from_config(config)
    assert (client.url, client.source_id, client.timeout, client.close_settle) == (
        "ws://127.0.0.1:9",
        "src",
        1.5,
        0.5,
    )
    simulated = GamesClient.from_config(
        GamesConfig(simulate=True), url="ws://127.0.0.1:10", session_key="sim", source_id="src"
    )
    assert (simulated.url, simulated.source_id) == ("ws://127.0.0.1:10", "src")
    # simulate: the in-process simulator's address replaces the configured one.
    assert GamesClient.from_config(config, url="ws://127.0.0.1:11").url == "ws://127.0.0.1:11"
    with pytest.raises(ValueError, match="url and session_key"):
        GamesClient.from_config(GamesConfig(simulate=True))


def test_user_id_is_a_stable_key_for_the_vendors_login() -> None:
    base = {"url": "ws://h:1", "source_id": "s", "session_key": "k"}
    assert GamesConfig(**base).user_id is None
    assert GamesConfig(**base, user_id=17).user_id == "17"
    assert GamesConfig(**base, user_id=" u-17 ").user_id == "u-17"
    for bad in ("two words", "", True, [1], "x" * 101):
        with pytest.raises(ValidationError, match="not a user id"):
            GamesConfig(**base, user_id=bad)
    client = GamesClient.from_config(
        GamesConfig(**base, user_id=17, max_frame_bytes=2**17, error_grace=0.5)
    )
    assert (client.user_id, client.max_frame_bytes, client.error_grace) == ("17", 2**17, 0.5)
    with pytest.raises(ValidationError, match="max_frame_bytes"):
        GamesConfig(**base, max_frame_bytes=10)
