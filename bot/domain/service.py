"""Issuing, revoking and looking up passes: the operator commands, with every rule checked before a write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from bot.domain.alerts import AlertKind, AlertSink, SecurityAlert, VelocityLimit
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.auditing import Auditor, Subject
from bot.domain.eligibility import (
    TargetFacts,
    resolve_lifetime,
    resolve_one_time,
    schedule_refusal,
    start_refusal,
    target_refusal,
)
from bot.domain.errors import (
    GraphUnavailable,
    NotRecorded,
    Refused,
    Rule,
    SignInRequired,
    TapError,
    TargetBusy,
    UserNotFound,
)
from bot.domain.follow_through import PassWatch, UndeliveredPasses
from bot.domain.model import (
    Caller,
    DirectoryUser,
    Evidence,
    IssuedPass,
    PassInfo,
    PassRequest,
    TapPolicy,
    UnseenPass,
)
from bot.domain.ports import (
    AuditLog,
    Clock,
    Directory,
    PassMethods,
    PassWritesSince,
    TargetLocks,
    TargetReading,
    TargetReads,
    Transactions,
)
from bot.domain.reasons import NO_REASON_RULES, PassReasons, ReasonRules, clean_reason
from bot.domain.verification import VerificationKind, VerificationNeeded, VerificationService, VerificationUse

if TYPE_CHECKING:
    from bot.domain.approvals import ApprovalRequest

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Check-and-create for one user holds this lock. Its time runs out by itself, so a replica that died holding it
# blocks that user for a minute at most; a check and a create take well under that.
TARGET_LOCK_TTL = timedelta(seconds=60)
TARGET_LOCK_WAIT = timedelta(seconds=5)  # how long a second operator waits before being told to try again
TARGET_LOCK_POLL_SECONDS = 0.1
# How long the tenant's TAP policy and a *positive* operator check are reused (TAPBOT_DIRECTORY_CACHE_SECONDS).
# Within it, someone just removed from the operator group can still run interactive commands (issue, revoke,
# status, policy, bulk preflight) — nothing that acts later: approvals, bulk runs and retries check the requester
# afresh when they write. A refusal and a target's eligibility are never cached. Graph itself refuses a pass the
# policy no longer allows, so a just-changed policy is at worst explained with the old numbers.
DEFAULT_CACHE_WINDOW = timedelta(seconds=0)
# The delete of a pass nobody was shown is tried once more after a transient failure (Graph 5xx, timeout,
# throttling): deleting is idempotent (a pass already gone is no error). A refusal or a missing sign-in is not.
UNDELIVERED_RETRY_PAUSE_SECONDS = 1.0


@dataclass(frozen=True)
class AccessRules:
    """Who may use the bot and which accounts are off limits, from settings."""

    allowed_tenant_ids: frozenset[str]
    operator_group_id: str
    protected_group_ids: frozenset[str] = frozenset()


@dataclass
class HeldLock:
    """A user's check-and-create lock while `target_lock` holds it. A pass created under it (`create_checked_pass`
    with `lock=`) gives it back in the transaction of the pass's audit row."""

    key: str
    holder: str
    released: bool = False
    # Passes the operator named by `target_lock(counting=...)` created in the last hour, read as the lock was taken.
    issued_in_window: int | None = None


@dataclass(frozen=True)
class ReplaceNeeded:
    """The target already holds a live pass: the operator must confirm replacing it."""

    user: DirectoryUser
    existing: PassInfo
    request: PassRequest
    lifetime_minutes: int
    one_time: bool


@dataclass(frozen=True)
class Issued:
    issued: IssuedPass


@dataclass(frozen=True)
class AwaitingApproval:
    """The request waits for an operator's decision in the approvals channel."""

    request: ApprovalRequest


IssueResult = Issued | ReplaceNeeded | AwaitingApproval | VerificationNeeded


@dataclass(frozen=True)
class TargetCheck:
    policy: TapPolicy
    existing: PassInfo | None
    sign_in_methods: tuple[str, ...] | None = None
    """The user's sign-in method types, read with the pass when asked for (`check_target(with_methods=True)`)."""

    def unpack(self) -> tuple[TapPolicy, PassInfo | None]:
        return self.policy, self.existing


class ApprovalGate(Protocol):
    """Decides whether an operator's pass waits for a second operator (long lifetimes)."""

    def long_lifetime(self, lifetime_minutes: int) -> bool: ...

    async def ask_for_long_lifetime(
        self, caller: Caller, user: DirectoryUser, request: PassRequest, *, lifetime_minutes: int, one_time: bool
    ) -> AwaitingApproval: ...

    async def ask_for_velocity(
        self,
        caller: Caller,
        user: DirectoryUser,
        request: PassRequest,
        *,
        lifetime_minutes: int,
        one_time: bool,
        limit: int,
    ) -> AwaitingApproval: ...


@dataclass(frozen=True)
class Revoked:
    user: DirectoryUser
    revoked: PassInfo
    graph_request_id: str | None


