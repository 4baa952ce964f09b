"""Starts tapbot: reads the settings once, prints what it is running against, serves the app factory."""

from __future__ import annotations

import logging
import os
import sys

from aiohttp import web

from bot.server import create_app
from bot.settings import Settings, SettingsError


def banner(settings: Settings) -> str:
    endpoint = f"http://{settings.host}:{settings.port}/api/messages"
    lines = [f"tapbot listening on {endpoint}"]
    if settings.sandbox:
        lines += [
            "*** SANDBOX TENANT: a local emulation of Microsoft Graph with demo users. No real pass is issued. ***",
            f"*** tenant file: {settings.sandbox_tenant_file} ***",
        ]
    if settings.anonymous:
        lines += [
            "*** UNAUTHENTICATED: no bot app id is configured, so /api/messages accepts requests without a ***",
            "*** Bot Framework token. Listening on loopback only. Never run a real tenant like this.     ***",
        ]
    width = max(len(line) for line in lines)
    rule = "=" * width
    return "\n".join([rule, *lines, rule])


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as error:
        print(f"tapbot cannot start: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    print(banner(settings), flush=True)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
