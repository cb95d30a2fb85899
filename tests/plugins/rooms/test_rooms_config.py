"""RoomsConfig: the stable keys, defaults, and clear refusals that never echo a secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import PluginConfig
from bot_plugins.rooms.client import RoomsClient
from bot_plugins.rooms.config import RoomsConfig
from bot_plugins.rooms.presence import PresenceManager

IP = "198.51.100.7"


def test_stable_keys_and_defaults():
    config = RoomsConfig(url="https://api.example.test/", key="s3cret", ip_address=IP)

    assert isinstance(config, PluginConfig)
    assert (config.enabled, config.simulate) == (True, False)
    assert config.url == "https://api.example.test"
    assert config.key.get_secret_value() == "s3cret"
    assert config.ping_interval == 10.0
    assert config.link_approval == "admins"  # a typed customer id proves nothing
    assert (config.ip_address, config.timeout, config.retries, config.max_ping_failures) == (
        IP,
        10.0,
        2,
        3,
    )
    assert "s3cret" not in repr(config)


def test_simulate_needs_no_connection_settings():
    assert RoomsConfig(simulate=True).url == ""
    assert RoomsConfig(simulate=True).ip_address == "127.0.0.1"
    assert RoomsConfig(enabled=False).url == ""


@pytest.mark.parametrize("ip", [None, "", "127.0.0.1", "::1", "0.0.0.0"])
def test_ip_address_is_required_unless_simulating(ip):
    """The API verifies ipAddress: 127.0.0.1 for every chat user is not valid."""
    values = {} if ip is None else {"ip_address": ip}
    with pytest.raises(ValidationError) as caught:
        RoomsConfig(url="http://api.test", key="k", **values)
    [error] = caught.value.errors()
    assert error["loc"] == ("ip_address",)
    assert "public address" in error["msg"]


def test_a_config_file_without_ip_address_names_the_key(tmp_path):
    from bot.config import load_config
    from bot.errors import ConfigError

    path = tmp_path / "bot.yaml"
    path.write_text("plugins:\n  rooms:\n    url: https://rooms.example\n    key: k-LEAKED\n")
    loaded = load_config(path, env={})
    with pytest.raises(ConfigError) as caught:
        loaded.validate_plugin("rooms", RoomsConfig)
    assert str(caught.value) == (
        "bot.yaml:2: plugins.rooms.ip_address: required unless simulate is true: the bot "
        "host's public address, sent as every chat user's ipAddress (the API verifies it)"
    )


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"url": "ws://api.test"}, "url", "not an http:// or https:// URL"),
        ({"url": "api.test"}, "url", "not an http:// or https:// URL"),
        ({"url": "http://api.test/?key=LEAKED"}, "url", "must not contain the key"),
        ({"url": ""}, "url", "required unless simulate is true"),
        ({"key": ""}, "key", "required unless simulate is true"),
        ({"ping_interval": 0}, "ping_interval", "more than 0"),
        ({"ping_interval": 11}, "ping_interval", "at most 10 seconds"),
        ({"ip_address": "LEAKED"}, "ip_address", "not an IPv4 or IPv6 address"),
        ({"timeout": -1}, "timeout", "more than 0"),
        ({"retries": 11}, "retries", "between 0 and 10"),
        ({"max_ping_failures": 0}, "max_ping_failures", "between 1 and 100"),
        ({"max_rooms_per_user": 0}, "max_rooms_per_user", "between 1 and 100"),
        ({"ping_intervall": 5}, "ping_intervall", "Extra inputs are not permitted"),
    ],
)
def test_bad_values_are_refused_clearly(values, field, message):
    with pytest.raises(ValidationError) as caught:
        RoomsConfig(**{"url": "http://api.test", "key": "LEAKED-KEY", "ip_address": IP, **values})

    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [(field,)]
    assert message in errors[0]["msg"]
    assert "LEAKED" not in str(caught.value)


def test_ipv6_address_is_normalised():
    assert RoomsConfig(simulate=True, ip_address=" 2001:DB8::1 ").ip_address == "2001:db8::1"


async def test_client_from_config():
    config = RoomsConfig(url="http://api.test/v2", key="k", timeout=3, retries=4, ip_address=IP)

    async with RoomsClient.from_config(config) as client:
        assert str(client.endpoint) == "http://api.test/v2/customer"
        assert (client.timeout, client.retries) == (3, 4)
    async with RoomsClient.from_config(
        RoomsConfig(simulate=True), url="http://127.0.0.1:1", key="sim-key"
    ) as simulated:
        assert str(simulated.endpoint) == "http://127.0.0.1:1/customer"


async def test_presence_manager_from_config():
    config = RoomsConfig(simulate=True, ping_interval=2.5, max_ping_failures=4)

    async with RoomsClient("http://127.0.0.1:1", "k") as client:
        manager = PresenceManager.from_config(client, config)

    assert (manager.ping_interval, manager.max_failures, manager.ping_timeout) == (2.5, 4, 2.5)
