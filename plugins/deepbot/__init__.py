"""DeepBot: viewer points, watch hours, rank, VIP and escrow from chat.

The protocol client (``client.py``), its wire format (``protocol.py``), typed results
(``models.py``), errors (``errors.py``), config model (``config.py``) and local simulator
(``simulator.py``) live beside this file; the chat commands are added here once the core's
command API exists.
"""
