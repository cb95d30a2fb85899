"""Running the bot as a service: metrics, the health endpoint, readiness.

Nothing here is imported, and nothing listens, unless ``bot.metrics.listen`` is configured:
:func:`start_ops` is the one entry point the bot calls, and it imports aiohttp and
``prometheus_client`` only when there is something to serve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import Bot
    from .server import OpsServer


async def start_ops(bot: Bot) -> OpsServer | None:
    """Start the metrics and health listener if configured; None when metrics are off."""
    listen = bot.settings.bot.metrics.listen
    if not listen:
        return None
    from .server import OpsServer

    host, port = bot.settings.bot.metrics.address()
    server = OpsServer(bot, host, port)
    await server.start()
    return server
