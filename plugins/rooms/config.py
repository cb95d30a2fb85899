"""The ``rooms`` section of the bot's config.

Stable keys (DESIGN.md): ``url``, ``key``, ``ping_interval``. The others tune the client, cap
what one chat user can make the bot keep alive (``max_rooms_per_user``), and supply what a
chat cannot: ``ip_address`` is sent as every chat user's ``ipAddress``, because
the API requires one and a chat message carries no client address; set it to the bot host's
public address. The API "will verify that all information is valid", so it is required (and
may not be a loopback or unspecified address) unless simulating. ``url``, ``key`` and
``ip_address`` may be left out with ``simulate: true``, where the bundled simulator supplies
the first two and 127.0.0.1 serves as the address.

``link_approval`` (from the base) defaults to ``admins``: a customer id typed in chat proves
nothing, and a registered customer's credits are real money.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

from pydantic import ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from bot.config import PluginConfig

SIMULATED_IP = "127.0.0.1"
"""The address sent while simulating, where nobody verifies it."""

MAX_PING_INTERVAL = 10.0
"""The API purges a customer who is not pinged every 10 seconds; never wait longer."""


class RoomsConfig(PluginConfig):
    """Settings for the VS Media rooms API.

    Errors never echo the input: a key pasted into the wrong field must not be printed back.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    url: str = Field("", description="Base URL of the API; calls go to {url}/customer.")
    key: SecretStr = Field(SecretStr(""), description="The API key supplied by VS Media.")
    ping_interval: float = Field(
        MAX_PING_INTERVAL, description="Seconds between keep-alive pings per presence."
    )
    ip_address: str = Field(
        "",
        description="The bot host's public address, sent as ipAddress for every chat user "
        "(a chat has no IP); required unless simulating.",
    )
    timeout: float = Field(10.0, description="Seconds one HTTP attempt may take.")
    retries: int = Field(2, description="Extra attempts for retried calls (ping, leave).")
    max_ping_failures: int = Field(
        3, description="Consecutive failed pings after which a presence counts as lost."
    )
    max_rooms_per_user: int = Field(
        5, description="Rooms one chat user may be present in at once (each is pinged)."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if not value:
            _require_unless_simulated(info)
            return value
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http:// or https:// URL")
        if "key" in urllib.parse.parse_qs(parts.query):
            raise ValueError("must not contain the key; set rooms.key instead")
        return value.rstrip("/")

    @field_validator("key")
    @classmethod
    def _key(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if not value.get_secret_value().strip():
            _require_unless_simulated(info)
        return value

    @field_validator("ping_interval")
    @classmethod
    def _ping_interval(cls, value: float) -> float:
        if not 0 < value <= MAX_PING_INTERVAL:
            raise ValueError(
                f"must be more than 0 and at most {MAX_PING_INTERVAL:g} seconds: "
                "the API purges customers who are not pinged every 10 seconds"
            )
        return value

    @field_validator("ip_address")
    @classmethod
    def _ip(cls, value: str, info: ValidationInfo) -> str:
        text = value.strip()
        real = info.data.get("enabled", True) and not info.data.get("simulate", False)
        if not text:
            if real:
                raise ValueError(
                    "required unless simulate is true: the bot host's public address, sent as "
                    "every chat user's ipAddress (the API verifies it)"
                )
            return SIMULATED_IP
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ValueError("not an IPv4 or IPv6 address") from None
        if real and (address.is_loopback or address.is_unspecified):
            raise ValueError(
                "must be the bot host's public address, not a loopback or unspecified one "
                "(the API verifies it)"
            )
        return str(address)

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not 0 < value <= 120:
            raise ValueError("must be more than 0 and at most 120 seconds")
        return value

    @field_validator("retries")
    @classmethod
    def _retries(cls, value: int) -> int:
        if not 0 <= value <= 10:
            raise ValueError("must be between 0 and 10")
        return value

    @field_validator("max_rooms_per_user")
    @classmethod
    def _max_rooms(cls, value: int) -> int:
        if not 1 <= value <= 100:
            raise ValueError("must be between 1 and 100")
        return value

    @field_validator("max_ping_failures")
    @classmethod
    def _max_failures(cls, value: int) -> int:
        if not 1 <= value <= 100:
            raise ValueError("must be between 1 and 100")
        return value


def _require_unless_simulated(info: ValidationInfo) -> None:
    """Connection settings may be empty only where nothing will connect with them.

    Runs on defaults too (``validate_default``), and sees ``enabled``/``simulate`` because
    the base class declares them first.
    """
    if info.data.get("enabled", True) and not info.data.get("simulate", False):
        raise ValueError("required unless simulate is true")
