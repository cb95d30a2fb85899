"""ConcertPOS frames as bytes on the wire: encoding requests, reading replies defensively.

Kept apart from the connection because it is pure and every rule here is about hostile
input: a frame can be huge (websockets' ``max_size`` stops it before it reaches us), nested
deeply enough to exhaust the parser's recursion (checked here before parsing, cheaply), or
not JSON at all. Each failure is a :class:`BadFrame` with a short reason for one log line;
none carries the frame's text, which may hold anything the server chose to send.

The service reads JSON5 when the connection URL says ``Content-Type=json5`` (the vendor's
client connects that way and encodes with ``JSON5.stringify``, and the service has an
``invalid_json5`` error); we then send JSON5 and accept JSON5 replies too. Plain JSON is
always tried first: it is valid JSON5 and the fast path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import json5

#: deeper than any reply the API sends (transactions are four levels deep)
MAX_DEPTH = 32
#: the JSON5 parser is pure Python: larger frames are refused rather than parsed slowly
MAX_JSON5_CHARS = 1_000_000

#: string literals (skipped: brackets inside them do not nest) and brackets
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[\[\]{}]', re.DOTALL)


class BadFrame(ValueError):
    """A frame that cannot be read as a message; ``reason`` is fit for one log line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def wants_json5(url: str) -> bool:
    """Whether a gateway URL asks for JSON5 (``...?instance=SLUG&Content-Type=json5``)."""
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return False
    return any(value.strip().lower() == "json5" for value in query.get("Content-Type", []))


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether brackets outside string literals nest deeper than ``limit``.

    Counting brackets first keeps the common case (a small reply) to two C-speed scans.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def decode(raw: str | bytes, *, json5_mode: bool = False) -> Any:
    """The parsed frame (any JSON value), or :class:`BadFrame` saying why not."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadFrame("a binary frame that is not UTF-8 text") from None
    if too_deep(raw):
        raise BadFrame(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        if not json5_mode:
            raise BadFrame("a frame that is not JSON") from None
    if len(raw) > MAX_JSON5_CHARS:
        raise BadFrame("a frame that is not JSON and too large to read as JSON5")
    try:
        return json5.loads(raw)
    except (ValueError, RecursionError, TypeError):
        raise BadFrame("a frame that is neither JSON nor JSON5") from None


def encode(command: str, parameters: Mapping[str, Any], *, json5_mode: bool = False) -> str:
    """One request frame: the doc's ``{"command", "parameters"}`` template."""
    message = {"command": command, "parameters": dict(parameters)}
    if json5_mode:
        return json5.dumps(message, separators=(",", ":"))
    return json.dumps(message, separators=(",", ":"))
