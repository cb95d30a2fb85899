"""Games plugin (Instamrkt live prediction games).

Phase 1 holds the protocol client (``client.py``), its local simulator (``simulator.py``) and
the config model (``config.py``); the chat commands that sit on top of the client come later,
once the core's command API exists.
"""
