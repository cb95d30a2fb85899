"""Outgoing text for Telegram: HTML escaping and splitting at the 4096-character limit.

Replies are sent with ``parse_mode=HTML`` so the transport can add markup of its own, which
means every piece of text that came from users or plugins must be escaped first: a user named
``<b>evil</b> & co`` would otherwise make Telegram refuse the whole reply ("can't parse
entities"). The limit counts the text *after* entity parsing, so splitting happens on the plain
text and each part is escaped afterwards; Telegram measures in UTF-16 code units, where an
emoji counts twice, so parts are checked in those units too.
"""

from __future__ import annotations

import html

from ..base import split_message

#: Telegram's limit for one message's text (MessageLimit.MAX_TEXT_LENGTH)
MAX_LENGTH = 4096


def to_html(text: str) -> str:
    """Escape plain text for ``parse_mode=HTML``; only ``<``, ``>`` and ``&`` are special."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_LENGTH) -> list[str]:
    """Parts of ``text`` that each fit one message; empty parts (Telegram refuses them) dropped."""
    parts: list[str] = []
    for part in split_message(text, limit):
        if utf16_len(part) <= limit:
            parts.append(part)
            continue
        # Astral characters (most emoji) count twice: cut with a lower code-point limit.
        cut = len(part) * limit // utf16_len(part)
        while True:
            pieces = split_message(part, max(1, cut))
            if all(utf16_len(p) <= limit for p in pieces):
                parts.extend(pieces)
                break
            cut = max(1, cut * 9 // 10)
    return [p for p in parts if p.strip()]
