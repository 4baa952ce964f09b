"""Runs the sandbox tenant stand-alone: ``python -m bot.sandbox --tenant FILE --port 0``.

Prints ``SANDBOX_URL=http://HOST:PORT/v1.0`` on stdout once listening; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from bot.sandbox.identity import DEFAULT_GRAPH_TOKEN_MINUTES, DEFAULT_OAUTH_CONNECTIONS, SANDBOX_BOT_APP_ID
from bot.sandbox.options import SandboxOptions
from bot.sandbox.server import start_sandbox
from bot.sandbox.tenant import DEMO_TENANT_PATH, Tenant, TenantFileError, load_tenant


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description="Serve a sandbox Entra tenant.")
    parser.add_argument("--tenant", type=Path, default=DEMO_TENANT_PATH, help="tenant file (default: the demo)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every Graph request")
    parser.add_argument("--budget", type=int, default=None, help="Graph requests allowed per window")
    parser.add_argument("--window", type=float, default=10.0, help="budget window in seconds")
    parser.add_argument(
        "--graph-limits", action="store_true", help="apply Graph's published identity-and-access throttling limits"
    )
    parser.add_argument("--tenant-size", choices=["S", "M", "L"], default=None, help="size tier for those limits")
    parser.add_argument(
        "--auth-method-limit", type=int, default=None, help="unpublished limit on authentication-method requests"
    )
    parser.add_argument("--auth-method-window", type=float, default=10.0, help="its window in seconds")
    parser.add_argument(
        "--auth-method-writes-only", action="store_true", help="count only pass creations and deletions against it"
    )
    parser.add_argument(
        "--bot-app-id", default=SANDBOX_BOT_APP_ID, help="the bot's app id for Teams SSO (App ID URI api://botid-ID)"
    )
    parser.add_argument(
        "--oauth-connection",
        action="append",
        dest="oauth_connections",
        default=None,
        help=f"an OAuth connection name the token service knows (repeatable; default {DEFAULT_OAUTH_CONNECTIONS[0]})",
    )
    parser.add_argument(
        "--graph-token-minutes", type=int, default=DEFAULT_GRAPH_TOKEN_MINUTES, help="delegated Graph token lifetime"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


async def serve(tenant: Tenant, options: SandboxOptions, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    sandbox = await start_sandbox(tenant, options, host=host, port=port)
    try:
        print(f"SANDBOX_URL={sandbox.base_url}", flush=True)
        await stop.wait()
    finally:
        await sandbox.close()


def build_options(arguments: argparse.Namespace) -> SandboxOptions:
    return SandboxOptions(
        latency_ms=arguments.latency_ms,
        request_budget=arguments.budget,
        budget_window_s=arguments.window,
        graph_limits=arguments.graph_limits,
        tenant_size=arguments.tenant_size,
        auth_method_limit=arguments.auth_method_limit,
        auth_method_window_s=arguments.auth_method_window,
        auth_method_writes_only=arguments.auth_method_writes_only,
        bot_app_id=arguments.bot_app_id,
        oauth_connections=tuple(arguments.oauth_connections or DEFAULT_OAUTH_CONNECTIONS),
        graph_token_minutes=arguments.graph_token_minutes,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=arguments.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    try:
        tenant = load_tenant(arguments.tenant)
        options = build_options(arguments)
    except (TenantFileError, ValueError) as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 2
    asyncio.run(serve(tenant, options, arguments.host, arguments.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
