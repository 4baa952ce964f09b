"""The sandbox tenant: a local emulation of the Microsoft Graph endpoints tapbot calls."""

from bot.sandbox.clock import SandboxClock
from bot.sandbox.options import SandboxOptions
from bot.sandbox.server import RunningSandbox, create_sandbox_app, start_sandbox
from bot.sandbox.tenant import DEMO_TENANT_PATH, Tenant, TenantFileError, load_tenant, parse_tenant

__all__ = [
    "DEMO_TENANT_PATH",
    "RunningSandbox",
    "SandboxClock",
    "SandboxOptions",
    "Tenant",
    "TenantFileError",
    "create_sandbox_app",
    "load_tenant",
    "parse_tenant",
    "start_sandbox",
]
