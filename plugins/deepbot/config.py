"""The ``deepbot`` config section.

Checked when the config is loaded rather than when the first command runs, so a typo in the
URL or a secret that cannot be sent shows up in ``bot check-config`` with its key name.
Errors never repeat the input (``hide_input_in_errors``): the section holds the API secret.
"""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.config import PluginConfig

from .client import DEFAULT_TIMEOUT, DEFAULT_URL


class DeepBotConfig(PluginConfig):
    """``url`` and ``secret`` (the stable keys), plus timing knobs with safe defaults.

    ``secret`` may be left out with ``simulate: true``: the bundled simulator then runs
    with a secret the plugin makes up.
    """

    model_config = ConfigDict(hide_input_in_errors=True, allow_inf_nan=False)

    url: str = DEFAULT_URL
    secret: SecretStr | None = None
    timeout: float = Field(
        DEFAULT_TIMEOUT, gt=0, le=120, description="Seconds to wait for each answer."
    )
    reconnect_min_delay: float = Field(
        0.2, gt=0, le=60, description="First delay before reconnecting, in seconds."
    )
    reconnect_max_delay: float = Field(
        15.0, gt=0, le=600, description="Longest delay between reconnect attempts, in seconds."
    )
    decimals: bool = Field(
        False,
        description="DeepBot counts whole points (both public clients read them as Int32); "
        "set true only for an install that takes amounts with two decimals.",
    )

    @field_validator("url")
    @classmethod
    def _websocket_url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError("not a ws:// or wss:// URL (for example ws://127.0.0.1:3337)")
        try:
            parts.port  # noqa: B018 - reading it validates it
        except ValueError:
            raise ValueError("the port in the URL is not a number from 0 to 65535") from None
        return url.strip()

    @field_validator("secret")
    @classmethod
    def _sendable_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is None:
            return None
        value = secret.get_secret_value()
        if not value.strip():
            raise ValueError("the secret is empty")
        if "|" in value or any(not c.isprintable() for c in value):
            raise ValueError("the secret cannot contain '|', line breaks or control characters")
        return secret

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.enabled and not self.simulate and self.secret is None:
            raise ValueError(
                "secret is required (DeepBot's client API secret from its master settings) "
                "unless simulate is true"
            )
        if self.reconnect_min_delay > self.reconnect_max_delay:
            raise ValueError("reconnect_min_delay cannot be larger than reconnect_max_delay")
        return self

    def secret_value(self) -> str | None:
        """The secret in clear, for the client only; never log or show it."""
        return None if self.secret is None else self.secret.get_secret_value()
