"""/healthz (the process answers) and /readyz (the database and Graph answer), on the app's port or on a port
of their own (TAPBOT_HEALTH_PORT)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.components import COMPONENTS


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


async def healthz(request: web.Request) -> web.Response:
    settings = request.app[COMPONENTS].settings
    return web.json_response({"status": "ok", "tenant": "sandbox" if settings.sandbox else "configured"})


async def health_site(app: web.Application) -> AsyncIterator[None]:
    """/healthz and /readyz on TAPBOT_HEALTH_PORT only: the platform's probes reach that port, the public ingress
    (which forwards PORT) does not."""
    components = app[COMPONENTS]
    health = web.Application()
    health[COMPONENTS] = components
    add_health_routes(health)
    runner = web.AppRunner(health, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, components.settings.host, components.settings.health_port).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when the database and Graph answer, else 503 naming what failed (no token needed)."""
    components = request.app[COMPONENTS]
    readiness = await components.readiness.check(components.store, components.graph)  # cached: no Graph per call
    return web.json_response(readiness.document(), status=200 if readiness.ready else 503)