@dataclass(frozen=True)
class NothingToRevoke:
    user: DirectoryUser


RevokeResult = Revoked | NothingToRevoke


@dataclass(frozen=True)
class LeftLive:
    """A pass nobody was shown (its delivery failed) that could not be deleted either: it is live until deleted or
    expired. `why` is why the delete failed, for people to read. Never the pass value."""

    user: DirectoryUser
    info: PassInfo
    why: str
    shown_to_requester: bool = False  # its card was shown and taken back (it could not be recorded)
    retrying: bool = False  # housekeeping keeps trying to delete it
    alerted: bool = False

    def sentence(self, until: str) -> str:
        """What the requester must know, `until` being the expiry as they read times."""
        shown = (
            "Its value was only on your card, which I took back"
            if self.shown_to_requester
            else "Its value was not shown to anyone"
        )
        then = []
        if self.retrying:
            then.append("I keep trying to delete it until it is gone or expired")
        if self.alerted:
            then.append("the security team was alerted")
        after = f" {'; '.join(then).capitalize()}." if then else ""
        return (
            f"I could not delete it either ({self.why}): the pass for {self.user.label} still exists and is valid "
            f"until {until}. {shown}. Remove it now: type /tap revoke {self.user.user_principal_name}, or delete it "
            f"in the Entra admin center (Users, {self.user.display_name or self.user.user_principal_name}, "
            f"Authentication methods).{after}"
        )


@dataclass(frozen=True)
class PassStatus:
    user: DirectoryUser
    current: PassInfo | None
    now: datetime
    reason: str | None = None  # the reason the current pass was issued with (None: unknown, e.g. made elsewhere)


