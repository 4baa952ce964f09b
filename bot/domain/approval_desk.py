"""Opening approval requests, listing them, expiring them, and the approvals channel.

Deciding them (which issues a pass) is in `decisions.py`; this desk never writes to Graph.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from bot.domain.approvals import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalRules,
    ApprovalsChannel,
    ApprovalStatus,
    ApprovalStore,
)
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.auditing import Auditor
from bot.domain.errors import Refused, Rule
from bot.domain.model import Caller, DirectoryUser, PassRequest
from bot.domain.ports import AuditLog, Clock
from bot.domain.reasons import MAX_REASON_LENGTH, clean_reason
from bot.domain.service import AwaitingApproval

OWN_REQUESTS_WINDOW = timedelta(days=30)


class ApprovalDesk:
    def __init__(self, *, store: ApprovalStore, rules: ApprovalRules, clock: Clock, audit: AuditLog) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock
        self._auditor = Auditor(audit, clock)

    @property
    def rules(self) -> ApprovalRules:
        return self._rules

    # --- the gate for operator passes (TapService asks) ---------------------------------------------------

    def long_lifetime(self, lifetime_minutes: int) -> bool:
        return self._rules.long_lifetime(lifetime_minutes)

    async def ask_for_long_lifetime(
        self,
        caller: Caller,
        user: DirectoryUser,
        request: PassRequest,
        *,
        lifetime_minutes: int,
        one_time: bool,
        timezone: str | None = None,
    ) -> AwaitingApproval:
        threshold = self._rules.lifetime_threshold_minutes
        reason = f"Lifetime {lifetime_minutes} minutes is above the {threshold}-minute limit for one operator."
        opened = await self.open_request(
            ApprovalKind.LONG_LIFETIME,
            caller,
            user,
            start_at=request.start_at,
            lifetime_minutes=lifetime_minutes,
            one_time=one_time,
            reason=reason,
            timezone=timezone,
            request_reason=request.reason,
            verification_id=request.verification_id,
        )
        return AwaitingApproval(opened)

    async def ask_for_velocity(
        self,
        caller: Caller,
        user: DirectoryUser,
        request: PassRequest,
        *,
        lifetime_minutes: int,
        one_time: bool,
        limit: int,
    ) -> AwaitingApproval:
        reason = (
            f"{caller.display_name or 'The requester'} issued {limit} or more passes in the last hour, the limit "
            "for one operator: until the hour clears, a second operator approves each further pass."
        )
        opened = await self.open_request(
            ApprovalKind.VELOCITY,
            caller,
            user,
            start_at=request.start_at,
            lifetime_minutes=lifetime_minutes,
            one_time=one_time,
            reason=reason,
            request_reason=request.reason,
            verification_id=request.verification_id,
        )
        return AwaitingApproval(opened)

    # --- requests -----------------------------------------------------------------------------------------

    async def open_request(
        self,
        kind: ApprovalKind,
        requester: Caller,
        user: DirectoryUser,
        *,
        start_at: datetime | None,
        lifetime_minutes: int,
        one_time: bool,
        reason: str,
        timezone: str | None = None,
        request_reason: str = "",
        verification_id: str | None = None,
    ) -> ApprovalRequest:
        """Saves a pending request; refused when no approvals channel exists or the requester can't be reached.

        `timezone` is the requester's Teams time zone: the pass card delivered after an approval shows it.
        """
        if await self._store.approvals_channel(requester.tenant_id.lower()) is None:
            raise Refused(
                Rule.NO_APPROVALS_CHANNEL,
                "This request needs an operator's approval, but no approvals channel is set up yet. "
                "Ask IT to type /tap approvals here in the channel where they want to decide requests.",
            )
        if requester.address is None:
            raise Refused(Rule.UNKNOWN_CALLER, "I can't tell where to send you the answer; use Microsoft Teams.")
        now = self._clock.now()
        request = ApprovalRequest(
            id=str(uuid.uuid4()),
            kind=kind,
            requester=requester.address,
            target_id=user.object_id,
            target_label=user.label,
            start_at=start_at,
            lifetime_minutes=lifetime_minutes,
            one_time=one_time,
            reason=reason,
            created_at=now,
            expires_at=now + self._rules.request_lifetime,
            timezone=_zone_name(timezone),
            request_reason=clean_reason(request_reason)[:MAX_REASON_LENGTH],
            verification_id=verification_id,
        )
        await self._store.save_approval(request)
        await self._auditor.record(
            AuditAction.APPROVAL,
            AuditOutcome.NEEDS_CONFIRMATION,
            requester,
            user=user,
            detail=f"{kind.value} request {request.id} opened: {reason}",
            reason=request.request_reason,
        )
        return request

    async def remember_timezone(self, request: ApprovalRequest, timezone: str) -> ApprovalRequest:
        """Keeps the requester's time zone with a request opened in their turn (when the opener did not pass it)."""
        name = _zone_name(timezone)
        if request.timezone is not None or name is None:
            return request
        await self._store.set_approval_timezone(request.id, name)
        return replace(request, timezone=name)

    async def request(self, request_id: str) -> ApprovalRequest | None:
        return await self._store.approval(request_id)

    async def requests_for(self, caller: Caller, *, operator: bool) -> list[ApprovalRequest]:
        """Operators see every pending request; anyone else their own of the last 30 days."""
        now = self._clock.now()
        if operator:
            return await self._store.pending_approvals(now)
        return await self._store.approvals_of(caller.object_id, now - OWN_REQUESTS_WINDOW)

    async def expire_overdue(self) -> list[ApprovalRequest]:
        """Closes pending requests past their deadline; returns those this call closed."""
        now = self._clock.now()
        closed: list[ApprovalRequest] = []
        for request in await self._store.overdue_approvals(now):
            expired = request.decided(ApprovalStatus.EXPIRED, "tapbot", "tapbot", now, "nobody decided in time")
            if await self._store.settle_approval(expired):
                closed.append(expired)
                await self._auditor.record(
                    AuditAction.APPROVAL,
                    AuditOutcome.FAILED,
                    Caller("tapbot", request.requester.tenant_id, "tapbot"),
                    target=request.target_label,
                    detail=f"request {request.id} expired",
                )
        return closed

    async def remember_card(self, request_id: str, service_url: str, conversation_id: str, activity_id: str) -> None:
        await self._store.set_approval_card(request_id, service_url, conversation_id, activity_id)

    # --- the approvals channel ----------------------------------------------------------------------------

    async def register_channel(self, operator: Caller, service_url: str, conversation_id: str) -> ApprovalsChannel:
        """Called once an operator typed `/tap approvals here` in a channel (the caller checked the role)."""
        channel = ApprovalsChannel(
            service_url=service_url,
            conversation_id=conversation_id,
            tenant_id=operator.tenant_id.lower(),
            registered_by=operator.object_id,
            registered_at=self._clock.now(),
        )
        await self._store.save_approvals_channel(channel)
        await self._auditor.record(
            AuditAction.APPROVAL, AuditOutcome.SUCCEEDED, operator, detail=f"approvals channel set: {conversation_id}"
        )
        return channel

    async def channel(self, tenant_id: str) -> ApprovalsChannel | None:
        return await self._store.approvals_channel(tenant_id.lower())


def _zone_name(timezone: str | None) -> str | None:
    """An IANA zone name that fits the column (64 characters), else None: the bot's default applies."""
    if not timezone or len(timezone) > 64:
        return None
    return timezone
