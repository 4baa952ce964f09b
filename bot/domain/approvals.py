"""Requests that wait for a second person: manager onboarding, long operator passes, large bulk runs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.model import Recipient


class ApprovalKind(enum.StrEnum):
    ONBOARDING = "onboarding"
    LONG_LIFETIME = "long_lifetime"
    BULK = "bulk"
    VELOCITY = "velocity"  # an operator above TAPBOT_VELOCITY_LIMIT passes in the last hour (alerts.VelocityLimit)


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    kind: ApprovalKind
    requester: Recipient
    target_id: str
    target_label: str
    start_at: datetime | None
    lifetime_minutes: int
    one_time: bool
    reason: str
    created_at: datetime
    expires_at: datetime
    status: ApprovalStatus = ApprovalStatus.PENDING
    decided_by_id: str | None = None
    decided_by_name: str | None = None
    decided_at: datetime | None = None
    decision_note: str = ""
    card_conversation_id: str | None = None
    card_activity_id: str | None = None
    card_service_url: str | None = None
    timezone: str | None = None  # the requester's Teams time zone (IANA name); None: the bot's default
    # Why the requester wants the pass (e.g. "INC0012345 lost phone"), given with the request and carried to the
    # pass an approval issues. `reason` above is why the request needs an approval at all.
    request_reason: str = ""
    # The verification of the person this request was made with (bot/domain/verification.py): taken when the
    # request was opened and bound to it, so the pass an approval issues carries its evidence.
    verification_id: str | None = None

    def decided(self, status: ApprovalStatus, by_id: str, by_name: str, at: datetime, note: str) -> ApprovalRequest:
        return replace(
            self, status=status, decided_by_id=by_id, decided_by_name=by_name, decided_at=at, decision_note=note
        )


@dataclass(frozen=True)
class ApprovalRules:
    """Which requests wait for an operator, from settings."""

    onboarding_needs_approval: bool = True
    lifetime_threshold_minutes: int | None = None  # operator passes longer than this need a second operator
    bulk_row_threshold: int | None = None  # bulk runs with more rows than this need a second operator
    request_lifetime: timedelta = timedelta(hours=24)

    def long_lifetime(self, lifetime_minutes: int) -> bool:
        return self.lifetime_threshold_minutes is not None and lifetime_minutes > self.lifetime_threshold_minutes


@dataclass(frozen=True)
class ApprovalsChannel:
    """The channel operators registered with `/tap approvals here`."""

    service_url: str
    conversation_id: str
    tenant_id: str
    registered_by: str
    registered_at: datetime


class ApprovalStore(Protocol):
    async def save_approval(self, request: ApprovalRequest) -> None: ...

    async def approval(self, request_id: str) -> ApprovalRequest | None: ...

    async def settle_approval(self, decided: ApprovalRequest) -> bool:
        """Stores the decision only if the request is still pending: exactly one decision ever wins."""
        ...

    async def reopen_approval(self, decided: ApprovalRequest) -> bool:
        """Undoes `decided` (back to pending, no decider) only if it is still exactly that decision: an approval
        whose write could not be made with the approver's own rights (delegated mode) leaves the request open."""
        ...

    async def set_approval_card(
        self, request_id: str, service_url: str, conversation_id: str, activity_id: str
    ) -> None: ...

    async def set_approval_timezone(self, request_id: str, timezone: str) -> None: ...

    async def pending_approvals(self, now: datetime) -> list[ApprovalRequest]: ...

    async def approvals_of(self, requester_id: str, since: datetime) -> list[ApprovalRequest]: ...

    async def overdue_approvals(self, now: datetime) -> list[ApprovalRequest]: ...

    async def save_approvals_channel(self, channel: ApprovalsChannel) -> None: ...

    async def approvals_channel(self, tenant_id: str) -> ApprovalsChannel | None: ...
