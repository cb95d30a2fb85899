"""Rooms plugin: a chat user's presence in a VS Media performer's room, kept alive, with credits.

Phase 1 holds the protocol side only: ``client`` (the HTTP customer API), ``presence`` (the
10-second keep-alive per performer and customer), ``simulator`` (a local server speaking the
same wire format) and ``config``. The chat commands are added on top of these later.
"""
