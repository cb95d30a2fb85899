"""ConcertPOS plugin: products, payment methods, POS sales, transactions and live updates.

This phase ships the protocol side only (``client``, ``simulator``, ``config``); the chat
commands are added on top of :class:`~.client.ConcertPOSClient` once the core's command API
exists, so nothing here may know about chat.
"""
