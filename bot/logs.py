"""Log output: text for people, one JSON object per line for log collectors.

``bot --log-format json`` writes each record as ``{"time", "level", "logger", "plugin",
"message", "error_id"}`` (plus ``exception`` with the traceback), so journald, Loki or an
ELK stack can index the plugin and find the log line of the error id a user quotes from chat.

Secrets are masked in both formats by the bot's secret filter (see ``bot.app.SecretFilter``),
in the message and, here, also in tracebacks: an exception text can carry a URL with a
password or an API's echo of a key.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")

#: the dispatcher's apology says "(error id 1a2b3c4d)"; other code may log the same words
_ERROR_ID = re.compile(r"\berror id ([0-9a-f]{6,32})\b")
#: loggers of plugins: the runtime's ``bot.plugin.<name>`` and bundled modules' own names
_PLUGIN_LOGGER = re.compile(r"^(?:bot\.plugin|bot_plugins|plugins)\.([A-Za-z0-9_]+)")


def setup_logging(level: str, fmt: str = "text") -> None:
    """Log to stderr at ``level`` ("debug", "info", ...) in ``fmt`` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ScrubbingFormatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.WARNING), handlers=[handler])
    # Library chatter (reconnect attempts of aio-pika, discord.py's gateway) stays at warning.
    for noisy in ("aio_pika", "aiormq", "websockets", "discord", "telegram", "httpx", "aiohttp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def scrub(text: str) -> str:
    """``text`` with every secret masked that a filter on the root logger knows about."""
    for f in logging.getLogger().filters:
        scrubber = getattr(f, "scrub", None)
        if scrubber is not None:
            text = scrubber(text)
    return text


class ScrubbingFormatter(logging.Formatter):
    """The text format, with secrets masked in tracebacks too."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the keys are always present (null when unknown)."""

    def format(self, record: logging.LogRecord) -> str:
        message = scrub(record.getMessage())
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "plugin": plugin_of(record),
            "message": message,
            "error_id": getattr(record, "error_id", None) or _error_id(message),
        }
        if record.exc_info:
            data["exception"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            data["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(data, ensure_ascii=False, default=str)


def plugin_of(record: logging.LogRecord) -> str | None:
    """The plugin a record is about: given by the caller, by the logger's name, or the
    plugin whose task was running when it was logged."""
    given = getattr(record, "plugin", None)
    if given:
        return str(given)
    match = _PLUGIN_LOGGER.match(record.name)
    if match:
        return match.group(1)
    plugins = sys.modules.get("bot.plugins")  # not imported: no plugin can be running
    current = getattr(plugins, "current_plugin", None)
    runtime = current() if current is not None else None
    return getattr(runtime, "name", None)


def _error_id(message: str) -> str | None:
    match = _ERROR_ID.search(message)
    return match.group(1) if match else None
