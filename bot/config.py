"""Configuration: YAML in, validated settings out.

Why the extra work over ``yaml.safe_load`` + ``Model(**data)``: a bot that starts with a typo in
its config silently does the wrong thing in front of a whole community. So unknown keys are
errors, every error names its dotted path *and its line in the file*, ``${VAR}`` placeholders
keep secrets out of the file, and a secret's value never appears in any message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a config file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)


class PluginConfig(StrictModel):
    """Keys every plugin section accepts; a plugin's own model subclasses this.

    Mark secrets with ``pydantic.SecretStr`` so they are never printed, also not in errors.
    """

    enabled: bool = True
    simulate: bool = False
    #: who makes a claimed link count (bot/links.py): ``admins`` approve each claim, ``none``
    #: trusts members' claims. A plugin may declare another default in its subclass.
    link_approval: Literal["admins", "none"] = "admins"
    #: in a cluster (bot.cluster): ``one_worker`` runs the plugin on one worker at a time,
    #: which owns its outside connection (a websocket, a reply queue, presence pings), and
    #: the others forward its commands there; ``every_worker`` runs it on each worker, for a
    #: plugin whose API needs nothing unique (plain HTTP calls). Ignored in one process.
    run_on: Literal["one_worker", "every_worker"] = "one_worker"


def _ids(value: Any) -> list[str]:
    """User ids arrive as YAML ints or strings; compare them as strings everywhere."""
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    return [str(v) for v in value]


class PlatformIds(StrictModel):
    """User ids per platform, e.g. ``admins: {discord: [123], telegram: [456]}``."""

    discord: list[str] = Field(default_factory=list)
    telegram: list[str] = Field(default_factory=list)
    console: list[str] = Field(default_factory=list)

    _coerce = field_validator("discord", "telegram", "console", mode="before")(
        lambda cls, v: _ids(v)
    )

    def get(self, platform: str) -> list[str]:
        return list(getattr(self, platform, []) or [])


class MetricsSection(StrictModel):
    """``bot.metrics``: where to serve /metrics, /healthz and /readyz (off when unset)."""

    #: ``host:port`` (``[::1]:9464`` for IPv6; port 0 picks a free one)
    listen: str | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str | None) -> str | None:
        if v is not None:
            _host_port(v)
        return v

    def address(self) -> tuple[str, int]:
        assert self.listen is not None
        return _host_port(self.listen)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("must be host:port, like 127.0.0.1:9464")
    return host, int(port)


class ClusterSection(StrictModel):
    """``bot.cluster``: run as gateway and worker processes on RabbitMQ (off when unset).

    Every process of one cluster reads the same config file; ``name`` prefixes every exchange
    and queue it declares, so two clusters can share a broker.
    """

    #: ``amqp://user:password@host:port/vhost`` of the broker every process connects to
    amqp_url: SecretStr | None = None
    name: str = "bot"
    #: ingress partitions: commands of one chat always land in one, handled in order; more
    #: partitions spread chats over more workers and run more chats in parallel
    partitions: int = Field(default=16, ge=1, le=256)
    #: seconds between a process's heartbeats (``status`` forgets one silent for 3 of them)
    heartbeat: float = Field(default=2.0, gt=0, le=60)
    #: seconds of AMQP heartbeat: a process that hangs (not one that dies: that is seen at
    #: once) loses what it owns after about two of them; RabbitMQ calls 5-20 s optimal
    broker_heartbeat: int = Field(default=5, ge=1, le=60)
    #: most commands one worker runs at once (a command waiting for an answer does not count)
    concurrency: int = Field(default=64, ge=1, le=10_000)
    #: seconds a forwarded command may take at its plugin's owner before the worker gives up
    forward_timeout: float = Field(default=300.0, gt=0)

    @property
    def enabled(self) -> bool:
        """A broker is configured: this process is one of a cluster's."""
        return self.amqp_url is not None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", v):
            raise ValueError("must be letters, digits, '.', '_' or '-' (a queue name prefix)")
        return v

    def url(self) -> str:
        assert self.amqp_url is not None
        return self.amqp_url.get_secret_value()


