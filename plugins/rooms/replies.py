"""Reading and writing the API's reply bodies.

The API labels its bodies ``text/xml`` but sends JavaScript-style object literals with unquoted
keys (``{ success: true, message: "..." }``); some deployments send real JSON. We accept both,
plus what such hand-written encoders tend to produce: single-quoted strings, trailing commas,
comments, a trailing semicolon, and bare words as values (``message: Invalid key``). Whatever
does not fit is a :class:`ReplyFormatError`, never a guess.
"""

from __future__ import annotations

import json
from typing import Any

from .models import RoomsReply


class ReplyFormatError(ValueError):
    """The body is not a reply we can read; the text says where it went wrong."""


_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None, "undefined": None}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_MAX_DEPTH = 20


class _Reader:
    """A recursive-descent reader for one relaxed object literal."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> ReplyFormatError:
        return ReplyFormatError(f"{what} at offset {self.pos}")

    def skip_space(self) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated comment")
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def value(self, depth: int, bare_ok: bool) -> Any:
        if depth > _MAX_DEPTH:
            raise self.fail("nested too deeply")
        ch = self.peek()
        if ch == "{":
            return self.obj(depth + 1)
        if ch == "[":
            return self.array(depth + 1)
        if ch in "\"'":
            return self.string(ch)
        if not ch:
            raise self.fail("missing value")
        start = self.pos
        word = self.word()
        ends = self.peek() in ("", ",", "}", "]")
        if word in _LITERALS and (ends or not bare_ok):
            return _LITERALS[word]
        number = _number(word)
        if number is not None and (ends or not bare_ok):
            return number
        if not bare_ok:
            raise self.fail(f"unexpected {self.text[start : start + 10]!r}")
        # A bare, unquoted text value: runs to the next top-level ',' or '}'.
        self.pos = start
        end = self.pos
        while end < len(self.text) and self.text[end] not in ",}\n":
            end += 1
        raw = self.text[start:end].strip()
        if not raw:
            raise self.fail("missing value")
        self.pos = end
        return raw

    def word(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and (
            self.text[self.pos].isalnum() or self.text[self.pos] in "_$+-."
        ):
            self.pos += 1
        return self.text[start : self.pos]

    def key(self) -> str:
        ch = self.peek()
        if ch in "\"'":
            return self.string(ch)
        key = self.word()
        if not key:
            raise self.fail("expected a key")
        return key

    def obj(self, depth: int) -> dict[str, Any]:
        self.pos += 1  # '{'
        result: dict[str, Any] = {}
        while True:
            if self.peek() == "}":
                self.pos += 1
                return result
            key = self.key()
            if self.peek() != ":":
                raise self.fail(f"expected ':' after key {key!r}")
            self.pos += 1
            result[key] = self.value(depth, bare_ok=True)
            sep = self.peek()
            if sep == ",":
                self.pos += 1
            elif sep == "}":
                self.pos += 1
                return result
            else:
                raise self.fail("expected ',' or '}'")

    def array(self, depth: int) -> list[Any]:
        self.pos += 1  # '['
        items: list[Any] = []
        while True:
            if self.peek() == "]":
                self.pos += 1
                return items
            items.append(self.value(depth, bare_ok=False))
            sep = self.peek()
            if sep == ",":
                self.pos += 1
            elif sep == "]":
                self.pos += 1
                return items
            else:
                raise self.fail("expected ',' or ']'")

    def string(self, quote: str) -> str:
        text = self.text
        self.pos += 1
        out: list[str] = []
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == quote:
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                if self.pos + 1 >= len(text):
                    break
                esc = text[self.pos + 1]
                if esc == "u":
                    digits = text[self.pos + 2 : self.pos + 6]
                    try:
                        out.append(chr(int(digits, 16)))
                    except ValueError:
                        raise self.fail("bad \\u escape") from None
                    self.pos += 6
                    continue
                out.append(_ESCAPES.get(esc, esc))
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        raise self.fail("unterminated string")


def _number(word: str) -> int | float | None:
    try:
        return int(word)
    except ValueError:
        pass
    try:
        value = float(word)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _relaxed(body: str) -> dict[str, Any]:
    reader = _Reader(body)
    if reader.peek() != "{":
        raise ReplyFormatError("the body is not an object literal")
    data = reader.obj(1)
    if reader.peek():
        raise reader.fail("unexpected text after the object")
    return data


def parse_literal(text: str) -> dict[str, Any]:
    """Parse a reply body (JSON or the relaxed literal) into a dict, or raise."""
    body = text.lstrip("\ufeff").strip()
    if body.endswith(";"):
        body = body[:-1].rstrip()
    try:
        data = json.loads(body)
    except ValueError:
        data = _relaxed(body)
    if not isinstance(data, dict):
        raise ReplyFormatError("the body is not an object")
    return data


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ReplyFormatError(f"'success' is neither true nor false: {value!r}")


def parse_reply(text: str) -> RoomsReply:
    """Parse a body into a :class:`RoomsReply`; ``success`` must be present and boolean-like."""
    data = parse_literal(text)
    if "success" not in data:
        raise ReplyFormatError("the reply has no 'success' field")
    message = data.get("message")
    return RoomsReply(
        success=_flag(data["success"]),
        message="" if message is None else str(message),
        fields=data,
    )


def _js_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def format_relaxed(fields: dict[str, Any]) -> str:
    """Write a reply the way the API documents it: ``{ success: true, message: "" }``."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value)
        else:
            text = _js_string(str(value))
        parts.append(f"{key}: {text}")
    return "{ " + ", ".join(parts) + " }"
