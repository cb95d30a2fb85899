"""The ``chatwars`` config section.

Checked when the config is loaded, so a mistyped URL or app name shows up in
``bot check-config`` with its key, not at the first payout. ``amqp_url`` carries the app's
broker password, so it is a secret and errors never repeat the input.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.backoff import backoff_delays
from bot.config import PluginConfig, StrictModel

from .antispam import OperationAsks
from .client import (
    DEFAULT_OPERATION_COOLDOWN,
    DEFAULT_RATE,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    ChatWarsClient,
)
from .feeds import DOCUMENTED_FEEDS, FeedKind
from .routing import check_app_name
from .simulator import ChatWarsSimulator
from .simworld import KNOWN_OPERATIONS, ChatWarsWorld

#: The app name the bundled simulator serves when ``app`` is not set.
SIMULATED_APP = "demo"
#: What to tell the bot's owner when no broker answers (the embedded default has none).
BROKER_HINT = (
    "start a local RabbitMQ (apt-get install rabbitmq-server, then rabbitmq-server; or "
    "docker run -p 5672:5672 rabbitmq:3) and point chatwars.amqp_url at it, or set "
    "chatwars.enabled: false"
)


class SimulatorSettings(StrictModel):
    """How the bundled simulator behaves with ``simulate: true``."""

    feed_interval: float = Field(
        5.0, ge=0, le=3600, description="Seconds between feed messages; 0 turns feeds off."
    )
    balance: int = Field(100_000, ge=0, description="The app's starting balance in gold.")
    seed: int | None = Field(None, description="Seed for codes, tokens and feed contents.")
    grant_all: bool = Field(
        False, description="New tokens may read profiles and stock without asking the player."
    )


class FeedSettings(StrictModel):
    """``feeds``: the AMQP feed queues of the app (the document's way), or the ChatWars digest
    service's Kafka topics ``<prefix><feed>`` (how public bots read them since 2020; no
    credentials). A plain list (``feeds: [deals, offers]``) is the AMQP source with those."""

    model_config = ConfigDict(extra="forbid", validate_default=True, hide_input_in_errors=True)

    source: Literal["amqp", "kafka"] = Field(
        "amqp", description="amqp: the app's queues <app>_<feed>; kafka: <prefix><feed> topics."
    )
    bootstrap: str | None = Field(
        None,
        description="Kafka brokers, host:port[,host:port] (required with source: kafka; "
        "public bots use the digest service, digest-api.chtwrs.com:9092).",
    )
    prefix: str = Field("cw3-", description="Kafka topic prefix (cw3- for the current game).")
    kinds: list[FeedKind] | None = Field(
        None,
        description="Feeds to read: deals, offers, sex_digest, yellow_pages, duels, au_digest "
        "(default: the document's four with amqp, all six with kafka).",
    )
    group_id: str | None = Field(
        None, description="Kafka consumer group; none (the default) reads every partition."
    )
    offset_reset: Literal["latest", "earliest"] = Field(
        "latest", description="Kafka: where a new reader starts (latest: only new messages)."
    )

    @field_validator("kinds", mode="before")
    @classmethod
    def _kind_names(cls, kinds: object) -> object:
        if isinstance(kinds, list):
            known = {kind.value for kind in FeedKind}
            for name in kinds:
                if name not in known:
                    raise ValueError(
                        f"unknown feed {str(name)[:40]!r}: choose from {', '.join(sorted(known))}"
                    )
        return kinds

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap(cls, bootstrap: str | None) -> str | None:
        if bootstrap is None:
            return None
        hosts = [h.strip() for h in bootstrap.split(",") if h.strip()]
        for host in hosts:
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{host[:60]!r} is not host:port (e.g. 127.0.0.1:9092)")
        if not hosts:
            raise ValueError("no host:port given")
        return ",".join(hosts)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{0,100}", prefix):
            raise ValueError("a Kafka topic prefix holds only letters, digits, '.', '_', '-'")
        return prefix

    @model_validator(mode="after")
    def _kafka_needs_bootstrap(self) -> Self:
        if self.source == "kafka" and self.bootstrap is None:
            raise ValueError(
                "bootstrap is required with source: kafka (host:port of the Kafka brokers)"
            )
        return self

    @property
    def selected(self) -> list[FeedKind]:
        """The feeds this bot reads."""
        if self.kinds is not None:
            return list(dict.fromkeys(self.kinds))
        return list(FeedKind) if self.source == "kafka" else list(DOCUMENTED_FEEDS)

    @property
    def amqp_kinds(self) -> list[FeedKind]:
        """The feeds the AMQP client consumes (none when Kafka is the source)."""
        return self.selected if self.source == "amqp" else []


class ChatWarsConfig(PluginConfig):
    """``amqp_url``, ``app`` and ``test_mode`` (the stable keys), plus limits and timings.

    ``app`` is required unless ``simulate: true`` (the simulator then serves ``demo``).
    """

    model_config = ConfigDict(hide_input_in_errors=True, allow_inf_nan=False)

    amqp_url: SecretStr = Field(
        SecretStr(DEFAULT_URL),
        description="Broker URL with the app's login; production: amqps://APP:PASSWORD@"
        "api.chatwars.me:5673/",
    )
    app: str | None = Field(None, description="The app name ChatWars registered.")
    test_mode: bool = Field(False, description="Use the <app>_to / <app>_ti test queues.")
    timeout: float = Field(
        DEFAULT_TIMEOUT, gt=0, le=120, description="Seconds to wait for each answer."
    )
    max_requests_per_second: float = Field(
        DEFAULT_RATE,
        gt=0,
        le=30,
        description="Our send rate cap (public clients stay near 30 per second).",
    )
    feeds: FeedSettings = Field(
        default_factory=lambda: FeedSettings(),
        description="Where the market feeds come from (source: amqp | kafka) and which are read.",
    )
    operation_cooldown: float = Field(
        DEFAULT_OPERATION_COOLDOWN,
        ge=0,
        le=7 * 24 * 3600,
        description="Seconds before a player may be asked again for the same permission.",
    )
    payment_expiry: float = Field(
        300.0, gt=0, le=24 * 3600, description="Seconds a payment waits for its confirmation."
    )
    payout_attempts: int = Field(
        1,
        ge=1,
        le=5,
        description="Times a payout is sent (with the same transactionId) before its outcome "
        "is reported unknown. 1 (the default): never re-sent by itself; an unanswered payout "
        "stays unknown until its late reply or an admin's cw retry.",
    )
    link_codes_per_player: int = Field(
        2,
        ge=1,
        le=20,
        description="Link codes (cw link) the game may send one Telegram id per "
        "link_code_window; stored, so a restart does not reset it.",
    )
    link_code_window: float = Field(
        3600.0, gt=0, le=7 * 24 * 3600, description="Seconds of the link_codes_per_player window."
    )
    alert_interval: float = Field(
        60.0, gt=0, le=24 * 3600, description="Seconds over which feed alerts are coalesced."
    )
    reconnect_min_delay: float = Field(
        0.2, gt=0, le=60, description="First delay before reconnecting, in seconds."
    )
    reconnect_max_delay: float = Field(
        15.0, gt=0, le=600, description="Longest delay between reconnect attempts, in seconds."
    )
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, url: SecretStr) -> SecretStr:
        text = url.get_secret_value().strip()
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - reading it validates it
        except ValueError:
            raise ValueError("the port in the URL is not a number from 0 to 65535") from None
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ValueError(
                "not an amqp:// or amqps:// URL (for example amqps://APP:PASSWORD@"
                "api.chatwars.me:5673/)"
            )
        return SecretStr(text)

    @field_validator("app")
    @classmethod
    def _app(cls, app: str | None) -> str | None:
        return None if app is None else check_app_name(app.strip())

    @field_validator("feeds", mode="before")
    @classmethod
    def _feed_list(cls, feeds: object) -> object:
        """``feeds: [deals, offers]`` (the older form) is the AMQP source with those feeds."""
        if isinstance(feeds, list):
            return {"source": "amqp", "kinds": feeds}
        return feeds

    @model_validator(mode="after")
    def _app_needed(self) -> Self:
        alerts_only = self.feeds.source == "kafka"  # Kafka feeds need no app registration
        if self.enabled and not self.simulate and self.app is None and not alerts_only:
            raise ValueError("app is required: the app name ChatWars registered for this bot")
        if self.reconnect_min_delay > self.reconnect_max_delay:
            raise ValueError("reconnect_min_delay is larger than reconnect_max_delay")
        return self

    @property
    def app_name(self) -> str:
        return self.app or SIMULATED_APP

    @property
    def has_app(self) -> bool:
        """False when only the Kafka market feeds are used (no app registered, no AMQP)."""
        return self.simulate or self.app is not None

    def new_client(self, *, asks: OperationAsks | None = None) -> ChatWarsClient:
        """A client configured from this section (not started); ``asks`` keeps its
        permission requests (the plugin passes the stored one)."""
        return ChatWarsClient(
            self.amqp_url.get_secret_value(),
            self.app_name,
            test_mode=self.test_mode,
            timeout=self.timeout,
            max_rate=self.max_requests_per_second,
            feeds=self.feeds.amqp_kinds,
            operation_cooldown=self.operation_cooldown,
            reconnect_delays=partial(
                backoff_delays, self.reconnect_min_delay, self.reconnect_max_delay
            ),
            asks=asks,
        )

    def new_simulator(self) -> ChatWarsSimulator:
        """The bundled simulator for ``simulate: true``, on the broker of ``amqp_url``."""
        settings = self.simulator
        world = ChatWarsWorld(
            seed=settings.seed,
            balance=settings.balance,
            initial_operations=KNOWN_OPERATIONS if settings.grant_all else (),
        )
        return ChatWarsSimulator(
            self.amqp_url.get_secret_value(),
            self.app_name,
            world=world,
            feed_interval=settings.feed_interval or None,
        )