class TapService:
    def __init__(
        self,
        *,
        directory: Directory,
        passes: PassMethods,
        audit: AuditLog,
        clock: Clock,
        access: AccessRules,
        locks: TargetLocks,
        approval_gate: ApprovalGate | None = None,
        lock_wait: timedelta = TARGET_LOCK_WAIT,
        cache_window: timedelta = DEFAULT_CACHE_WINDOW,
        reasons: ReasonRules = NO_REASON_RULES,
        pass_reasons: PassReasons | None = None,
        pass_writes: PassWritesSince | None = None,
        verification: VerificationService | None = None,
        velocity: VelocityLimit | None = None,
        undelivered: UndeliveredPasses | None = None,
        alerts: AlertSink | None = None,
        target_reads: TargetReads | None = None,
        transactions: Transactions | None = None,
    ) -> None:
        # None: every store call is its own transaction (the lock, the velocity count and the audit row apart).
        self._transactions = transactions
        # None: the target's roles, groups and pass are read by the Directory and PassMethods calls one by one.
        self._target_reads = target_reads
        self._undelivered = undelivered
        self._alerts = alerts
        self._velocity = velocity
        self._verification = verification
        self._reasons = reasons
        self._pass_reasons = pass_reasons
        # None: whether a delivered pass is still current is always read from the directory.
        self._pass_writes = pass_writes
        self._cache_window = cache_window
        self._policy_cache: tuple[datetime, TapPolicy] | None = None
        self._operator_until: dict[str, datetime] = {}  # caller object id -> a positive check is good until
        self._approval_gate = approval_gate
        self._locks = locks
        self._lock_wait = lock_wait
        self._directory = directory
        self._passes = passes
        self._clock = clock
        self._access = access
        self._auditor = Auditor(audit, clock)

    # --- who is asking -------------------------------------------------------------------------------------

    async def is_operator(self, caller: Caller) -> bool:
        """Read afresh from the directory (a positive answer refreshes the short cache, a negative one clears it)."""
        if caller.tenant_id.lower() not in self._access.allowed_tenant_ids or not caller.object_id:
            return False
        groups = await self._directory.member_groups(caller.object_id, [self._access.operator_group_id])
        operator = self._access.operator_group_id in groups
        key = caller.object_id.lower()
        if operator and self._cache_window > timedelta(0):
            self._operator_until[key] = self._clock.now() + self._cache_window
        else:
            self._operator_until.pop(key, None)
        return operator

    async def _is_operator_recently(self, caller: Caller) -> bool:
        """`is_operator`, reusing a positive answer younger than the cache window (see DEFAULT_CACHE_WINDOW)."""
        if caller.tenant_id.lower() in self._access.allowed_tenant_ids and caller.object_id:
            until = self._operator_until.get(caller.object_id.lower())
            if until is not None and self._clock.now() < until:
                return True
        return await self.is_operator(caller)

    async def tap_policy(self) -> TapPolicy:
        """The tenant's TAP policy, reused for the cache window."""
        now = self._clock.now()
        if self._policy_cache is not None and now < self._policy_cache[0]:
            return self._policy_cache[1]
        policy = await self._directory.tap_policy()
        if self._cache_window > timedelta(0):
            self._policy_cache = (now + self._cache_window, policy)
        return policy

    async def require_operator(self, caller: Caller) -> None:
        await self._require_operator(caller)

    @property
    def protected_group_ids(self) -> frozenset[str]:
        """The groups whose members never get a pass (a bulk job's snapshot reads their members)."""
        return self._access.protected_group_ids

    @property
    def reason_rules(self) -> ReasonRules:
        return self._reasons

    @property
    def verification(self) -> VerificationService | None:
        """Verification of the person before a pass (None: off, today's behaviour). Onboarding and approvals use it."""
        return self._verification

    async def verification_for_write(
        self,
        caller: Caller,
        user: DirectoryUser,
        verification_id: str | None,
        kind: VerificationKind,
        *,
        methods: tuple[str, ...] | None = None,
    ) -> VerificationUse | VerificationNeeded | None:
        """At the write: the verification the request carries, consumed (refused when it does not fit), or
        VerificationNeeded when the user needs one and none was given, or None when none is needed. `methods`: the
        user's sign-in method types, when the caller read them under the user's lock for this write."""
        if self._verification is None:
            return None
        if verification_id is not None:
            return await self._verification.take(verification_id, caller, user, kind)
        why = await self._verification.requirement(
            user, first_pass_known=kind is VerificationKind.ONBOARD, methods=methods
        )
        if why is None:
            return None
        return VerificationNeeded(PassRequest(user.object_id), user, self._verification.rules.methods, kind, why)

    def _reads_methods(self, request: PassRequest) -> bool:
        """Whether a typed issue's write will ask the verification's requirement, which reads the user's methods."""
        return self._verification is not None and self._verification.rules.enabled and request.verification_id is None

    async def approved_evidence(
        self,
        caller: Caller,
        user: DirectoryUser,
        *,
        approval_id: str,
        verification_id: str | None,
        kind: VerificationKind,
    ) -> Evidence | None:
        """An approval-delayed pass at its write: the verification bound to this approval when it was opened, or,
        when it carries none, a refusal if the user needs one now (the rules are as of the write)."""
        if verification_id is not None:
            if self._verification is None:
                return None
            return await self._verification.evidence_for_approval(
                verification_id, approval_id, caller.object_id, user.object_id
            )
        if self._verification is None:
            return None
        why = await self._verification.requirement(user, first_pass_known=kind is VerificationKind.ONBOARD)
        if why is None:
            return None
        raise Refused(
            Rule.VERIFICATION_REQUIRED,
            f"{why} This request was made without that verification, so no pass was issued. Ask again.",
        )

    def check_reason(self, reason: str) -> str:
        """The cleaned reason, or ReasonRefused with a sentence saying what to write. Every path calls this before
        it reads the target or writes anything (issue, revoke, onboarding, bulk rows)."""
        return self._reasons.check(reason)

    async def require_operator_still(self, requester: Caller) -> None:
        """The right of someone who asked earlier (an approval, a bulk run), checked again when the write happens."""
        if not await self.is_operator(requester):
            raise Refused(
                Rule.NOT_OPERATOR,
                f"{requester.display_name or 'The requester'} is no longer a TAP operator "
                "(a member of the IT operator group).",
            )

    @asynccontextmanager
    async def target_lock(
        self,
        user: DirectoryUser,
        *,
        wait: timedelta | None = None,
        counting: Caller | None = None,
        on_taking: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[HeldLock]:
        """Holds the user's lock around "read the current pass, decide, create": one at a time, on every replica.

        Waits a few seconds for a lock someone else holds, then raises TargetBusy. `counting`: the operator whose
        passes of the last hour the velocity limit will count, read in the transaction that takes the lock.
        `on_taking`: store calls (nothing else) made in that transaction too, durable with the lock before anything
        runs under it (a bulk row's journal entry); if they fail, the lock is not taken.
        """
        held = HeldLock(user.object_id.lower(), uuid.uuid4().hex)
        deadline = time.monotonic() + (self._lock_wait if wait is None else wait).total_seconds()
        while not await self._take(held, counting, on_taking):
            if time.monotonic() >= deadline:
                raise TargetBusy(user.label)
            await asyncio.sleep(TARGET_LOCK_POLL_SECONDS)
        try:
            yield held
        finally:
            if not held.released:
                try:
                    await self._locks.unlock_target(held.key, held.holder)
                except Exception:  # it runs out by itself after TARGET_LOCK_TTL
                    logger.warning("could not release the lock of user %s", held.key, exc_info=True)

    async def _take(
        self, held: HeldLock, counting: Caller | None, on_taking: Callable[[], Awaitable[None]] | None
    ) -> bool:
        velocity = self._velocity if self._approval_gate is not None else None  # no gate: the limit is not checked
        async with self._together():
            if not await self._locks.lock_target(held.key, held.holder, self._clock.now(), TARGET_LOCK_TTL):
                return False
            try:
                if counting is not None and velocity is not None:
                    held.issued_in_window = await velocity.issued_in_window(counting)
                if on_taking is not None:
                    await on_taking()
            except BaseException:
                if self._transactions is None:  # in one transaction, the lock is rolled back with them
                    await self._locks.unlock_target(held.key, held.holder)
                raise
        return True

    def _together(self) -> AbstractAsyncContextManager[None]:
        return self._transactions.together() if self._transactions is not None else nullcontext()

    async def _require_operator(self, caller: Caller) -> None:
        await self.require_known_caller(caller)
        if not await self._is_operator_recently(caller):
            raise Refused(
                Rule.NOT_OPERATOR,
                "Only TAP operators (members of the IT operator group) can use this command. "
                "Ask your IT service desk if you need a Temporary Access Pass.",
            )

    # --- commands ------------------------------------------------------------------------------------------

    async def issue(self, caller: Caller, request: PassRequest) -> IssueResult:
        subject = Subject(request.target, reason=clean_reason(request.reason))
        return await self._auditor.audited(
            AuditAction.ISSUE, caller, subject, lambda: self._issue(caller, request, subject)
        )

    async def revoke(self, caller: Caller, target: str, *, reason: str = "") -> RevokeResult:
        subject = Subject(target, reason=clean_reason(reason))
        return await self._auditor.audited(AuditAction.REVOKE, caller, subject, lambda: self._revoke(caller, subject))

    async def status(self, caller: Caller, target: str) -> PassStatus:
        subject = Subject(target)
        return await self._auditor.audited(AuditAction.STATUS, caller, subject, lambda: self._status(caller, subject))

    async def policy(self, caller: Caller) -> TapPolicy:
        return await self._auditor.audited(AuditAction.POLICY, caller, Subject(None), lambda: self._policy(caller))

    async def revoke_undelivered(
        self,
        caller: Caller,
        issued: IssuedPass | UnseenPass,
        reason: str,
        *,
        acting_as: Caller | None = None,
        timezone: str = "UTC",
        shown_to_requester: bool = False,
    ) -> LeftLive | None:
        """Deletes a pass nobody received (delivery failed): a live pass no one has seen is pure risk. `acting_as`:
        whose rights delete it when writes are delegated (the caller unless said otherwise: an approval's approver);
        never the app's. None once deleted. When it cannot be deleted, it is never reported revoked: the audit row
        says it is live, a security alert is raised, housekeeping keeps trying (follow_through.revoke_round), and
        the returned LeftLive says what the requester must be told."""
        deleter = acting_as or caller
        try:
            request_id = await self._delete_undelivered(issued, deleter)
        except TapError as error:
            return await self._left_live(caller, deleter, issued, reason, error, timezone, shown_to_requester)
        await self._auditor.record(
            AuditAction.REVOKE,
            AuditOutcome.SUCCEEDED,
            caller,
            user=issued.user,
            pass_info=issued.info,
            graph_request_id=request_id,
            detail=f"revoked because delivery failed: {reason}",
        )
        return None

    async def _delete_undelivered(self, issued: IssuedPass | UnseenPass, deleter: Caller) -> str | None:
        for attempt in (1, 2):
            try:
                return await self._passes.delete_pass(issued.user.object_id, issued.info.method_id, acting_as=deleter)
            except GraphUnavailable as error:
                if attempt == 2:
                    raise
                logger.warning(
                    "the delete of an undelivered pass for user %s failed (%s); trying once more",
                    issued.user.object_id,
                    type(error).__name__,
                )
                await asyncio.sleep(UNDELIVERED_RETRY_PAUSE_SECONDS)
        raise AssertionError("unreachable")

    async def _left_live(
        self,
        caller: Caller,
        deleter: Caller,
        issued: IssuedPass | UnseenPass,
        reason: str,
        error: TapError,
        timezone: str,
        shown_to_requester: bool,
    ) -> LeftLive:
        user, info = issued.user, issued.info
        why = _why_not_deleted(error, None if deleter.object_id == caller.object_id else deleter)
        until = info.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        logger.error(
            "an undelivered pass for user %s could not be deleted (%s); it stays live until %s",
            user.object_id,
            type(error).__name__,
            until,
        )
        retrying = await self._keep_for_housekeeping(deleter, issued, timezone)
        seen = "its value was only on the requester's card, taken back" if shown_to_requester else "shown to nobody"
        then = "housekeeping retries the delete" if retrying else "it could not be kept for housekeeping"
        try:  # the requester must still be told when SQL is what failed (a card that could not be recorded)
            await self._auditor.record(
                AuditAction.REVOKE,
                AuditOutcome.FAILED,
                caller,
                user=user,
                pass_info=info,
                graph_request_id=getattr(error, "request_id", None),
                detail=f"NOT revoked: delivery failed ({reason}) and the delete failed ({why}); the pass stays live "
                f"until {until} ({seen}); {then}",
            )
        except Exception:
            logger.exception("could not audit the undelivered, undeleted pass of user %s", user.object_id)
        who = caller.display_name or caller.object_id
        alerted = await self._alert_left_live(
            caller,
            user,
            f"A Temporary Access Pass for {user.label} that {who} asked for could not be shown to them ({reason}) and "
            f"could not be deleted ({why}). It is valid until {until} unless deleted (/tap revoke "
            f"{user.user_principal_name}, or the Entra admin center). "
            + ("tapbot keeps trying to delete it." if retrying else "tapbot will not try again."),
        )
        return LeftLive(user, info, why, shown_to_requester, retrying, alerted)

    async def alert_unchecked_unseen(self, requester: Caller, user: DirectoryUser, job_id: int) -> None:
        """A stopped bulk run made (or may have made) a pass for `user` that nobody was shown, and the directory
        could not be read to delete it: the security channel is told, since nothing will look at it again."""
        try:
            await self._alert_left_live(
                requester,
                user,
                f"Bulk job {job_id} stopped before showing the Temporary Access Pass it made (or may have made) for "
                f"{user.label}, and Microsoft Graph could not be read to delete it. If {user.label} holds a pass "
                f"nobody handed over, revoke it (/tap revoke {user.user_principal_name}, or the Entra admin center).",
            )
        except Exception:
            logger.exception("could not raise the alert for an unseen pass of user %s", user.object_id)

    async def _alert_left_live(self, caller: Caller, user: DirectoryUser, summary: str) -> bool:
        """The security alert for a pass nobody was shown that could not be deleted; whether one was raised."""
        if self._alerts is None:
            return False
        await self._alerts.raise_alert(
            SecurityAlert(
                kind=AlertKind.UNDELIVERED_PASS_LIVE,
                at=self._clock.now(),
                actor_id=caller.object_id,
                actor_label=caller.display_name,
                target_id=user.object_id,
                target_label=user.label,
                summary=summary,
                tenant_id=caller.tenant_id,
            )
        )
        return True

    async def _keep_for_housekeeping(self, deleter: Caller, issued: IssuedPass | UnseenPass, timezone: str) -> bool:
        if self._undelivered is None:
            return False
        info = issued.info
        watch = PassWatch(
            pass_method_id=info.method_id,
            target_id=issued.user.object_id,
            target_label=issued.user.label,
            requester_id=deleter.object_id,  # whose rights delete it (who created it)
            timezone=timezone,
            service_url="",  # the requester's 1:1 chat could not be reached: nothing is sent there
            conversation_id="",
            one_time=info.one_time,
            start_at=info.start_at,
            expires_at=info.expires_at,
        )
        try:
            await self._undelivered.watch_undelivered(watch, self._clock.now())
        except Exception:
            logger.exception("could not keep the undelivered pass of user %s for housekeeping", issued.user.object_id)
            return False
        return True

    # --- the work ------------------------------------------------------------------------------------------

    async def check_target(
        self, requester: Caller, user: DirectoryUser, *, policy: TapPolicy | None = None, with_methods: bool = False
    ) -> TargetCheck:
        """Every rule about the target, for whoever will receive the pass; raises the first refusal.

        A caller checking many users (the name search's suggestions) passes the policy it read once; a bulk job
        decides on its snapshot instead (job_snapshot.py), by the same rule. `with_methods`: the user's sign-in
        methods are read with the pass where the directory can (one Graph request instead of two), for the
        verification's requirement.
        """
        if policy is None:
            policy = await self.tap_policy()
        _, check = await self._checked_facts(requester, _given(user), user.object_id, policy, with_methods)
        assert check is not None  # the user was given, so it exists
        return check

    async def _checked_facts(
        self,
        requester: Caller,
        user_read: Awaitable[DirectoryUser | None],
        user_id: str,
        policy: TapPolicy,
        with_methods: bool = False,
    ) -> tuple[DirectoryUser | None, TargetCheck | None]:
        interesting_groups = self._access.protected_group_ids | policy.target_group_ids
        if self._target_reads is not None and with_methods:
            reading = self._target_reads.target_reading(user_id, interesting_groups, with_methods=True)
        elif self._target_reads is not None:
            reading = self._target_reads.target_reading(user_id, interesting_groups)
        else:
            reading = self._target_reading(user_id, interesting_groups)
        user, read = await asyncio.gather(user_read, reading)
        if user is None:
            return None, None
        refusal = target_refusal(
            requester,
            TargetFacts(user, read.role_names, read.member_group_ids),
            policy,
            self._access.protected_group_ids,
        )
        if refusal is not None:
            raise refusal
        return user, TargetCheck(policy, read.current_pass, read.sign_in_methods)

    async def _target_reading(self, user_id: str, group_ids: frozenset[str]) -> TargetReading:
        role_names, existing, member_groups = await asyncio.gather(
            self._directory.directory_roles(user_id),
            self._passes.current_pass(user_id),
            self._directory.member_groups(user_id, group_ids),
        )
        return TargetReading(role_names, member_groups, existing)

    async def create_checked_pass(
        self,
        requester: Caller,
        user: DirectoryUser,
        *,
        lifetime_minutes: int,
        one_time: bool,
        start_at: datetime | None,
        existing: PassInfo | None,
        action: AuditAction = AuditAction.ISSUE,
        detail: str = "",
        max_throttle_wait: timedelta | None = None,
        reason: str = "",
        evidence: Evidence | None = None,
        verification_id: str | None = None,
        acting_as: Caller | None = None,
        lock: HeldLock | None = None,
        on_recorded: Callable[[IssuedPass], Awaitable[None]] | None = None,
    ) -> IssuedPass:
        """Creates a pass whose rules were already checked (inside `target_lock`), and audits it.

        Graph's bounds are checked once more here, whoever the caller: a pass nobody could be shown is never made.
        `acting_as`: whose rights make the write when writes are delegated: the requester unless said otherwise (an
        approval's approver). Raises SignInRequired (nothing written, nothing audited here) when they have no token.
        `lock`: the user's lock this runs under; given, it is released in the audit row's transaction (the pass exists
        and is recorded: nothing is left for the lock to guard), so nothing after this in the caller's lock block may
        rely on still holding it. `on_recorded`: store calls (nothing else) made in the audit row's transaction too
        (a bulk row's journal entry saying its pass exists).
        """
        refusal = schedule_refusal(lifetime_minutes, start_at, self._clock.now())
        if refusal is not None:
            raise refusal
        issued = await self._passes.create_pass(
            user,
            lifetime_minutes=lifetime_minutes,
            one_time=one_time,
            start_at=start_at,
            replacing=existing,
            max_throttle_wait=max_throttle_wait,
            acting_as=acting_as or requester,
        )
        if existing is not None or evidence is not None:
            issued = IssuedPass(issued.user, issued.info, issued.secret, issued.graph_request_id, existing, evidence)
        releasing = lock if lock is not None and self._transactions is not None else None
        in_lock_order = False

        async def record() -> None:
            nonlocal in_lock_order
            await self._auditor.record(
                action,
                AuditOutcome.SUCCEEDED,
                requester,
                user=user,
                pass_info=issued.info,
                graph_request_id=issued.graph_request_id,
                detail="; ".join(part for part in (detail, _replacement_note(existing)) if part),
                reason=reason,
                verification_id=verification_id,
                evidence=evidence,
            )
            if releasing is not None:
                in_lock_order = await self._locks.unlock_target(releasing.key, releasing.holder)

        # One commit for all: the audit row is durable before this returns, as it was alone. Should it fail, nothing
        # is released here (the lock block's end tries again, as after any failure) and the error goes up as before.
        try:
            async with self._together():
                await record()
                if on_recorded is not None:
                    await on_recorded(issued)
        except Exception as failure:
            if on_recorded is None:
                # Nothing else would ever find this pass again (a bulk row's journal does: it says CREATING).
                raise await self._withdraw_unrecorded(requester, issued, acting_as or requester) from failure
            if self._transactions is None:  # without one transaction, the row was written
                raise
            # The caller's own store calls (or the commit) failed and took the audit row with them: the pass exists,
            # so its audit row is written again on its own, as before they shared its transaction; then the error
            # goes up.
            async with self._together():
                await record()
            if releasing is not None:
                releasing.released = True
            raise
        if releasing is not None:
            releasing.released = True
        return replace(issued, recorded_in_lock_order=in_lock_order)

    async def _withdraw_unrecorded(self, requester: Caller, issued: IssuedPass, deleter: Caller) -> NotRecorded:
        """A pass whose audit row could not be written (the database failed): issued unrecorded, it would be live and
        invisible to the security team, so it is deleted before anyone sees it. The error says what became of it."""
        user = issued.user
        try:
            await self._delete_undelivered(issued, deleter)
        except TapError as error:
            until = issued.info.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            logger.error(
                "the pass of user %s could not be recorded in the audit log nor deleted (%s); it stays live until %s",
                user.object_id,
                type(error).__name__,
                until,
            )
            with contextlib.suppress(Exception):  # the alert's own record may need the database that failed
                await self._alert_left_live(
                    requester,
                    user,
                    f"A Temporary Access Pass for {user.label} could not be written to the audit log and could not "
                    f"be deleted ({_why_not_deleted(error, None)}). It is valid until {until} unless deleted "
                    f"(/tap revoke {user.user_principal_name}, or the Entra admin center).",
                )
            return NotRecorded(
                f"I could not write the new pass for {user.label} to the audit log, and could not delete it either: "
                f"it is valid until {until} and nobody was shown it. Revoke it now (/tap revoke "
                f"{user.user_principal_name}), or ask IT to delete it in the Entra admin center."
            )
        logger.error("the pass of user %s could not be recorded in the audit log; it was deleted again", user.object_id)
        return NotRecorded(
            f"I could not write the new pass for {user.label} to the audit log, so I deleted it again: no pass was "
            "issued. Try again in a minute; if it keeps happening, tell IT (the bot's database may be unavailable)."
        )

    async def recorded_as_created(self, pass_method_id: str) -> bool:
        """Whether the audit log records this pass's creation by the bot (an issue or onboarding that succeeded)."""
        if self._pass_reasons is None:
            return False
        return await self._pass_reasons.reason_for_pass(pass_method_id) is not None

    async def still_current(self, issued: IssuedPass) -> bool:
        """Whether the pass just delivered is still the user's pass: another operator may have replaced or revoked
        it between its create and its card being recorded, and their redaction then found no card to hide.

        Every such write of the bot is in the audit log before it redacts; Graph is asked only when the log records
        one since this pass's creation, or cannot be read, or cannot tell "since": the log's order is the order of a
        user's passes only if this one's row was written while its creator still held the user's lock (a create that
        outlasted the lock may be recorded after one that replaced it). A pass replaced outside the bot (the Entra
        admin center) in that moment is not noticed here, as one replaced there a moment later never was."""
        if self._pass_writes is not None and issued.recorded_in_lock_order:
            try:
                if not await self._pass_writes.may_have_ended(issued.user.object_id, issued.info.method_id):
                    return True
            except Exception:
                logger.warning("could not read the audit log about the pass of user %s", issued.user.object_id)
        try:
            current = await self._passes.current_pass(issued.user.object_id)
        except TapError:
            logger.warning("could not read the pass of user %s after delivery", issued.user.object_id)
            return True
        return current is not None and current.method_id == issued.info.method_id

    async def group_names(self, group_ids: frozenset[str]) -> dict[str, str]:
        """Display names of the policy's groups, for people to read (an id where a group cannot be read)."""
        names = await asyncio.gather(*(self._directory.group_name(group_id) for group_id in sorted(group_ids)))
        return {group_id: name for group_id, name in zip(sorted(group_ids), names, strict=True) if name}

    async def revoke_checked_pass(
        self,
        requester: Caller,
        user_id: str,
        current: PassInfo,
        *,
        detail: str,
        reason: str = "",
        acting_as: Caller | None = None,
    ) -> None:
        """Deletes a pass an authorised job decided to revoke, and audits it. `acting_as`: whose rights make the
        delete when writes are delegated (the requester unless said otherwise)."""
        request_id = await self._passes.delete_pass(user_id, current.method_id, acting_as=acting_as or requester)
        await self._auditor.record(
            AuditAction.REVOKE,
            AuditOutcome.SUCCEEDED,
            requester,
            target=user_id,
            pass_info=current,
            graph_request_id=request_id,
            detail=detail,
            reason=reason,
        )

    async def require_known_caller(self, caller: Caller) -> None:
        """The tenant and identity checks every command starts with (operators and managers alike)."""
        if caller.tenant_id.lower() not in self._access.allowed_tenant_ids:
            raise Refused(
                Rule.WRONG_TENANT,
                "This bot serves only its own organisation's tenant; your account belongs to another one.",
            )
        if not caller.object_id:
            raise Refused(
                Rule.UNKNOWN_CALLER,
                "I can't tell who you are from this message, so I can't act on it. Use Microsoft Teams "
                "signed in with your work account.",
            )

    async def find_user(self, subject: Subject) -> DirectoryUser:
        return await self._find_user(subject)

    async def _issue(self, caller: Caller, request: PassRequest, subject: Subject) -> IssueResult:
        await self._require_operator(caller)
        request = replace(request, reason=self.check_reason(request.reason))
        user = await self._find_user(subject)
        async with self.target_lock(user, counting=caller) as held:
            return await self._issue_locked(caller, request, user, held)

    async def _issue_locked(
        self, caller: Caller, request: PassRequest, user: DirectoryUser, held: HeldLock
    ) -> IssueResult:
        check = await self.check_target(caller, user, with_methods=self._reads_methods(request))
        policy, existing = check.unpack()
        lifetime = resolve_lifetime(request.lifetime_minutes, policy)
        one_time = resolve_one_time(request.one_time, policy)
        now = self._clock.now()
        refusal = start_refusal(request.start_at, now)
        if refusal is not None:
            raise refusal
        if existing is not None and existing.is_live(now) and not _replace_confirmed(request, existing):
            await self._auditor.record(
                AuditAction.ISSUE,
                AuditOutcome.NEEDS_CONFIRMATION,
                caller,
                user=user,
                pass_info=existing,
                detail="target already holds a live pass; replacement needs confirmation",
                reason=request.reason,
            )
            return ReplaceNeeded(user, existing, request, lifetime, one_time)
        verified = await self.verification_for_write(
            caller, user, request.verification_id, VerificationKind.ISSUE, methods=check.sign_in_methods
        )
        if isinstance(verified, VerificationNeeded):
            await self._auditor.record(
                AuditAction.ISSUE,
                AuditOutcome.NEEDS_CONFIRMATION,
                caller,
                user=user,
                rule=Rule.VERIFICATION_REQUIRED,
                detail=f"verification of the person needed: {verified.why}"[:2000],
                reason=request.reason,
            )
            return replace(verified, request=request)
        return await self._issue_verified(caller, request, user, lifetime, one_time, existing, verified, held)

    async def _issue_verified(
        self,
        caller: Caller,
        request: PassRequest,
        user: DirectoryUser,
        lifetime: int,
        one_time: bool,
        existing: PassInfo | None,
        use: VerificationUse | None,
        held: HeldLock,
    ) -> IssueResult:
        """The write, with the verification `use` taken for it: bound to the pass (or to the approval request it
        waits in) once that exists, released again if the write failed before a pass existed."""
        gate = self._approval_gate
        awaiting: AwaitingApproval | None = None
        issued: IssuedPass | None = None
        try:
            if gate is not None and gate.long_lifetime(lifetime) and not request.approved:
                awaiting = await gate.ask_for_long_lifetime(
                    caller, user, request, lifetime_minutes=lifetime, one_time=one_time
                )
            elif (
                gate is not None
                and self._velocity is not None
                and await self._velocity.exceeded(caller, user, issued=held.issued_in_window)
            ):
                # Above TAPBOT_VELOCITY_LIMIT passes in the last hour: a second operator approves (alert raised once).
                awaiting = await gate.ask_for_velocity(
                    caller, user, request, lifetime_minutes=lifetime, one_time=one_time, limit=self._velocity.limit
                )
            else:
                issued = await self.create_checked_pass(
                    caller,
                    user,
                    lifetime_minutes=lifetime,
                    one_time=one_time,
                    start_at=request.start_at,
                    existing=existing,
                    reason=request.reason,
                    evidence=use.evidence if use else None,
                    verification_id=use.verification.id if use else None,
                    lock=held,
                )
        except TapError:
            if use is not None and self._verification is not None:
                await self._verification.release(use)
            raise
        if awaiting is not None or issued is None:
            assert awaiting is not None
            if use is not None and self._verification is not None:
                await self._verification.finish_use(use, f"approval:{awaiting.request.id}")
            return awaiting
        if use is not None and self._verification is not None:
            await self._verification.finish_use(use, issued.info.method_id)
        return Issued(issued)

    async def _revoke(self, caller: Caller, subject: Subject) -> RevokeResult:
        await self._require_operator(caller)
        self.check_reason(subject.reason)
        user = await self._find_user(subject)
        current = await self._passes.current_pass(user.object_id)
        if current is None:
            await self._auditor.record(
                AuditAction.REVOKE, AuditOutcome.NOTHING_TO_DO, caller, user=user, reason=subject.reason
            )
            return NothingToRevoke(user)
        request_id = await self._passes.delete_pass(user.object_id, current.method_id, acting_as=caller)
        await self._auditor.record(
            AuditAction.REVOKE,
            AuditOutcome.SUCCEEDED,
            caller,
            user=user,
            pass_info=current,
            graph_request_id=request_id,
            reason=subject.reason,
        )
        return Revoked(user, current, request_id)

    async def _status(self, caller: Caller, subject: Subject) -> PassStatus:
        await self._require_operator(caller)
        user = await self._find_user(subject)
        current = await self._passes.current_pass(user.object_id)
        await self._auditor.record(AuditAction.STATUS, AuditOutcome.SUCCEEDED, caller, user=user, pass_info=current)
        reason = None
        if current is not None and self._pass_reasons is not None:
            reason = await self._pass_reasons.reason_for_pass(current.method_id)
        return PassStatus(user, current, self._clock.now(), reason)

    async def _policy(self, caller: Caller) -> TapPolicy:
        await self._require_operator(caller)
        return await self.tap_policy()

    async def _find_user(self, subject: Subject) -> DirectoryUser:
        reference = subject.reference or ""
        user = await self._directory.find_user(reference)
        if user is None:
            raise UserNotFound(reference)
        subject.user = user
        return user


async def _given(value: T) -> T:
    return value


def _replace_confirmed(request: PassRequest, existing: PassInfo) -> bool:
    """A typed 'replace' replaces whatever is there; a button replaces only the pass it was shown."""
    if request.replace_method_id is not None:
        return request.replace_method_id == existing.method_id
    return request.replace


def _why_not_deleted(error: TapError, deleter: Caller | None) -> str:
    """Why the delete of a pass failed, in words that never say "nothing was changed" (the pass exists). `deleter`:
    whose rights the delete used, when not the person told (an approver)."""
    if isinstance(error, SignInRequired):
        whose = "your" if deleter is None else f"{deleter.display_name or 'its maker'}'s"
        return (
            f"passes are deleted with the Entra rights of whoever made them, and {whose} sign-in to tapbot had lapsed"
        )
    if isinstance(error, Refused):
        return f"Entra refused the delete: {error.user_message}"
    if isinstance(error, GraphUnavailable):
        return "Microsoft Graph failed to answer the delete, twice"
    return "Microsoft Graph refused the delete"


def _replacement_note(existing: PassInfo | None) -> str:
    if existing is None:
        return ""
    return f"replaced pass {existing.method_id} created {existing.created_at.isoformat()}"
