"""ChatWars (CW API v0.5 over AMQP): account linking, profile, stock, payments, market alerts.

The protocol client lives in ``client.py`` and the local stand-in for the game in
``simulator.py``; the chat commands are added on top of them once the core's command API exists.
"""
