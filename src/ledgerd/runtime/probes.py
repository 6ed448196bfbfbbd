"""The operations port of every process: ``/metrics``, ``/healthz`` and ``/readyz``.

Every process serves it, whatever its roles, so a relay-, consumer- or
cache-updater-only process can be probed and scraped like an API process.
``/healthz`` answers liveness (200 unless a supervised component is down or
stalled), ``/readyz`` readiness (200 when the process can do its roles now,
see ``ledgerd.runtime.health``); both return the components as JSON, so
``ledgerd health --probe host:port`` shows them. ``/`` is the operator's page
(``ledgerd.console``), when the process gives one. Other paths get 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ledgerd.runtime.health import Health

if TYPE_CHECKING:
    from ledgerd.console.web import ConsoleRoutes

HealthSource = Callable[[], Awaitable[Health]]


class ProbeServer:
    """An aiohttp server on the metrics address, run on the process's event loop."""

    def __init__(
        self, address: str, health: HealthSource, console: ConsoleRoutes | None = None
    ) -> None:
        host, _, port = address.rpartition(":")
        self._host, self._port = host, int(port)
        self._health = health
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._liveness)
        app.router.add_get("/readyz", self._readiness)
        self._console = console
        if console is not None:
            console.add_to(app)
        self._runner = web.AppRunner(app, access_log=None)
        self.port = 0

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        if self._console is not None:
            self._console.start()

    async def stop(self) -> None:
        if self._console is not None:
            await self._console.stop()  # ends open event streams, which cleanup waits for
        await self._runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _liveness(self, _: web.Request) -> web.Response:
        health = await self._health()
        return _answer(health, health.live)

    async def _readiness(self, _: web.Request) -> web.Response:
        health = await self._health()
        return _answer(health, health.serving)


def _answer(health: Health, ok: bool) -> web.Response:
    body = {
        "status": "SERVING" if ok else "NOT_SERVING",
        "live": health.live,
        "ready": health.ready,
        "components": dict(health.components),
    }
    return web.Response(
        status=200 if ok else 503, text=json.dumps(body), content_type="application/json"
    )
