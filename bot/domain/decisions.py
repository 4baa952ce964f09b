"""Approving or denying a request: exactly one decision wins, and an approval issues the pass at that moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.approval_desk import ApprovalDesk
from bot.domain.approvals import ApprovalKind, ApprovalRequest, ApprovalStatus, ApprovalStore
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.auditing import Auditor, Subject
from bot.domain.eligibility import resolve_lifetime, resolve_one_time
from bot.domain.errors import EntraRefused, Refused, Rule, SignInRequired, TapError
from bot.domain.model import Caller, DirectoryUser, IssuedPass, PassInfo
from bot.domain.onboarding import OnboardingService
from bot.domain.ports import AuditLog, Clock
from bot.domain.service import HeldLock, TapService
from bot.domain.verification import VerificationKind


class UnknownRequest(TapError):
    def __init__(self) -> None:
        super().__init__("I don't know this request any more; it may have been removed.")


@dataclass(frozen=True)
class Decided:
    """This click decided the request. When approved, `issued` is the new pass, or `not_issued` says why not."""

    request: ApprovalRequest
    issued: IssuedPass | None = None
    not_issued: str | None = None


@dataclass(frozen=True)
class AlreadyClosed:
    """Someone decided first, or the request expired: nothing changed."""

    request: ApprovalRequest


DecisionResult = Decided | AlreadyClosed


class DecisionService:
    def __init__(
        self,
        *,
        tap: TapService,
        onboarding: OnboardingService,
        desk: ApprovalDesk,
        store: ApprovalStore,
        clock: Clock,
        audit: AuditLog,
    ) -> None:
        self._tap = tap
        self._onboarding = onboarding
        self._desk = desk
        self._store = store
        self._clock = clock
        self._auditor = Auditor(audit, clock)

    async def decide(self, decider: Caller, request_id: str, *, approve: bool, note: str = "") -> DecisionResult:
        request = await self._desk.request(request_id)
        if request is None:
            raise UnknownRequest()
        subject = Subject(request.target_label)
        work = lambda: self._decide(decider, request, approve=approve, note=note.strip()[:500])  # noqa: E731
        return await self._auditor.audited(AuditAction.DECISION, decider, subject, work)

    async def _decide(self, decider: Caller, request: ApprovalRequest, *, approve: bool, note: str) -> DecisionResult:
        await self._tap.require_operator(decider)
        if decider.object_id.lower() == request.requester.object_id.lower():
            raise Refused(Rule.SELF_APPROVAL, "You can't decide your own request: another operator has to.")
        if request.status is not ApprovalStatus.PENDING:
            return AlreadyClosed(request)
        now = self._clock.now()
        if now >= request.expires_at:
            expired = request.decided(ApprovalStatus.EXPIRED, "tapbot", "tapbot", now, "nobody decided in time")
            await self._store.settle_approval(expired)
            return AlreadyClosed(await self._desk.request(request.id) or expired)
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED
        decided = request.decided(status, decider.object_id, decider.display_name, now, note)
        if not await self._store.settle_approval(decided):
            return AlreadyClosed(await self._desk.request(request.id) or request)
        await self._auditor.record(
            AuditAction.DECISION,
            AuditOutcome.SUCCEEDED,
            decider,
            target=request.target_label,
            detail=f"{status.value} {request.kind.value} request {request.id}" + (f": {note}" if note else ""),
            reason=request.request_reason,
        )
        if not approve or request.kind is ApprovalKind.BULK:
            return Decided(decided)  # a bulk job starts from the Teams edge once approved
        try:
            return Decided(decided, issued=await self._issue(decided, decider))
        except (SignInRequired, EntraRefused) as error:
            # Delegated writes: the approver's own rights make this write (decision 3 of issue 14). Without their
            # sign-in, or with rights Entra refuses, nothing was written, so the approval is undone: the request
            # stays pending, for this approver once signed in, or for another approver whose rights suffice.
            if await self._store.reopen_approval(decided):
                why = "the approver must sign in first" if isinstance(error, SignInRequired) else "Entra refused it"
                await self._auditor.record(  # the refusal itself is audited by `decide` on its way out
                    AuditAction.APPROVAL,
                    AuditOutcome.NEEDS_CONFIRMATION,
                    decider,
                    target=request.target_label,
                    detail=f"request {request.id} pending again: its approval wrote nothing ({why})",
                    reason=request.request_reason,
                )
            raise
        except TapError as error:
            await self._auditor.record(
                AuditAction.DECISION,
                AuditOutcome.REFUSED if isinstance(error, Refused) else AuditOutcome.FAILED,
                decider,
                target=request.target_label,
                rule=getattr(error, "rule", None),
                detail=f"approved request {request.id} but no pass was issued",
                reason=request.request_reason,
            )
            return Decided(decided, not_issued=error.user_message)

    async def _issue(self, request: ApprovalRequest, approver: Caller) -> IssuedPass:
        """Runs every rule again as of now (people move, roles change) and creates the pass, with the approver's own
        rights when writes are delegated (they pressed the button; the requester's right to ask is checked here)."""
        requester = Caller(
            request.requester.object_id, request.requester.tenant_id, request.requester.name, request.requester
        )
        user = await self._tap.find_user(Subject(request.target_id))
        async with self._tap.target_lock(user) as held:
            return await self._issue_locked(request, requester, user, approver, held)

    async def _issue_locked(
        self, request: ApprovalRequest, requester: Caller, user: DirectoryUser, approver: Caller, held: HeldLock
    ) -> IssuedPass:
        if request.kind is ApprovalKind.ONBOARDING:
            # The manager must still be the new hire's manager, and the new hire still without other methods.
            await self._tap.require_known_caller(requester)
            check = await self._onboarding.check(requester, user)
            action = AuditAction.ONBOARD
            kind = VerificationKind.ONBOARD
        else:
            await self._tap.require_operator_still(requester)
            check = await self._tap.check_target(requester, user)
            action = AuditAction.ISSUE
            kind = VerificationKind.ISSUE
            _require_replace_was_confirmed(request, check.existing, self._clock.now())
        # The verification of the person the request was opened with (bound to it); none, when one is needed now,
        # refuses: the rules hold as of this write.
        evidence = await self._tap.approved_evidence(
            requester, user, approval_id=request.id, verification_id=request.verification_id, kind=kind
        )
        # The policy may have changed since the request: its range and one-time rule hold as of now.
        lifetime = resolve_lifetime(request.lifetime_minutes, check.policy)
        one_time = resolve_one_time(request.one_time, check.policy)
        start = request.start_at if request.start_at and request.start_at > self._clock.now() else None
        return await self._tap.create_checked_pass(
            requester,
            user,
            lifetime_minutes=lifetime,
            one_time=one_time,
            start_at=start,
            existing=check.existing,
            action=action,
            detail=f"approved by {request.decided_by_name or request.decided_by_id} (request {request.id})",
            reason=request.request_reason,
            evidence=evidence,
            verification_id=request.verification_id,
            acting_as=approver,
            lock=held,
        )


def _require_replace_was_confirmed(request: ApprovalRequest, existing: PassInfo | None, now: datetime) -> None:
    """A request is only opened once replacing a live pass was confirmed (or there was none): a live pass that is
    older than the request is the one the requester chose to replace; a newer one was issued meanwhile by someone
    else, and replacing it silently would kill a pass that may just have been handed over."""
    if existing is None or not existing.is_live(now) or existing.created_at <= request.created_at:
        return
    raise Refused(
        Rule.EXISTING_PASS,
        f"{request.target_label} received another Temporary Access Pass after this request was made "
        f"(created {existing.created_at:%Y-%m-%d %H:%M} UTC), so it was not replaced. Ask again if it is still "
        "needed.",
    )