class BotSection(StrictModel):
    name: str = "bot"
    prefix: str = "!"
    database: str = "bot.db"
    owners: PlatformIds = Field(default_factory=PlatformIds)
    admins: PlatformIds = Field(default_factory=PlatformIds)
    plugin_dirs: list[str] = Field(default_factory=list)
    #: seconds an ``ask`` waits for the user's answer before giving up
    ask_timeout: float = 120.0
    #: alert router: seconds a chat's alerts are gathered into one message
    alert_window: float = 2.0
    #: alert router: at most this many messages per chat per minute (bursts are coalesced)
    alert_chat_per_minute: int = 20
    #: alert router: at most this many alert messages per second over all chats
    alert_global_per_second: float = 25.0
    #: the operator's listener (metrics and health); nothing listens unless ``listen`` is set
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    #: gateway and worker processes on RabbitMQ; unset, the bot is one process
    cluster: ClusterSection = Field(default_factory=ClusterSection)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v):
            raise ValueError("must be a non-empty prefix without spaces, like '!'")
        return v


class ConsoleConfig(StrictModel):
    enabled: bool = True
    user_id: str = "console"
    name: str = "console"
    #: whoever holds the terminal runs the bot, so the console user is an admin by default
    admin: bool = True

    _coerce = field_validator("user_id", mode="before")(lambda cls, v: str(v))


class DiscordConfig(StrictModel):
    """``transports.discord``; the transport's module docstring explains the choices."""

    enabled: bool = False
    token: SecretStr | None = None
    #: register slash commands in these guilds (instant, for development); empty: globally
    guild_ids: list[int] = Field(default_factory=list)
    #: prefix commands need the privileged message-content intent; slash commands do not
    prefix_commands: bool = True
    #: AutoShardedClient when set; ``shard_ids`` picks this process's shards of ``shard_count``
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: list[int] | None = None
    #: REST base including the version path (https://proxy.example/api/v10); process-wide
    api_base: str | None = None
    #: gateway websocket URL (wss://proxy.example/); process-wide
    gateway_url: str | None = None
    #: seconds a confirmation's buttons stay live (at most; a command may ask for less)
    confirm_timeout: float = Field(default=60.0, gt=0)
    #: register slash commands when they changed; false leaves that to another process
    sync_commands: bool = True
    #: permission bits a member needs to see admin commands (default 32: Manage Server)
    admin_permissions: int = Field(default=32, ge=0, lt=2**53)
    #: seconds before a slow slash command is deferred ("thinking…"); Discord allows 3
    defer_after: float = Field(default=2.0, gt=0, lt=3)
    #: seconds discord.py waits after the last guild arrives before it reports ready
    guild_ready_timeout: float = Field(default=2.0, ge=0)
    #: seconds between shard logins (Discord's identify rate limit)
    shard_identify_delay: float = Field(default=5.0, ge=0)
    #: Discord's ``session_start_limit.max_concurrency``: identifies allowed per 5 s, one per
    #: bucket ``shard_id % max_concurrency``; a cluster's gateways take turns per bucket
    max_concurrency: int = Field(default=1, ge=1, le=1024)
    #: reconnect backoff: first delay and cap, in seconds
    reconnect_delay: float = Field(default=1.0, gt=0)
    reconnect_max_delay: float = Field(default=60.0, gt=0)
    #: seconds to wait for the login request before retrying
    connect_timeout: float = Field(default=30.0, gt=0)
    #: how often the slash commands are compared with the running ones (plugins reloaded)
    command_check_interval: float = Field(default=30.0, gt=0)

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, like https://host/api/v10")
        return v

    @field_validator("gateway_url")
    @classmethod
    def _gateway_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("ws://", "wss://")):
            raise ValueError("must be a ws:// or wss:// URL")
        return v

    @model_validator(mode="after")
    def _shards(self) -> DiscordConfig:
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("shard_ids needs shard_count")
            bad = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if bad or not self.shard_ids or len(set(self.shard_ids)) != len(self.shard_ids):
                raise ValueError(
                    f"shard_ids must be distinct numbers from 0 to {self.shard_count - 1}"
                )
        return self


