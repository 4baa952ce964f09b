"""Starts tapbot: reads the settings once, prints what it is running against, serves the app factory.

`python app.py` serves; `python app.py doctor` checks the deployment (settings, credentials, Graph permissions,
groups, database) and exits 0 when every check passed, else 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING

from aiohttp import web

from bot.logging_setup import LogFormat, configure_logging
from bot.server import COMPONENTS, create_app
from bot.settings import Settings, SettingsError

if TYPE_CHECKING:
    from bot.sandbox.server import RunningSandbox


def banner(settings: Settings, sandbox: RunningSandbox | None = None) -> str:
    endpoint = f"http://{settings.host}:{settings.port}/api/messages"
    lines = [f"tapbot listening on {endpoint}"]
    if settings.sandbox:
        lines += [
            "*** SANDBOX TENANT: a local emulation of Microsoft Graph with demo users. No real pass is issued. ***",
            f"*** tenant file: {settings.sandbox_tenant_file} ***",
        ]
    if sandbox is not None:
        control = sandbox.control_url
        lines += [
            f"*** sandbox Graph: {sandbox.base_url} ***",
            f"*** sandbox control: {control}/state, {control}/faults, {control}/clock, {control}/reset ***",
            f"*** sandbox file host: POST {control}/files, PUT {control}/uploads/<name> ***",
            f"*** sandbox Verified ID wallet: {control}/verifiedid/requests (scan, present, decline, expire) ***",
        ]
    if settings.delegated_writes:
        lines.append(
            f"*** pass writes: DELEGATED, with each technician's own Entra rights "
            f"(OAuth connection {settings.oauth_connection}) ***"
        )
        if sandbox is not None:
            lines.append(f"*** sandbox PIM: POST {sandbox.control_url}/roles/activate (see README) ***")
    else:
        lines.append("*** pass writes: APPLICATION, with the bot's own Graph permission ***")
    if settings.anonymous:
        lines += [
            "*** UNAUTHENTICATED: no bot app id is configured, so /api/messages accepts requests without a ***",
            "*** Bot Framework token. Listening on loopback only. Never run a real tenant like this.     ***",
        ]
    width = max(len(line) for line in lines)
    rule = "=" * width
    return "\n".join([rule, *lines, rule])


def main(arguments: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if arguments is None else arguments
    if arguments == ["doctor"]:
        return doctor()
    if arguments:
        print(f"usage: python app.py [doctor] (unknown arguments: {' '.join(arguments)})", file=sys.stderr)
        return 2
    return serve()


def doctor() -> int:
    from bot.doctor import diagnose, render

    configure_logging("WARNING", LogFormat.TEXT)
    report = asyncio.run(diagnose(os.environ))
    print(render(report), flush=True)
    return 0 if report.healthy else 1


def serve() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as error:
        print(f"tapbot cannot start: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)

    async def started() -> web.Application:
        app = await create_app(settings, own_process=True)  # the built-in sandbox has its address only once it runs
        announce(banner(settings, app[COMPONENTS].sandbox), settings)
        return app

    web.run_app(started(), host=settings.host, port=settings.port, print=None, loop=event_loop())
    return 0


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (requirements.txt pins it except on Windows, which it does not
    support): it costs the bot less CPU per command than asyncio's own (README, "Why these libraries")."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def announce(text: str, settings: Settings) -> None:
    if settings.log_format is LogFormat.JSON:  # a log collector reads stdout too: no free text there
        for line in text.splitlines()[1:-1]:
            logging.getLogger("tapbot").log(logging.WARNING if line.startswith("***") else logging.INFO, line)
    else:
        print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
