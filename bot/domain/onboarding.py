"""Onboarding passes: a manager asks for a first-day pass for a new hire who reports to them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.domain.approval_desk import ApprovalDesk
from bot.domain.approvals import ApprovalKind
from bot.domain.audit import AuditAction
from bot.domain.auditing import Auditor, Subject
from bot.domain.eligibility import clamp_lifetime, resolve_lifetime, resolve_one_time, start_refusal
from bot.domain.errors import Refused, Rule, TapError
from bot.domain.model import Caller, DirectoryUser, OnboardRequest, PassInfo
from bot.domain.ports import AuditLog, Clock
from bot.domain.reasons import clean_reason
from bot.domain.service import AwaitingApproval, HeldLock, Issued, TapService, TargetCheck
from bot.domain.verification import (
    FIRST_PASS_METHOD_TYPES,
    METHOD_NAMES,
    VerificationKind,
    VerificationNeeded,
    VerificationUse,
)


@dataclass(frozen=True)
class OnboardingDefaults:
    """Settings for onboarding passes: their lifetime, one-time use, and the hour of the first morning."""

    lifetime_minutes: int | None  # None: the tenant policy's default
    one_time: bool
    first_day_hour: int
    tenant_timezone: ZoneInfo


def onboarding_refusal(
    caller: Caller, user: DirectoryUser, manager_id: str | None, method_types: tuple[str, ...]
) -> Refused | None:
    """The new-hire rule Entra's Lifecycle Workflows apply: the caller's own report, with nothing but a password."""
    if manager_id is None or manager_id.lower() != caller.object_id.lower():
        return Refused(
            Rule.NOT_MANAGER,
            f"You can only request onboarding passes for your own direct reports, and {user.label} does not "
            "report to you in Entra. Ask IT if the manager is wrong.",
        )
    others = sorted(
        {
            METHOD_NAMES.get(kind, "another sign-in method")
            for kind in method_types
            if kind not in FIRST_PASS_METHOD_TYPES
        }
    )
    if others:
        return Refused(
            Rule.HAS_SIGN_IN_METHODS,
            f"{user.label} has already set up {', '.join(others)}, so this is not a new hire's first sign-in. "
            "Ask IT (an operator) if they need a Temporary Access Pass.",
        )
    return None


def first_day_start(user: DirectoryUser, defaults: OnboardingDefaults, now: datetime) -> datetime | None:
    """The morning of the hire date in the tenant's time zone; None (meaning now) if unknown or already past."""
    if user.employee_hire_date is None:
        return None
    hire_day = user.employee_hire_date.astimezone(defaults.tenant_timezone).date()
    if user.employee_hire_date.time() == time(0, 0) and user.employee_hire_date.utcoffset() is not None:
        hire_day = user.employee_hire_date.date()  # a bare date stored as midnight UTC means that calendar day
    start = datetime.combine(hire_day, time(defaults.first_day_hour), tzinfo=defaults.tenant_timezone)
    return start if start > now else None