class TelegramConfig(StrictModel):
    """The Telegram transport (python-telegram-bot). Timings are seconds.

    Defaults suit the real Bot API; tests shorten the timings to stay fast.
    """

    enabled: bool = False
    token: SecretStr | None = None
    #: a local Bot API server, e.g. ``http://127.0.0.1:8081/bot`` (the token is appended)
    base_url: str | None = None
    base_file_url: str | None = None
    #: also treat a group's own administrators as bot admins in that group
    chat_admins_are_admins: bool = False
    #: how long a group's administrator list is trusted before it is fetched again
    chat_admins_ttl: float = Field(default=60.0, ge=0)
    #: "polling" (default, works behind NAT) or "webhook" (Telegram connects to us)
    mode: str = "polling"
    #: long-poll length of each getUpdates call
    poll_timeout: float = Field(default=30.0, ge=0, le=50)
    #: the public https URL Telegram posts updates to (webhook mode)
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=0, le=65535)
    #: path served locally; default: the path of ``webhook_url``
    webhook_path: str | None = None
    #: checked on every webhook request; a random one is made per run when unset
    webhook_secret: SecretStr | None = None
    #: seconds a confirmation's buttons stay live at most (a command may ask for less)
    confirm_timeout: float = Field(default=60.0, gt=0)
    #: connect/read/write timeout of every Bot API call (getUpdates adds ``poll_timeout``)
    request_timeout: float = Field(default=10.0, gt=0)
    #: reconnect backoff while the Bot API cannot be reached
    reconnect_min: float = Field(default=1.0, gt=0)
    reconnect_max: float = Field(default=60.0, gt=0)
    #: flood limits applied on our side (Telegram: ~30 messages/s, 20/minute per group)
    rate_per_second: float = Field(default=30.0, ge=0)
    rate_group_per_minute: float = Field(default=20.0, ge=0)
    #: how often a 429 "retry after" is waited out and retried before a send gives up
    flood_retries: int = Field(default=3, ge=0, le=10)
    #: how often the command menu is compared with the running commands (plugins reload)
    menu_check_interval: float = Field(default=30.0, gt=0)

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in ("polling", "webhook"):
            raise ValueError("must be 'polling' or 'webhook'")
        return v

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", v.get_secret_value()):
            raise ValueError("may only hold 1-256 of the characters A-Z, a-z, 0-9, _ and -")
        return v

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> TelegramConfig:
        if self.mode == "webhook" and not self.webhook_url:
            raise ValueError("mode 'webhook' needs webhook_url (the URL Telegram posts to)")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must not be below reconnect_min")
        return self


class TransportsSection(StrictModel):
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    discord: DiscordConfig = Field(default_factory=DiscordConfig)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)


class Settings(StrictModel):
    """The whole file. ``plugins`` stays raw here: each plugin validates its own section."""

    bot: BotSection = Field(default_factory=BotSection)
    transports: TransportsSection = Field(default_factory=TransportsSection)
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("plugins", mode="before")
    @classmethod
    def _plugins(cls, v: Any) -> Any:
        if v is None:
            return {}
        if isinstance(v, dict):
            return {k: ({} if s is None else s) for k, s in v.items()}
        return v


