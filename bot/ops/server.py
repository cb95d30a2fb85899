"""The operator's listener: ``/metrics``, ``/healthz`` and ``/readyz`` on ``bot.metrics.listen``.

aiohttp (already installed with discord.py) serves them on the bot's own event loop. That is
the point of ``/healthz``: it can only answer while the loop runs, so a supervisor that gets no
answer in time knows the process is wedged, not just that a socket is open.

- ``/healthz``: 200 ``{"status": "ok"}`` while the loop runs (503 while starting or stopping).
- ``/readyz``: 200 when every enabled plugin and transport is up, else 503 with a JSON body
  naming what is not up and why, in the words of the ``status`` command.
- ``/metrics``: the Prometheus text format.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .. import metrics
from .instruments import Instruments
from .readiness import components

if TYPE_CHECKING:
    from ..app import Bot

log = logging.getLogger(__name__)


class OpsServer:
    """Metrics and health on one ``host:port``; owns the bot's :class:`Instruments`."""

    def __init__(self, bot: Bot, host: str, port: int) -> None:
        self.bot = bot
        self.host = host
        self.port = port
        #: "starting" until the bot finished starting, "running", then "stopping"
        self.phase = "starting"
        self.instruments = Instruments(bot)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(f"bot.metrics.listen {self.host}:{self.port}: {exc.strerror}") from exc
        self._runner = runner
        if runner.addresses:
            self.port = runner.addresses[0][1]  # port 0 picked a free one
        metrics.install(self.instruments)
        log.info("metrics and health on %s", self.url)

    def running(self) -> None:
        self.phase = "running"

    def stopping(self) -> None:
        self.phase = "stopping"

    async def stop(self) -> None:
        self.phase = "stopping"
        metrics.uninstall(self.instruments)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------ handlers

    async def _healthz(self, request: web.Request) -> web.Response:
        body = {"status": "ok" if self.phase == "running" else self.phase}
        body["uptime_seconds"] = round(time.monotonic() - self.bot.started_at, 1)
        return _json(body, 200 if self.phase == "running" else 503)

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.phase != "running":
            return _json({"ready": False, "phase": self.phase, "not_ready": []}, 503)
        found = await components(self.bot)
        down = [c for c in found if not c.ok]
        body = {
            "ready": not down,
            "not_ready": [c.to_dict() for c in down],
            "status": [c.line() for c in found],
        }
        return _json(body, 503 if down else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        found = await components(self.bot) if self.phase == "running" else []
        return web.Response(
            body=self.instruments.render(found), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def _json(body: dict[str, Any], status: int) -> web.Response:
    return web.Response(
        text=json.dumps(body) + "\n", status=status, content_type="application/json"
    )