class OnboardingService:
    """`/tap onboard`: checks the manager and new-hire rules, then issues or opens an approval request."""

    def __init__(
        self,
        *,
        tap: TapService,
        directory: OnboardingDirectory,
        desk: ApprovalDesk,
        defaults: OnboardingDefaults,
        clock: Clock,
        audit: AuditLog,
    ) -> None:
        self._tap = tap
        self._directory = directory
        self._desk = desk
        self._defaults = defaults
        self._clock = clock
        self._auditor = Auditor(audit, clock)

    async def onboard(self, caller: Caller, request: OnboardRequest) -> Issued | AwaitingApproval | VerificationNeeded:
        subject = Subject(request.target, reason=clean_reason(request.reason))
        work = lambda: self._onboard(caller, request, subject)  # noqa: E731
        return await self._auditor.audited(AuditAction.ONBOARD, caller, subject, work)

    async def check(self, manager: Caller, user: DirectoryUser) -> TargetCheck:
        """All onboarding rules for this manager and new hire, as at request time and again at approval time."""
        manager_id, methods = await asyncio.gather(
            self._directory.manager_id(user.object_id), self._directory.sign_in_methods(user.object_id)
        )
        refusal = onboarding_refusal(manager, user, manager_id, methods)
        if refusal is not None:
            raise refusal
        check = await self._tap.check_target(manager, user)
        if check.existing is not None and check.existing.is_live(self._clock.now()):
            raise Refused(
                Rule.EXISTING_PASS,
                f"{user.label} already holds a Temporary Access Pass (it expires "
                f"{check.existing.expires_at:%Y-%m-%d %H:%M} UTC). Ask IT if it was lost.",
            )
        return check

    async def _onboard(
        self, caller: Caller, request: OnboardRequest, subject: Subject
    ) -> Issued | AwaitingApproval | VerificationNeeded:
        await self._tap.require_known_caller(caller)
        request = replace(request, reason=self._tap.check_reason(request.reason))
        user = await self._tap.find_user(subject)
        async with self._tap.target_lock(user) as held:
            return await self._onboard_locked(caller, request, user, held)

    async def _onboard_locked(
        self, caller: Caller, request: OnboardRequest, user: DirectoryUser, held: HeldLock
    ) -> Issued | AwaitingApproval | VerificationNeeded:
        policy, existing = (await self.check(caller, user)).unpack()
        if request.lifetime_minutes is not None:
            lifetime = resolve_lifetime(request.lifetime_minutes, policy)
        else:
            lifetime = clamp_lifetime(self._defaults.lifetime_minutes, policy)
        one_time = resolve_one_time(self._defaults.one_time, policy)
        start = request.start_at or first_day_start(user, self._defaults, self._clock.now())
        refusal = start_refusal(start, self._clock.now())
        if refusal is not None:
            raise refusal
        # TAPBOT_VERIFY_ONBOARDING: the new hire is verified too (consumed here, or bound to the approval request).
        use = await self._tap.verification_for_write(caller, user, request.verification_id, VerificationKind.ONBOARD)
        if isinstance(use, VerificationNeeded):
            return replace(use, request=request)
        verification = self._tap.verification
        try:
            result = await self._write(caller, request, user, lifetime, one_time, start, existing, use, held)
        except TapError:
            if use is not None and verification is not None:
                await verification.release(use)
            raise
        if use is not None and verification is not None:
            used_for = (
                f"approval:{result.request.id}"
                if isinstance(result, AwaitingApproval)
                else result.issued.info.method_id
            )
            await verification.finish_use(use, used_for)
        return result

    async def _write(
        self,
        caller: Caller,
        request: OnboardRequest,
        user: DirectoryUser,
        lifetime: int,
        one_time: bool,
        start: datetime | None,
        existing: PassInfo | None,
        use: VerificationUse | None,
        held: HeldLock,
    ) -> Issued | AwaitingApproval:
        if self._desk.rules.onboarding_needs_approval:
            opened = await self._desk.open_request(
                ApprovalKind.ONBOARDING,
                caller,
                user,
                start_at=start,
                lifetime_minutes=lifetime,
                one_time=one_time,
                reason=f"Onboarding pass requested by {caller.display_name or 'the manager'} for a new hire.",
                request_reason=request.reason,
                verification_id=use.verification.id if use else None,
            )
            return AwaitingApproval(opened)
        issued = await self._tap.create_checked_pass(
            caller,
            user,
            lifetime_minutes=lifetime,
            one_time=one_time,
            start_at=start,
            existing=existing,
            action=AuditAction.ONBOARD,
            reason=request.reason,
            evidence=use.evidence if use else None,
            verification_id=use.verification.id if use else None,
            lock=held,
        )
        return Issued(issued)


class OnboardingDirectory(Protocol):
    async def manager_id(self, user_id: str) -> str | None: ...

    async def sign_in_methods(self, user_id: str) -> tuple[str, ...]:
        """The @odata.type of each authentication method the user has registered."""
        ...
