"""Knobs for benchmarks and tests: latency, a request budget, the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.sandbox.clock import SandboxClock


@dataclass(frozen=True)
class SandboxOptions:
    latency_ms: float = 0.0
    """Added to every HTTP request under /v1.0 (once per request, also for a $batch)."""

    request_budget: int | None = None
    """Graph requests admitted per sliding window (each $batch item counts); None means unlimited."""

    budget_window_s: float = 10.0

    clock: SandboxClock = field(default_factory=SandboxClock)

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms cannot be negative")
        if self.request_budget is not None and self.request_budget < 1:
            raise ValueError("request_budget must be at least 1 (or None for no limit)")
        if self.budget_window_s <= 0:
            raise ValueError("budget_window_s must be positive")
