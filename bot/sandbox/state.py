"""Everything a running sandbox holds: the tenant, the live passes, the clock, budget, faults, counters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from bot.sandbox.active_roles import RoleActivations
from bot.sandbox.clock import SandboxClock
from bot.sandbox.faults import FaultInjector
from bot.sandbox.identity import SandboxIdentity
from bot.sandbox.options import SandboxOptions
from bot.sandbox.passes import IssuedPass, PassStore, UsabilityReason
from bot.sandbox.registrations import Registrations
from bot.sandbox.tenant import Tenant, TenantUser
from bot.sandbox.throttle import GraphThrottle
from bot.sandbox.verified_id import VerifiedIdEmulator


@dataclass
class SandboxCounters:
    requests_received: int = 0
    """Graph requests that reached the sandbox ($batch items count one by one, control calls do not)."""
    requests_served: int = 0
    """Requests admitted by the budget (whatever their answer)."""
    requests_throttled: int = 0
    """429 answers caused by throttling (injected 429 faults are counted as faults)."""
    faults_injected: int = 0
    resource_units: int = 0
    """Resource units the admitted requests cost (with Graph's published limits on)."""
    writes: int = 0
    authentication_method_requests: int = 0
    """Admitted requests on /users/{id}/authentication/... (the endpoints an unpublished limit may bind)."""
    throttled_by: dict[str, int] = field(default_factory=dict[str, int])
    """429s per limit name."""
    by_priority: dict[str, int] = field(default_factory=dict[str, int])
    """Requests received per `x-ms-throttle-priority` value as sent, lower-cased ("" when absent)."""
    method_list_reads: dict[str, int] = field(default_factory=dict[str, int])
    """GET /users/{id}/authentication/methods answered, per user object id."""


class SandboxState:
    def __init__(self, tenant: Tenant, options: SandboxOptions) -> None:
        self.options = options
        self.clock: SandboxClock = options.clock
        self.tenant = tenant
        self.passes = PassStore(tenant.seeded_passes)
        self.registrations = Registrations()  # methods users registered while the sandbox runs
        self.role_activations = RoleActivations()  # PIM activations made through the control plane
        self.throttle = self._new_throttle()
        self.faults = FaultInjector()
        self.counters = SandboxCounters()
        self.verified_id = VerifiedIdEmulator(tenant, self.clock)  # the Verified ID Request Service
        self.identity = SandboxIdentity(  # the token service and Entra's on-behalf-of (delegated mode)
            tenant,
            self.clock,
            bot_app_id=options.bot_app_id,
            oauth_connections=options.oauth_connections,
            graph_token_minutes=options.graph_token_minutes,
        )

    def reset(self, tenant: Tenant | None = None) -> None:
        """Back to the state right after start; ``tenant`` replaces the tenant (e.g. re-read from its file)."""
        if tenant is not None:
            self.tenant = tenant
        self.passes = PassStore(self.tenant.seeded_passes)
        self.registrations.clear()
        self.role_activations.clear()
        self.faults.clear()
        self.counters = SandboxCounters()
        self.clock.reset()
        self.throttle = self._new_throttle()  # the clock moved back: start every window afresh
        self.verified_id.reset(self.tenant)
        self.identity.reset(self.tenant)

    def _new_throttle(self) -> GraphThrottle:
        return GraphThrottle(
            self.options.throttle_settings(), len(self.tenant.users), lambda: self.clock.now().timestamp()
        )

    def pass_allowed_by_policy(self, user: TenantUser) -> bool:
        policy_enabled = self.tenant.tap_policy.state == "enabled"
        return policy_enabled and not user.is_guest and self.tenant.is_targeted_by_tap_policy(user)

    def usability_of(self, issued: IssuedPass) -> UsabilityReason:
        user = self.tenant.user(issued.user_id)
        allowed = user is not None and self.pass_allowed_by_policy(user)
        return issued.usability(self.clock.now(), allowed)

    def counters_snapshot(self) -> dict[str, object]:
        return {
            **asdict(self.counters),
            "peak_window_usage": self.throttle.budget.peak_usage,
            "current_window_usage": self.throttle.budget.used(self.clock.now().timestamp()),
        }
