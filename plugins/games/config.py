"""The ``games`` config section.

``url``, ``source_id``, ``session_key`` and ``user_id`` are the stable keys (DESIGN.md); the
first three may be left out only with ``simulate: true``, where the bundled simulator supplies
them. ``user_id`` turns on the vendor's login (a digest of user id, nonce and session key in
the connection URL, then logon op 100). The timing keys exist so tests and slow links can tune
them without code changes.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from bot.config import PluginConfig

from .wire import MAX_FRAME_BYTES, check_ws_url


class GamesConfig(PluginConfig):
    """Settings of the games plugin; unknown keys are refused (see :class:`PluginConfig`)."""

    url: str | None = None
    source_id: str | None = None
    session_key: SecretStr | None = None
    user_id: str | None = Field(
        None, description="the vendor's user id: log in with ?id=&n=&h= and logon (op 100)"
    )
    timeout: float = Field(10.0, gt=0, le=300, description="seconds to wait for any reply")
    connect_timeout: float = Field(10.0, gt=0, le=300)
    ping_interval: float = Field(
        25.0, gt=0, le=3600, description="seconds between websocket pings (keep-alive)"
    )
    max_frame_bytes: int = Field(
        MAX_FRAME_BYTES,
        ge=64 * 1024,
        le=64 * 2**20,
        description="largest frame accepted from the service; a larger one drops the link",
    )
    close_settle: float = Field(
        1.0, gt=0, le=60, description="quiet seconds after a 368 before a close is reported"
    )
    error_grace: float = Field(
        0.25,
        ge=0,
        le=10,
        description="seconds an error waits before failing its call, in case the call's own "
        "reply follows (then the error was stray)",
    )
    alert_coalesce: float = Field(
        0.5, ge=0, le=60, description="seconds in which a burst of events becomes one alert"
    )
    recent_events: int = Field(5, ge=0, le=50, description="past events shown by `game <id>`")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_ws_url(value)

    @field_validator("source_id")
    @classmethod
    def _source_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if not text or any(ch.isspace() for ch in text) or len(text) > 100:
            raise ValueError("not a source id (one word without spaces, at most 100 characters)")
        return text

    @field_validator("user_id", mode="before")
    @classmethod
    def _user_id(cls, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("not a user id (a number or one word)")
        text = str(value).strip()
        if not text or not text.isprintable() or " " in text or len(text) > 100:
            raise ValueError("not a user id (one word without spaces, at most 100 characters)")
        return text

    @field_validator("session_key")
    @classmethod
    def _session_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("the session key must not be empty")
        return value

    @model_validator(mode="after")
    def _connection_keys(self) -> Self:
        if self.enabled and not self.simulate:
            missing = [
                name for name in ("url", "source_id", "session_key") if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}: required unless simulate is true")
        return self
