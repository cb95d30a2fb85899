"""The ``concertpos`` config section.

Connection keys follow DESIGN.md's stable contract (``url``, or ``shard`` + ``instance``;
``api_key``; ``pos_id``). The rest exists because the API needs it: the shard list for
failover, a URL template so tests and later API versions can point elsewhere, the rate costs
(the doc's numbers are defaults, not promises), and who may sell. Every check fails with a
message that names the problem without echoing a secret.
"""

from __future__ import annotations

import re
import string
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from bot.config import PluginConfig

from .ratelimit import DEFAULT_COSTS, DEFAULT_LIMIT, DEFAULT_WINDOW

DEFAULT_SHARDS = ("exon", "cyton", "zeus")
DEFAULT_URL_TEMPLATE = "wss://shard-{shard}.ws.concertpos.com/{instance}"

_SHARD = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_TEMPLATE_FIELDS = {"shard", "instance"}


def check_ws_url(url: str) -> str:
    """Return ``url`` if it is a ws:// or wss:// URL with a host, else raise ValueError."""
    try:
        parts = urlsplit(url)
        has_host = bool(parts.hostname)
    except ValueError:
        has_host = False
        parts = None
    if parts is None or parts.scheme not in ("ws", "wss") or not has_host:
        raise ValueError("not a ws:// or wss:// URL")
    return url


