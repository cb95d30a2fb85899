"""Transports turn a platform's messages into :class:`bot.messages.Message` and back.

Each lives in its own module and is imported only when enabled, so a console-only bot never
pays for importing discord.py or python-telegram-bot.
"""
