"""Verifying the person before a pass (issue 12 item 1): a recovery pass waits until someone vouches for its user.

A pass for someone who already has sign-in methods besides a password is a *recovery* pass: the caller on the
phone claims to be them, and a pass is exactly what an impostor wants. With `TAPBOT_VERIFICATION` set, such a
request is not issued; `TapService.issue` answers `VerificationNeeded` and this service starts a `Verification`:

- **manager** attestation: the user's manager (Graph `/manager`) is asked privately "Is this really <user>?". A
  manager who is the requester, disabled, a guest or missing cannot answer; then the members of
  `TAPBOT_VERIFICATION_FALLBACK_GROUP` are asked (the first answer wins), else the request is refused.
- **verified_id**: Microsoft Entra Verified ID with Face Check (bot/domain/verified_id.py), which ends in
  `complete` or `fail` here.

A verification lives in SQL (`VerificationStore`) through its states: pending → confirmed → used, or refused ("this
is not them"), failed, expired, cancelled. The pass is created only when the request is replayed with the
verification's id, and the write *consumes* it atomically (`take`): confirmed, same requester, same target, same
kind of pass, not expired, and only once. A request that then waits for an approval binds the verification to that
approval (`used_for = approval:<id>`), so the approval-delayed pass carries it too and nothing else can.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.alerts import AlertKind, AlertSink, SecurityAlert
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.auditing import Auditor
from bot.domain.errors import Refused, Rule
from bot.domain.model import (
    Caller,
    DirectoryUser,
    Evidence,
    OnboardRequest,
    PassRequest,
    Recipient,
    UserType,
)
from bot.domain.ports import AuditLog, Clock

__all__ = ["Evidence"]  # re-exported: the evidence type lives in model.py so IssuedPass can carry it

DEFAULT_VERIFICATION_MINUTES = 15
MAX_FALLBACK_APPROVERS = 10  # a fallback group is a handful of people; each is read and sent a card
# Graph's @odata.type of the methods a user has before their first sign-in: a password (every account) and a pass.
FIRST_PASS_METHOD_TYPES = frozenset(
    {"#microsoft.graph.passwordAuthenticationMethod", "#microsoft.graph.temporaryAccessPassAuthenticationMethod"}
)
METHOD_NAMES = {
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": "Microsoft Authenticator",
    "#microsoft.graph.phoneAuthenticationMethod": "a phone",
    "#microsoft.graph.fido2AuthenticationMethod": "a security key",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "Windows Hello",
    "#microsoft.graph.emailAuthenticationMethod": "an email address",
    "#microsoft.graph.softwareOathAuthenticationMethod": "an authenticator app code",
    "#microsoft.graph.platformCredentialAuthenticationMethod": "a platform credential",
    "#microsoft.graph.x509CertificateAuthenticationMethod": "a certificate",
}


class VerificationMethod(enum.StrEnum):
    MANAGER = "manager"
    VERIFIED_ID = "verified_id"


class VerificationState(enum.StrEnum):
    PENDING = "pending"  # waiting for the manager's answer or the wallet's presentation
    CONFIRMED = "confirmed"  # the person is who they say: the pass may be issued with it, once
    REFUSED = "refused"  # the manager (or fallback approver) said "This is not them"
    FAILED = "failed"  # Verified ID refused the presentation (wrong person, low score, revoked, ...)
    EXPIRED = "expired"  # nobody answered in time, or a confirmation was not used in time
    CANCELLED = "cancelled"  # the technician cancelled it
    USED = "used"  # consumed by the pass (or the approval request) it was made for


OPEN_STATES = frozenset({VerificationState.PENDING, VerificationState.CONFIRMED})


class VerificationKind(enum.StrEnum):
    ISSUE = "issue"  # an operator's /tap issue (typed, form, name choice, replace button)
    ONBOARD = "onboard"  # a manager's /tap onboard (TAPBOT_VERIFY_ONBOARDING)


@dataclass(frozen=True)
class VerificationRules:
    """From settings: which methods are accepted (none: verification is off, today's behaviour), whether first
    passes (onboarding) need one too, how long a verification stays open, and who attests for users without a
    usable manager."""

    methods: tuple[VerificationMethod, ...] = ()
    onboarding: bool = False
    window: timedelta = timedelta(minutes=DEFAULT_VERIFICATION_MINUTES)
    fallback_group_id: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.methods)


NO_VERIFICATION = VerificationRules()


@dataclass(frozen=True)
class Verification:
    """One verification of a user for one request. Never a pass value: the pass does not exist yet."""

    id: str
    kind: VerificationKind
    method: VerificationMethod
    state: VerificationState
    requester: Recipient
    target_id: str
    target_label: str
    lifetime_minutes: int | None
    one_time: bool
    start_at: datetime | None
    replace: bool
    replace_method_id: str | None
    reason: str
    attester_ids: tuple[str, ...]  # who may answer (manager attestation): object ids, lower case
    attester_label: str  # "Diego Siciliani (manager)", "the Security Responders group"
    created_at: datetime
    expires_at: datetime  # pending: the answer's deadline; confirmed: the pass must be issued before it
    settled_at: datetime | None = None
    settled_by_id: str | None = None
    settled_by: str | None = None
    score: float | None = None
    detail: str = ""
    progress: str | None = None  # e.g. "scanned" (Verified ID: the QR code was scanned)
    external_ref: str | None = None
    external_url: str | None = None
    used_at: datetime | None = None
    used_for: str | None = None  # the pass method id, or approval:<request id>
    timezone: str | None = None  # the requester's Teams time zone
    card_service_url: str | None = None
    card_conversation_id: str | None = None
    card_activity_id: str | None = None

    @property
    def requester_caller(self) -> Caller:
        return Caller(self.requester.object_id, self.requester.tenant_id, self.requester.name, self.requester)

    @property
    def is_pending(self) -> bool:
        return self.state is VerificationState.PENDING

    def pass_request(self) -> PassRequest:
        """The operator's request as it was made, now carrying this verification: replayed through TapService.issue,
        where every rule is checked again and the verification consumed."""
        return PassRequest(
            target=self.target_id,
            lifetime_minutes=self.lifetime_minutes,
            one_time=self.one_time,
            start_at=self.start_at,
            replace=self.replace,
            replace_method_id=self.replace_method_id,
            reason=self.reason,
            verification_id=self.id,
        )

    def onboard_request(self) -> OnboardRequest:
        return OnboardRequest(
            target=self.target_id,
            start_at=self.start_at,
            lifetime_minutes=self.lifetime_minutes,
            reason=self.reason,
            verification_id=self.id,
        )

    def evidence(self) -> Evidence | None:
        """Who or what confirmed the user, once confirmed (or used)."""
        if self.state not in (VerificationState.CONFIRMED, VerificationState.USED) or self.settled_at is None:
            return None
        return Evidence(
            method=self.method.value,
            confirmed_by_id=self.settled_by_id or "",
            confirmed_by_label=self.settled_by or "",
            at=self.settled_at,
            score=self.score,
        )


@dataclass(frozen=True)
class VerificationPrompt:
    """A card asking someone to attest ("Is this really <user>?"), so it can be updated when the verification ends."""

    verification_id: str
    attester_id: str
    service_url: str
    conversation_id: str
    activity_id: str | None


@dataclass(frozen=True)
class VerificationNeeded:
    """The request needs a verification of its user first; nothing was written. `why` says why, for the card."""

    request: PassRequest | OnboardRequest
    user: DirectoryUser
    methods: tuple[VerificationMethod, ...]
    kind: VerificationKind
    why: str


@dataclass(frozen=True)
class Attesters:
    """Who is asked to confirm the user: the manager, or the fallback group's members (the first answer wins)."""

    people: tuple[DirectoryUser, ...]
    label: str
    fallback_note: str = ""  # why the manager is not asked, when the fallback group is


@dataclass(frozen=True)
class VerificationUse:
    """A verification taken by a write (confirmed → used, under `token`): bound to what it was used for once the
    write succeeded, or released (back to confirmed) when the write failed, so it is never used twice."""

    verification: Verification
    evidence: Evidence
    token: str


class VerificationStore(Protocol):
    async def save_verification(self, verification: Verification) -> None: ...

    async def verification(self, verification_id: str) -> Verification | None: ...

    async def settle_verification(
        self,
        verification_id: str,
        *,
        from_states: frozenset[VerificationState],
        to: VerificationState,
        at: datetime,
        by_id: str | None = None,
        by: str | None = None,
        score: float | None = None,
        detail: str = "",
        expires_at: datetime | None = None,
    ) -> bool:
        """Moves the verification to `to` only if it is in one of `from_states` (one winner, on every replica)."""
        ...

    async def take_verification(
        self, verification_id: str, *, requester_id: str, target_id: str, kind: str, now: datetime, token: str
    ) -> bool:
        """confirmed → used in one conditional UPDATE: same requester, target and kind, not expired. False: not
        taken (someone else used it, or it does not fit)."""
        ...

    async def finish_verification_use(self, verification_id: str, token: str, used_for: str) -> None: ...

    async def release_verification(self, verification_id: str, token: str) -> None:
        """used → confirmed, when the write that took it under `token` failed."""
        ...

    async def overdue_verifications(self, now: datetime) -> list[Verification]:
        """Pending or confirmed verifications whose deadline has passed."""
        ...

    async def set_verification_card(
        self, verification_id: str, service_url: str, conversation_id: str, activity_id: str
    ) -> None: ...

    async def set_verification_progress(self, verification_id: str, progress: str) -> bool:
        """Records progress (e.g. "scanned") while still pending; False when it is not pending any more."""
        ...

    async def set_verification_external(self, verification_id: str, external_ref: str, external_url: str) -> None: ...

    async def add_verification_prompt(self, prompt: VerificationPrompt) -> None: ...

    async def verification_prompts(self, verification_id: str) -> list[VerificationPrompt]: ...


class AttesterDirectory(Protocol):
    async def find_user(self, reference: str) -> DirectoryUser | None: ...

    async def manager_id(self, user_id: str) -> str | None: ...

    async def sign_in_methods(self, user_id: str) -> tuple[str, ...]: ...

    async def group_members(self, group_id: str) -> frozenset[str] | None:
        """Object ids (lower case) of the group's users, nested groups included; None when too large to read."""
        ...


def recovery_methods(method_types: tuple[str, ...]) -> tuple[str, ...]:
    """The names of the sign-in methods besides a password (and a pass): any makes the next pass a recovery."""
    return tuple(
        sorted(
            {
                METHOD_NAMES.get(kind, "another sign-in method")
                for kind in method_types
                if kind not in FIRST_PASS_METHOD_TYPES
            }
        )
    )


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


class VerificationService:
    def __init__(
        self,
        *,
        rules: VerificationRules,
        store: VerificationStore,
        directory: AttesterDirectory,
        alerts: AlertSink,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._rules = rules
        self._store = store
        self._directory = directory
        self._alerts = alerts
        self._clock = clock
        self._auditor = Auditor(audit, clock)

    @property
    def rules(self) -> VerificationRules:
        return self._rules

    # --- the gate: TapService and OnboardingService ask ---------------------------------------------------

    async def requirement(
        self, user: DirectoryUser, *, first_pass_known: bool = False, methods: tuple[str, ...] | None = None
    ) -> str | None:
        """Why a pass for `user` needs a verification now (a sentence), or None. Read afresh at every write.

        `first_pass_known`: the caller already checked that the user has nothing but a password (onboarding).
        `methods`: the odata types of the user's sign-in methods (as `sign_in_methods` returns them), when the
        caller has just read them for this write; given, no second Graph read is made.
        """
        if not self._rules.enabled:
            return None
        if not first_pass_known:
            if methods is None:
                methods = await self._directory.sign_in_methods(user.object_id)
            others = recovery_methods(methods)
            if others:
                return (
                    f"{user.label} already has {', '.join(others)}, so this is a recovery pass: someone must "
                    "confirm that the person asking really is them."
                )
        if self._rules.onboarding:
            return f"{user.label} gets a first pass, and this organisation verifies the person for those too."
        return None

    async def bulk_refusal(self, user: DirectoryUser, *, methods: tuple[str, ...] | None = None) -> Refused | None:
        """A bulk row for a user who needs a verification is refused: a bulk run cannot have each person vouched
        for (nobody is on the phone for fifty users at once), and a recovery pass without one is exactly the hole
        verification closes. Checked in the preflight and again when the row is issued."""
        why = await self.requirement(user, methods=methods)
        if why is None:
            return None
        return Refused(
            Rule.VERIFICATION_REQUIRED,
            f"{why} A bulk run can't verify each person, so issue this one on its own with /tap issue.",
        )

    async def take(
        self, verification_id: str, requester: Caller, user: DirectoryUser, kind: VerificationKind
    ) -> VerificationUse:
        """Consumes the verification for this write: confirmed → used in one conditional UPDATE (same requester,
        same target, same kind of pass, not expired, only once). Refused with the reason otherwise."""
        token = f"taking:{uuid.uuid4()}"
        now = self._clock.now()
        taken = await self._store.take_verification(
            verification_id,
            requester_id=requester.object_id.lower(),
            target_id=user.object_id.lower(),
            kind=kind.value,
            now=now,
            token=token,
        )
        verification = await self._store.verification(verification_id)
        if not taken or verification is None:
            raise Refused(Rule.VERIFICATION_NOT_USABLE, _not_usable(verification, requester, user, kind, now))
        evidence = verification.evidence()
        assert evidence is not None  # it was confirmed, so it was settled
        return VerificationUse(verification, evidence, token)

    async def finish_use(self, use: VerificationUse, used_for: str) -> None:
        await self._store.finish_verification_use(use.verification.id, use.token, used_for)
        await self._auditor.record(
            AuditAction.VERIFICATION,
            AuditOutcome.SUCCEEDED,
            use.verification.requester_caller,
            target=use.verification.target_label,
            detail=f"verification {use.verification.id} used for {used_for}",
            verification_id=use.verification.id,
            evidence=use.evidence,
        )

    async def release(self, use: VerificationUse) -> None:
        await self._store.release_verification(use.verification.id, use.token)

    async def evidence_for_approval(
        self, verification_id: str, approval_id: str, requester_id: str, target_id: str
    ) -> Evidence:
        """The evidence an approval-delayed pass carries: the verification bound to exactly this approval request."""
        verification = await self._store.verification(verification_id)
        if (
            verification is None
            or verification.state is not VerificationState.USED
            or verification.used_for != f"approval:{approval_id}"
            or not _same(verification.requester.object_id, requester_id)
            or not _same(verification.target_id, target_id)
        ):
            raise Refused(
                Rule.VERIFICATION_NOT_USABLE,
                "The verification of the person this request was made with does not belong to it, so no pass was "
                "issued. Ask again.",
            )
        evidence = verification.evidence()
        assert evidence is not None
        return evidence

    # --- starting one -------------------------------------------------------------------------------------

    async def choose_attesters(self, requester: Caller, user: DirectoryUser, *, reason: str = "") -> Attesters:
        """`attesters` for a new verification: a refusal (nobody can confirm) is audited before it reaches the user."""
        try:
            return await self.attesters(requester, user)
        except Refused as refusal:
            await self._auditor.record(
                AuditAction.VERIFICATION,
                AuditOutcome.REFUSED,
                requester,
                user=user,
                rule=refusal.rule,
                detail=f"no verification started: {refusal.user_message}"[:2000],
                reason=reason,
            )
            raise

    async def attesters(self, requester: Caller, user: DirectoryUser) -> Attesters:
        """Who may confirm that the caller is `user`: their manager, unless the manager is the requester, disabled,
        a guest or missing; then the fallback group's members (never the requester or the user). Refused: nobody."""
        manager_id = await self._directory.manager_id(user.object_id)
        manager = await self._directory.find_user(manager_id) if manager_id else None
        if manager is None:
            why = f"{user.label} has no manager in Entra"
        elif _same(manager.object_id, requester.object_id):
            why = (
                f"you are {user.display_name or user.label}'s manager and the one asking, and nobody confirms "
                "their own request"
            )
        elif not manager.account_enabled:
            why = f"{user.display_name or user.label}'s manager, {manager.label}, has a disabled account"
        elif manager.user_type is not UserType.MEMBER:
            why = f"{user.display_name or user.label}'s manager, {manager.label}, is a guest"
        elif _same(manager.object_id, user.object_id):
            why = f"{user.label} is recorded as their own manager"
        else:
            return Attesters((manager,), f"{manager.display_name or manager.label} (manager)")
        group_id = self._rules.fallback_group_id
        if not group_id:
            raise Refused(
                Rule.NO_ATTESTER,
                f"I can't ask anyone to confirm who the caller is: {why}, and no fallback approver group is set up "
                "(TAPBOT_VERIFICATION_FALLBACK_GROUP). No pass was issued. Ask IT to correct the manager in Entra "
                "or set up the fallback group.",
            )
        member_ids = await self._directory.group_members(group_id)
        if member_ids is None:
            raise Refused(
                Rule.NO_ATTESTER,
                f"I can't ask anyone to confirm who the caller is: {why}, and the fallback approver group is too "
                "large to ask everyone in it. Ask IT to use a small group for TAPBOT_VERIFICATION_FALLBACK_GROUP.",
            )
        candidates = [
            member_id
            for member_id in sorted(member_ids)[:MAX_FALLBACK_APPROVERS]
            if not _same(member_id, requester.object_id) and not _same(member_id, user.object_id)
        ]
        found = [await self._directory.find_user(member_id) for member_id in candidates]
        members = [
            member
            for member in found
            if member is not None
            and member.account_enabled
            and member.user_type is UserType.MEMBER
            and not _same(member.object_id, requester.object_id)
            and not _same(member.object_id, user.object_id)
        ]
        if not members:
            raise Refused(
                Rule.NO_ATTESTER,
                f"I can't ask anyone to confirm who the caller is: {why}, and the fallback approver group has no "
                "one else who could. No pass was issued.",
            )
        label = "the fallback approvers (" + ", ".join(m.display_name or m.label for m in members[:3])
        label += ", …)" if len(members) > 3 else ")"
        return Attesters(tuple(members), label, fallback_note=why)

    async def start(
        self,
        requester: Caller,
        needed: VerificationNeeded,
        method: VerificationMethod,
        *,
        timezone: str | None = None,
        attesters: Attesters | None = None,
    ) -> Verification:
        """Saves a pending verification for the request (nothing is sent here: the edge asks the people)."""
        if requester.address is None:
            raise Refused(Rule.UNKNOWN_CALLER, "I can't tell where to send you the answer; use Microsoft Teams.")
        if method not in self._rules.methods:
            raise Refused(Rule.VERIFICATION_REQUIRED, f"Verification by {method.value} is not enabled here.")
        if method is VerificationMethod.MANAGER and attesters is None:
            attesters = await self.choose_attesters(requester, needed.user, reason=needed.request.reason)
        now = self._clock.now()
        request = needed.request
        verification = Verification(
            id=str(uuid.uuid4()),
            kind=needed.kind,
            method=method,
            state=VerificationState.PENDING,
            requester=requester.address,
            target_id=needed.user.object_id,
            target_label=needed.user.label,
            lifetime_minutes=request.lifetime_minutes,
            one_time=request.one_time if isinstance(request, PassRequest) else False,
            start_at=request.start_at,
            replace=request.replace if isinstance(request, PassRequest) else False,
            replace_method_id=request.replace_method_id if isinstance(request, PassRequest) else None,
            reason=request.reason,
            attester_ids=tuple(p.object_id.lower() for p in attesters.people) if attesters else (),
            attester_label=attesters.label if attesters else "",
            created_at=now,
            expires_at=now + self._rules.window,
            timezone=timezone if timezone and len(timezone) <= 64 else None,
        )
        await self._store.save_verification(verification)
        asked = f"asked {attesters.label}" if attesters else f"method {method.value}"
        note = f" ({attesters.fallback_note})" if attesters and attesters.fallback_note else ""
        await self._auditor.record(
            AuditAction.VERIFICATION,
            AuditOutcome.NEEDS_CONFIRMATION,
            requester,
            user=needed.user,
            detail=f"verification {verification.id} started: {asked}{note}"[:2000],
            reason=request.reason,
            verification_id=verification.id,
        )
        return verification

    # --- answers ------------------------------------------------------------------------------------------

    async def attest(self, presser: Caller, verification_id: str, *, confirm: bool) -> tuple[Verification, bool]:
        """The manager's (or a fallback approver's) answer. Only someone the verification asked may answer, and only
        while they still may (re-read now: a manager changed or disabled since is no longer asked). Returns the
        verification as it is afterwards, and whether this call changed it (this answer, or the expiry it found)."""
        verification = await self._store.verification(verification_id)
        if verification is None:
            raise Refused(Rule.NOT_ATTESTER, "I don't know this verification any more.")
        presser_id = presser.object_id.lower()
        if (
            verification.method is not VerificationMethod.MANAGER
            or presser_id not in verification.attester_ids
            or not _same(presser.tenant_id, verification.requester.tenant_id)
        ):
            await self._refuse_presser(presser, verification, "not asked")
            raise Refused(Rule.NOT_ATTESTER, "Only the person this question was sent to can answer it.")
        if not verification.is_pending:
            return verification, False
        if self._clock.now() >= verification.expires_at:
            return _changed(await self._expire(verification), verification)
        user = await self._directory.find_user(verification.target_id)
        if user is None:
            return _changed(await self.fail(verification.id, "the user no longer exists", alert=False), verification)
        try:
            current = await self.attesters(verification.requester_caller, user)
        except Refused:
            current = Attesters((), "")
        if presser_id not in {p.object_id.lower() for p in current.people}:
            await self._refuse_presser(presser, verification, "no longer the manager or a fallback approver")
            raise Refused(
                Rule.NOT_ATTESTER,
                f"You are no longer the person who can confirm {verification.target_label} (the manager or a "
                "fallback approver changed), so your answer was not taken.",
            )
        now = self._clock.now()
        who = presser.display_name or presser.object_id
        role = "manager" if verification.attester_label.endswith("(manager)") else "fallback approver"
        if confirm:
            evidence = Evidence(VerificationMethod.MANAGER.value, presser.object_id, f"{who} ({role})", now)
            confirmed = await self.complete(verification.id, evidence)
            return (confirmed, True) if confirmed else (await self._reread(verification), False)
        settled = await self._settle(
            verification,
            VerificationState.REFUSED,
            by_id=presser.object_id,
            by=f"{who} ({role})",
            detail=f"{who} said this is not {verification.target_label}",
        )
        if settled is None:
            return await self._reread(verification), False
        await self._alert(
            AlertKind.NOT_THEM,
            settled,
            f"{who} said the person asking {settled.requester.name or 'a technician'} for a Temporary Access Pass "
            f"for {settled.target_label} is NOT them. The request was blocked; no pass was issued.",
        )
        return settled, True

    async def complete(self, verification_id: str, evidence: Evidence) -> Verification | None:
        """The person is confirmed (manager or Verified ID). The confirmation must be used within the window.
        None: the verification was not pending any more (someone else answered, it expired or was cancelled)."""
        verification = await self._store.verification(verification_id)
        if verification is None or not verification.is_pending:
            return None
        return await self._settle(
            verification,
            VerificationState.CONFIRMED,
            by_id=evidence.confirmed_by_id,
            by=evidence.confirmed_by_label,
            score=evidence.score,
            at=evidence.at,
            expires_at=self._clock.now() + self._rules.window,
            detail=f"confirmed by {evidence.confirmed_by_label}",
        )

    async def fail(self, verification_id: str, why: str, *, alert: bool = True) -> Verification | None:
        """The verification failed (Verified ID refused the presentation, the user vanished). Raises a security
        alert unless `alert` is False. None: it was not pending any more."""
        verification = await self._store.verification(verification_id)
        if verification is None or not verification.is_pending:
            return None
        settled = await self._settle(verification, VerificationState.FAILED, detail=why[:1000])
        if settled is not None and alert:
            await self._alert(
                AlertKind.VERIFICATION_FAILED,
                settled,
                f"The verification of {settled.target_label} for {settled.requester.name or 'a technician'} failed: "
                f"{why}. No pass was issued.",
            )
        return settled

    async def cancel(self, caller: Caller, verification_id: str) -> tuple[Verification, bool]:
        """The technician cancels their pending (or confirmed, unused) verification. Only the requester may. Returns
        the verification afterwards and whether this call cancelled it."""
        verification = await self._store.verification(verification_id)
        if (
            verification is None
            or not _same(verification.requester.object_id, caller.object_id)
            or not _same(verification.requester.tenant_id, caller.tenant_id)
        ):
            raise Refused(Rule.NOT_ATTESTER, "Only the person who asked for this pass can cancel its verification.")
        if verification.state not in OPEN_STATES:
            return verification, False
        settled = await self._settle(
            verification,
            VerificationState.CANCELLED,
            by_id=caller.object_id,
            by=caller.display_name,
            detail="cancelled by the requester",
            from_states=OPEN_STATES,
        )
        return (settled, True) if settled else (await self._reread(verification), False)

    async def mark_progress(self, verification_id: str, progress: str) -> Verification | None:
        """Progress while pending (Verified ID: "scanned"). None: not pending any more."""
        if not await self._store.set_verification_progress(verification_id, progress[:32]):
            return None
        return await self._store.verification(verification_id)

    async def expire_overdue(self) -> list[Verification]:
        """Closes verifications past their deadline (unanswered, or confirmed and not used); returns those closed."""
        closed: list[Verification] = []
        for verification in await self._store.overdue_verifications(self._clock.now()):
            expired = await self._expire(verification)
            if expired is not None:
                closed.append(expired)
        return closed

    async def expire(self, verification_id: str, detail: str) -> Verification | None:
        """A pending verification whose method ran out before the window did (Verified ID's request expired): it
        expires now, audited, without an alert. None: it was not pending any more. (Added by the Verified ID flow.)"""
        verification = await self._store.verification(verification_id)
        if verification is None or not verification.is_pending:
            return None
        return await self._settle(verification, VerificationState.EXPIRED, detail=detail[:1000])

    # --- reading and remembering --------------------------------------------------------------------------

    async def get(self, verification_id: str) -> Verification | None:
        return await self._store.verification(verification_id)

    async def remember_card(
        self, verification_id: str, service_url: str, conversation_id: str, activity_id: str
    ) -> None:
        await self._store.set_verification_card(verification_id, service_url, conversation_id, activity_id)

    async def remember_external(self, verification_id: str, external_ref: str, external_url: str) -> None:
        await self._store.set_verification_external(verification_id, external_ref, external_url)

    async def remember_prompt(self, prompt: VerificationPrompt) -> None:
        await self._store.add_verification_prompt(prompt)

    async def prompts(self, verification_id: str) -> list[VerificationPrompt]:
        return await self._store.verification_prompts(verification_id)

    # --- internals ----------------------------------------------------------------------------------------

    async def _expire(self, verification: Verification) -> Verification | None:
        pending = verification.is_pending
        settled = await self._settle(
            verification,
            VerificationState.EXPIRED,
            detail="nobody answered in time" if pending else "the confirmation was not used in time",
            from_states=OPEN_STATES,
            keep_settler=not pending,
        )
        return settled

    async def _settle(
        self,
        verification: Verification,
        to: VerificationState,
        *,
        by_id: str | None = None,
        by: str | None = None,
        score: float | None = None,
        at: datetime | None = None,
        expires_at: datetime | None = None,
        detail: str = "",
        from_states: frozenset[VerificationState] = frozenset({VerificationState.PENDING}),
        keep_settler: bool = False,
    ) -> Verification | None:
        now = at or self._clock.now()
        if keep_settler:  # an unused confirmation expires: who confirmed it stays on record
            by_id, by, score, now = (
                verification.settled_by_id,
                verification.settled_by,
                verification.score,
                (verification.settled_at or now),
            )
        won = await self._store.settle_verification(
            verification.id,
            from_states=from_states,
            to=to,
            at=now,
            by_id=by_id,
            by=by,
            score=score,
            detail=detail,
            expires_at=expires_at,
        )
        if not won:
            return None
        settled = replace(
            verification,
            state=to,
            settled_at=now,
            settled_by_id=by_id,
            settled_by=by,
            score=score,
            detail=detail,
            expires_at=expires_at or verification.expires_at,
        )
        outcome = {
            VerificationState.CONFIRMED: AuditOutcome.SUCCEEDED,
            VerificationState.CANCELLED: AuditOutcome.NOTHING_TO_DO,
            VerificationState.REFUSED: AuditOutcome.REFUSED,
        }.get(to, AuditOutcome.FAILED)
        await self._auditor.record(
            AuditAction.VERIFICATION,
            outcome,
            Caller(by_id or "tapbot", verification.requester.tenant_id, by or "tapbot"),
            target=verification.target_label,
            detail=f"verification {verification.id} {to.value}: {detail}"[:2000],
            reason=verification.reason,
            verification_id=verification.id,
            evidence=settled.evidence(),
        )
        return settled

    async def _reread(self, verification: Verification) -> Verification:
        return await self._store.verification(verification.id) or verification

    async def _refuse_presser(self, presser: Caller, verification: Verification, why: str) -> None:
        await self._auditor.record(
            AuditAction.VERIFICATION,
            AuditOutcome.REFUSED,
            presser,
            target=verification.target_label,
            rule=Rule.NOT_ATTESTER,
            detail=f"answer to verification {verification.id} refused: {why}",
            verification_id=verification.id,
        )

    async def _alert(self, kind: AlertKind, verification: Verification, summary: str) -> None:
        await self._alerts.raise_alert(
            SecurityAlert(
                kind=kind,
                at=self._clock.now(),
                actor_id=verification.requester.object_id,
                actor_label=verification.requester.name,
                target_id=verification.target_id,
                target_label=verification.target_label,
                summary=summary,
            )
        )


def _changed(settled: Verification | None, before: Verification) -> tuple[Verification, bool]:
    return (settled, True) if settled is not None else (before, False)


def _not_usable(
    verification: Verification | None, requester: Caller, user: DirectoryUser, kind: VerificationKind, now: datetime
) -> str:
    """Why a verification cannot be used for this write, in one sentence."""
    if verification is None:
        return "I don't know that verification, so no pass was issued. Start again."
    if not _same(verification.requester.object_id, requester.object_id):
        return "That verification was made for another technician's request, so it can't be used for yours."
    if not _same(verification.target_id, user.object_id) or verification.kind is not kind:
        return "That verification was made for another pass, so it can't be used for this one."
    if verification.state is VerificationState.USED:
        return (
            f"The verification of {verification.target_label} was already used for a pass; a verification counts "
            "for one pass only. Start again if another pass is needed."
        )
    if verification.state is VerificationState.CONFIRMED and now >= verification.expires_at:
        return f"The verification of {verification.target_label} has expired. Start again."
    return (
        f"The verification of {verification.target_label} is {verification.state.value}, not confirmed, so no pass "
        "was issued."
    )