# --------------------------------------------------------------------------- loading

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class LoadedConfig:
    """Validated settings plus what is needed to report plugin-section errors later."""

    settings: Settings
    path: Path | None = None
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    #: every plugin section validated so far (their secrets are masked in logs and status)
    validated: dict[str, PluginConfig] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        """Every SecretStr value in the settings and in the validated plugin sections."""
        return secret_values([self.settings, *self.validated.values()])

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def database_path(self) -> Path:
        db = Path(self.settings.bot.database)
        return db if db.is_absolute() or str(db) == ":memory:" else self.base_dir / db

    def plugin_section(self, name: str) -> dict[str, Any]:
        return dict(self.settings.plugins.get(name, {}))

    def validate_plugin(self, name: str, model: type[PluginConfig] | None) -> PluginConfig:
        """Validate one plugin's section against the model the plugin supplied."""
        model = model or PluginConfig
        try:
            config = model.model_validate(self.plugin_section(name))
        except ValidationError as exc:
            raise ConfigError(self.describe(exc, ("plugins", name))) from None
        self.validated[name] = config
        return config

    def describe(self, exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
        return format_errors(exc, self.lines, prefix, self.path)


def format_errors(
    exc: ValidationError,
    lines: Mapping[tuple[str, ...], int],
    prefix: tuple[str, ...] = (),
    path: Path | None = None,
) -> str:
    """One line per problem: ``file:line: dotted.path: message``; input values never shown."""
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = prefix + tuple(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        line = _line_for(loc, lines)
        where = f"{path.name if path else 'config'}:{line}: " if line else ""
        out.append(f"{where}{'.'.join(loc)}: {msg}")
    return "\n".join(out)


def _line_for(loc: tuple[str, ...], lines: Mapping[tuple[str, ...], int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _interpolate(text: str, env: Mapping[str, str], line: int, problems: list[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"line {line}: environment variable {name} is not set")
        return ""

    return _VAR.sub(sub, text)


def _walk(
    node: yaml.Node,
    path: tuple[str, ...],
    lines: dict[tuple[str, ...], int],
    env: Mapping[str, str],
    problems: list[str],
) -> Any:
    """Build plain data from a YAML node tree, recording each key's line and expanding ${VAR}."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, (*path, key), lines, env, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _walk(item, (*path, str(i)), lines, env, problems) for i, item in enumerate(node.value)
        ]
    assert isinstance(node, yaml.ScalarNode)
    value = node.value
    if node.tag == "tag:yaml.org,2002:str" and "${" in value:
        # Plain scalars are re-resolved after substitution so `port: ${PORT:-5672}` is an int.
        expanded = _interpolate(value, env, node.start_mark.line + 1, problems)
        if node.style is None:
            return yaml.safe_load(expanded) if expanded.strip() else None
        return expanded
    if node.tag == "tag:yaml.org,2002:str":
        return value
    return yaml.SafeLoader("").construct_object(node, deep=True)


def parse_config_text(
    text: str, *, path: Path | None = None, env: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Parse and validate; raises :class:`ConfigError` listing every problem at once."""
    env = os.environ if env is None else env
    name = path.name if path else "config"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}: " if mark else f"{name}: "
        raise ConfigError(f"{where}not valid YAML: {getattr(exc, 'problem', exc)}") from None
    lines: dict[tuple[str, ...], int] = {}
    problems: list[str] = []
    data = {} if root is None else _walk(root, (), lines, env, problems)
    if problems:
        raise ConfigError("\n".join(f"{name}: {p}" for p in problems))
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: the top level must be a mapping of sections")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, lines, (), path)) from None
    return LoadedConfig(settings=settings, path=path, lines=lines)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> LoadedConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    return parse_config_text(text, path=p.resolve(), env=env)


def config_from_dict(data: Mapping[str, Any], base_dir: Path | None = None) -> LoadedConfig:
    """Build settings in code (the test harness does this); same validation as a file."""
    try:
        settings = Settings.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, {})) from None
    loaded = LoadedConfig(settings=settings)
    if base_dir is not None:
        loaded.path = base_dir / "config.yaml"
    return loaded


def secret_values(models: Iterable[BaseModel]) -> list[str]:
    """Every SecretStr value in these models, so log filters can scrub them."""
    found: list[str] = []

    def visit(obj: Any) -> None:
        if isinstance(obj, SecretStr):
            v = obj.get_secret_value()
            if v:
                found.append(v)
        elif isinstance(obj, BaseModel):
            for name in type(obj).model_fields:
                visit(getattr(obj, name))
        elif isinstance(obj, dict):
            for v in obj.values():
                visit(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                visit(v)

    for m in models:
        visit(m)
    return found
