"""discord.py, imported once for the transport's modules.

Its voice module imports the deprecated ``audioop`` (voice is not used here): the warning is
silenced where the import happens, not process-wide.
"""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    import discord.gateway
    import discord.http

__all__ = ["discord"]
