"""The Telegram transport (python-telegram-bot), imported only when it is enabled.

See :mod:`.commands` for how multi-word commands map onto Telegram's one-word commands and
menus, :mod:`.ratelimit` for flood limits, and :mod:`.transport` for the connection.
"""

from .transport import TelegramTransport

__all__ = ["TelegramTransport"]
