"""Audit events: who did what, for whom, when, and how it ended. Never a pass value."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class AuditAction(enum.StrEnum):
    ISSUE = "issue"
    REVOKE = "revoke"
    STATUS = "status"
    POLICY = "policy"
    REDACT = "redact"
    DELIVERY = "delivery"
    ONBOARD = "onboard"
    APPROVAL = "approval"
    DECISION = "decision"


class AuditOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    REFUSED = "refused"
    FAILED = "failed"
    NEEDS_CONFIRMATION = "needs_confirmation"
    NOTHING_TO_DO = "nothing_to_do"


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    action: AuditAction
    outcome: AuditOutcome
    actor_id: str
    actor_name: str = ""
    target_id: str | None = None
    target_upn: str | None = None
    lifetime_minutes: int | None = None
    start_at: datetime | None = None
    one_time: bool | None = None
    pass_method_id: str | None = None
    graph_request_id: str | None = None
    rule: str | None = None
    detail: str = ""