class ConcertPOSConfig(PluginConfig):
    """Settings of the ConcertPOS plugin; see docs/configuration.md for an example."""

    #: full URL, or a list of them tried in order (failover); overrides shard/instance
    url: list[str] | None = None
    #: the shard tried first; the others in ``shards`` follow on failure
    shard: str | None = None
    shards: list[str] = Field(default_factory=lambda: list(DEFAULT_SHARDS))
    url_template: str = DEFAULT_URL_TEMPLATE
    #: the instance slug (the last part of the gateway URL)
    instance: str | None = None
    api_key: SecretStr | None = None
    #: the point of sale the bot sells at
    pos_id: int = Field(default=1, ge=1)
    #: only for points of sale protected by a password
    pos_password: SecretStr | None = None
    #: payment method used by ``pos sell`` when none is given (id or name)
    default_method: int | str | None = None
    #: who may run ``pos sell``: admins only, admins and holders of ``seller_role``, anyone
    sell_permission: Literal["admins", "role", "everyone"] = "role"
    seller_role: str = "pos-seller"
    #: largest amount of one product in a single sale (catches typos like 100 for 10)
    max_amount: int = Field(default=100, ge=1, le=100_000)
    #: seconds to wait for a reply; also the longest wait for rate budget
    timeout: float = Field(default=10.0, gt=0, le=300)
    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    reconnect_min: float = Field(default=0.2, gt=0, le=60)
    reconnect_max: float = Field(default=15.0, gt=0, le=3600)
    rate_limit: int = Field(default=DEFAULT_LIMIT, ge=1)
    rate_window: float = Field(default=DEFAULT_WINDOW, gt=0)
    #: seconds added to the window on our side, against network jitter
    rate_margin: float = Field(default=1.0, ge=0)
    #: ``shared``: all commands spend from one budget (the doc read strictly, the safe
    #: default); ``per_command``: each command has its own (the vendor client's start-up
    #: spends more than 100 points a second without being limited)
    rate_budget: Literal["shared", "per_command"] = "shared"
    #: the longest pause a server ``ratelimit`` may impose, in seconds (it may ask for more)
    max_retry_after: float = Field(default=300.0, ge=1, le=3600)
    #: override the doc's points per command, e.g. ``{version: 50}``
    costs: dict[str, int] = Field(default_factory=dict)
    #: seconds a ``version`` / ``getstatus`` answer is reused (they cost 50 and 15 points)
    version_ttl: float = Field(default=600.0, ge=0)
    status_ttl: float = Field(default=30.0, ge=0)
    #: seconds within which a repeated ``updatepos`` alert is not sent to chats again
    alert_repeat_after: float = Field(default=5.0, ge=0)

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        if value is None or value == "" or value == []:
            return None
        urls = [value] if isinstance(value, str) else value
        if not isinstance(urls, list):
            raise ValueError("must be a ws:// URL or a list of them")
        for index, url in enumerate(urls):
            if not isinstance(url, str):
                raise ValueError(f"entry {index + 1} is not text")
            try:
                check_ws_url(url)
            except ValueError:
                where = "" if len(urls) == 1 else f"entry {index + 1} is "
                raise ValueError(f"{where}not a ws:// or wss:// URL") from None
        return urls

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str | None) -> str | None:
        if value is not None and not _SHARD.match(value):
            raise ValueError("must be a shard name like 'exon' (lower-case letters, digits, -)")
        return value

    @field_validator("shards")
    @classmethod
    def _shards(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one shard")
        for name in value:
            if not _SHARD.match(name):
                raise ValueError(f"{name!r} is not a shard name (lower-case letters, digits, -)")
        return list(dict.fromkeys(value))

    @field_validator("url_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError:
            raise ValueError("has unbalanced { } braces") from None
        unknown = fields - _TEMPLATE_FIELDS
        if unknown:
            raise ValueError(
                f"may only use {{shard}} and {{instance}}, not {{{sorted(unknown)[0]}}}"
            )
        if "instance" not in fields:
            raise ValueError("must contain {instance}")
        try:
            check_ws_url(value.format(shard="exon", instance="slug"))
        except ValueError:
            raise ValueError("not a ws:// or wss:// URL template") from None
        return value

    @field_validator("costs")
    @classmethod
    def _costs(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        limit = info.data.get("rate_limit", DEFAULT_LIMIT)
        for command, points in value.items():
            if command not in DEFAULT_COSTS:
                known = ", ".join(sorted(DEFAULT_COSTS))
                raise ValueError(f"unknown command {command!r}; known: {known}")
            if points < 0:
                raise ValueError(f"{command} must cost 0 points or more")
        for command, points in {**DEFAULT_COSTS, **value}.items():
            if points > limit:
                raise ValueError(
                    f"{command} costs {points} points, more than rate_limit ({limit}): "
                    "it could never be sent"
                )
        return value

    @field_validator("reconnect_max")
    @classmethod
    def _reconnect_order(cls, value: float, info: ValidationInfo) -> float:
        if value < info.data.get("reconnect_min", 0):
            raise ValueError("must not be smaller than reconnect_min")
        return value

    # The two checks below sit on fields, not on the model: a model-level error would print
    # the whole section, api key included, in its message.

    @field_validator("api_key")
    @classmethod
    def _key_needed(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if not info.data.get("simulate") and (value is None or not value.get_secret_value()):
            raise ValueError("api_key is required unless simulate is true")
        return value

    @field_validator("instance")
    @classmethod
    def _place_needed(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not _SLUG.match(value):
            raise ValueError("must be an instance slug (letters, digits, - and _)")
        if value is None and not info.data.get("simulate") and "url" in info.data:
            if info.data["url"] is None:
                raise ValueError("set either url, or instance (and optionally shard)")
        return value

    def costs_table(self) -> dict[str, int]:
        """The doc's costs with this config's overrides applied."""
        return {**DEFAULT_COSTS, **self.costs}

    def endpoints(self, instance: str | None = None) -> list[str]:
        """The URLs to try, in order: ``url`` as given, else the preferred shard, then the
        rest of ``shards``. ``instance`` stands in when the config names none (simulate)."""
        if self.url:
            return list(self.url)
        slug = self.instance or instance
        if slug is None:
            return []
        order = [self.shard] if self.shard else []
        order += [s for s in self.shards if s != self.shard]
        urls = [self.url_template.format(shard=s, instance=slug) for s in order]
        return list(dict.fromkeys(urls))
