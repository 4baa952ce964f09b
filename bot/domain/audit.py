"""Audit events: who did what, for whom, when, and how it ended. Never a pass value."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_EXPORT_DAYS = 7
MAX_EXPORT_DAYS = 366


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
    AUDIT_EXPORT = "audit_export"
    ALERT = "alert"  # a security alert raised (bot/domain/alerts.py)
    VERIFICATION = "verification"  # a verification of the person before a pass: asked, confirmed, refused, ...


class AuditOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    REFUSED = "refused"
    FAILED = "failed"
    NEEDS_CONFIRMATION = "needs_confirmation"
    NOTHING_TO_DO = "nothing_to_do"
    NEEDS_SIGN_IN = "needs_sign_in"  # delegated writes: the acting person must sign in first; nothing was written


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
    reason: str = ""  # why the requester asked (a ticket number): user text, cleaned and capped (reasons.py)
    # The verification of the person this row is about (bot/domain/verification.py), and its evidence on the row of
    # the pass it was used for: method, who or what confirmed it, when, and Face Check's score.
    verification_id: str | None = None
    evidence_method: str | None = None
    evidence_by_id: str | None = None
    evidence_by: str | None = None
    evidence_at: datetime | None = None
    evidence_score: float | None = None


@dataclass(frozen=True)
class AuditPeriod:
    """Whole days, first and last included, in the operator's time zone."""

    first_day: date
    last_day: date
    timezone: ZoneInfo

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first_day, time(0), tzinfo=self.timezone)

    @property
    def until(self) -> datetime:
        """The first moment after the period (exclusive)."""
        return datetime.combine(self.last_day + timedelta(days=1), time(0), tzinfo=self.timezone)

    @property
    def label(self) -> str:
        return f"{self.first_day.isoformat()} to {self.last_day.isoformat()} ({self.timezone.key})"

    @property
    def file_name(self) -> str:
        return f"tapbot-audit-{self.first_day.isoformat()}-to-{self.last_day.isoformat()}.csv"

    @classmethod
    def last_days(cls, days: int, *, now: datetime, timezone: ZoneInfo) -> AuditPeriod:
        today = now.astimezone(timezone).date()
        return cls(today - timedelta(days=days - 1), today, timezone)
