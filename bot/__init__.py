"""A chat-bot core for Discord, Telegram and the console, with one plugin per outside API.

What a plugin needs is importable from here::

    from bot import Context, command, hookimpl
"""

from .alerts import Topic, subscription_command
from .backoff import backoff_delays
from .commands import Command, Cooldown, Permission, Rest, UserRef, command
from .config import PluginConfig, StrictModel
from .context import Context
from .errors import (
    BotError,
    ConfigError,
    NotConnected,
    PermissionDenied,
    ServiceError,
    ServiceTimeout,
    UsageError,
    UserError,
)
from .hookspecs import hookimpl
from .links import link_trusted
from .messages import Reply
from .plugins import Health, PluginRuntime
from .simulation import Simulator
from .store import LedgerEntry, Link, LinkTaken, Proof, Store
from .text import clip

__version__ = "0.1.0"

__all__ = [
    "BotError",
    "Command",
    "ConfigError",
    "Context",
    "Cooldown",
    "Health",
    "LedgerEntry",
    "Link",
    "LinkTaken",
    "NotConnected",
    "Permission",
    "PermissionDenied",
    "PluginConfig",
    "PluginRuntime",
    "Proof",
    "Reply",
    "Rest",
    "ServiceError",
    "ServiceTimeout",
    "Simulator",
    "Store",
    "StrictModel",
    "Topic",
    "UsageError",
    "UserError",
    "UserRef",
    "backoff_delays",
    "clip",
    "command",
    "hookimpl",
    "link_trusted",
    "subscription_command",
]
