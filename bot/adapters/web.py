"""The bot's HTTP side (aiohttp.web on PORT): `/healthz` now; the API callback receiver later.

Heroku-style hosts only route HTTP to `web` processes and restart one that does not bind $PORT,
so the bot always serves this.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

HealthProbe = Callable[[], Awaitable[dict[str, Any]]]


class WebServer:
    """Serves `GET /healthz`: 200 when every check in the probe's answer is true, else 503."""

    def __init__(self, health: HealthProbe) -> None:
        self._health = health
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Bind and serve in the background."""
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("web server listening on %s:%s", host, self.port)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        checks = await self._health()
        healthy = all(v for k, v in checks.items() if isinstance(v, bool))
        return web.json_response(
            {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
        )
