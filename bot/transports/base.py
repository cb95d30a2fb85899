"""The interface every transport implements."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import Bot


class Transport(abc.ABC):
    """A chat platform connection: delivers incoming messages to the bot and sends out text."""

    #: "console", "discord", "telegram", ...
    platform: str = ""
    #: longest message the platform accepts; longer text is split by :func:`split_message`
    max_length: int = 4000

    def __init__(self) -> None:
        self.state = "stopped"
        self.reason = ""

    @abc.abstractmethod
    async def start(self, bot: Bot) -> None:
        """Connect and begin delivering messages; must return once running (not block)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect; safe to call twice."""

    @abc.abstractmethod
    async def send(self, chat_id: str, text: str) -> None:
        """Send unsolicited text (alerts) to a chat."""

    def status(self) -> tuple[str, str]:
        return self.state, self.reason


def split_message(text: str, limit: int) -> list[str]:
    """Split at line breaks where possible, so no message exceeds the platform's limit."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            parts.append(line[:cut])
            line = line[cut:].lstrip(" ")
        if len(current) + len(line) > limit:
            parts.append(current)
            current = ""
        current += line
    if current:
        parts.append(current)
    return [p.rstrip("\n") for p in parts if p.strip()]
