"""Text from outside the bot, made safe to echo in chat.

Names, ranks and error messages come from the APIs and from chat users, and a hostile server can
send 100 KB of them. Every reply that echoes such text passes it through :func:`clip` first, so a
chat never receives more than a line of it and the reader can see that something was cut.
"""

from __future__ import annotations

#: What :func:`clip` appends when it cuts: visible, one character.
MARK = "…"

#: The default length for one echoed value (a name, a rank, an API's error message).
DEFAULT_LIMIT = 200


def clip(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as text of at most ``limit`` characters, ending in ``…`` when it was cut.

    Control characters other than newline and tab become spaces, so an API cannot clear or
    rewrite a console line through a name.

    Example::

        >>> clip("x" * 1000, 10)
        'xxxxxxxxx…'
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: max(limit - len(MARK), 0)] + MARK
    if not text.isprintable():
        text = "".join(c if c.isprintable() or c in "\n\t" else " " for c in text)
    return text
