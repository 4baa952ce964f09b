"""Knobs for benchmarks and tests: latency, throttling (a simple budget and/or Graph's published limits), the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.sandbox.clock import SandboxClock
from bot.sandbox.identity import DEFAULT_GRAPH_TOKEN_MINUTES, DEFAULT_OAUTH_CONNECTIONS, SANDBOX_BOT_APP_ID
from bot.sandbox.throttle import TENANT_SIZE_UNITS, ThrottleSettings


@dataclass(frozen=True)
class SandboxOptions:
    latency_ms: float = 0.0
    """Added to every HTTP request under /v1.0 (once per request, also for a $batch)."""

    request_budget: int | None = None
    """Graph requests admitted per sliding window (each $batch item counts); None means unlimited."""

    budget_window_s: float = 10.0

    graph_limits: bool = False
    """Apply Microsoft Graph's published identity-and-access limits (resource units, writes; see docs/sandbox.md)."""

    tenant_size: str | None = None
    """The size tier for those limits: S, M or L; None takes it from the tenant's user count."""

    auth_method_limit: int | None = None
    """An unpublished, tighter limit: requests on /users/{id}/authentication/... per `auth_method_window_s`."""

    auth_method_window_s: float = 10.0

    auth_method_writes_only: bool = False
    """Count only writes (creating and deleting passes) against `auth_method_limit`."""

    clock: SandboxClock = field(default_factory=SandboxClock)

    bot_app_id: str = SANDBOX_BOT_APP_ID
    """The bot's app id for Teams SSO (App ID URI api://botid-{it}) and its OAuth connections' client."""

    oauth_connections: tuple[str, ...] = DEFAULT_OAUTH_CONNECTIONS
    """The OAuth connection names the emulated token service knows (issue 14, delegated mode)."""

    graph_token_minutes: int = DEFAULT_GRAPH_TOKEN_MINUTES
    """Lifetime of the delegated Graph tokens the token service hands out (sandbox clock)."""

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms cannot be negative")
        if self.request_budget is not None and self.request_budget < 1:
            raise ValueError("request_budget must be at least 1 (or None for no limit)")
        if self.budget_window_s <= 0 or self.auth_method_window_s <= 0:
            raise ValueError("throttling windows must be positive")
        if self.tenant_size is not None and self.tenant_size not in TENANT_SIZE_UNITS:
            raise ValueError("tenant_size must be S, M or L (or None to take it from the tenant)")
        if self.auth_method_limit is not None and self.auth_method_limit < 1:
            raise ValueError("auth_method_limit must be at least 1 (or None for no limit)")
        if not self.bot_app_id.strip():
            raise ValueError("bot_app_id cannot be empty")
        if not self.oauth_connections or not all(name.strip() for name in self.oauth_connections):
            raise ValueError("oauth_connections needs at least one non-empty connection name")
        if self.graph_token_minutes < 1:
            raise ValueError("graph_token_minutes must be at least 1")

    def throttle_settings(self) -> ThrottleSettings:
        return ThrottleSettings(
            request_budget=self.request_budget,
            budget_window_s=self.budget_window_s,
            graph_limits=self.graph_limits,
            tenant_size=self.tenant_size,
            auth_method_limit=self.auth_method_limit,
            auth_method_window_s=self.auth_method_window_s,
            auth_method_writes_only=self.auth_method_writes_only,
        )
