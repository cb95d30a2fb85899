"""Tolerant readers for values in ChatWars JSON.

The API is documented as "highly unstable" and its examples are not always valid JSON, so a
field that should be a number may arrive as a numeric string. These helpers accept what a
lenient reader would and reject the rest with :class:`FormatProblem`, which callers turn into a
logged-and-dropped message or a :class:`ProtocolError`, never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FormatProblem(ValueError):
    """A message is not shaped as documented; the text names the field for the log."""


def as_int(value: Any, field: str) -> int:
    """An integer from an int or a string of digits; bools and fractions are refused."""
    if isinstance(value, bool):
        raise FormatProblem(f"{field} is a boolean, not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise FormatProblem(f"{field} is not a whole number: {value!r:.40}")


def optional_int(value: Any, field: str) -> int | None:
    return None if value is None else as_int(value, field)


def as_str(value: Any, field: str) -> str:
    """A string; numbers are accepted as their text (ids sometimes arrive as numbers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise FormatProblem(f"{field} is not a string: {value!r:.40}")


def as_mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FormatProblem(f"{field} is not an object")
    return value


def as_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise FormatProblem(f"{field} is not a list")
    return value


def require(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data or data[key] is None:
        raise FormatProblem(f"{where}.{key} is missing")
    return data[key]
