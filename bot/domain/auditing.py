"""Writes audit events for the services, and audits every refusal or failure before it reaches the user."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.errors import (
    EntraRefused,
    GraphRejected,
    GraphUnavailable,
    Refused,
    Rule,
    SignInRequired,
    TapError,
    UserNotFound,
)
from bot.domain.model import Caller, DirectoryUser, Evidence, PassInfo
from bot.domain.ports import AuditLog, Clock
from bot.domain.reasons import MAX_REASON_LENGTH, ReasonRefused, clean_reason

T = TypeVar("T")

logger = logging.getLogger(__name__)


@dataclass
class Subject:
    """The target as typed, and as found once the directory has answered (for the audit row)."""

    reference: str | None
    user: DirectoryUser | None = None
    reason: str = ""  # the requester's reason, on every row the command writes (refusals and failures too)


class Auditor:
    def __init__(self, audit: AuditLog, clock: Clock) -> None:
        self._audit = audit
        self._clock = clock

    async def audited(
        self, action: AuditAction, caller: Caller, subject: Subject, work: Callable[[], Awaitable[T]]
    ) -> T:
        """Runs a command; a refusal or failure is audited before it reaches the user. When its row cannot be
        written (the database failed), the user still reads the refusal's or failure's own sentence."""
        try:
            return await work()
        except TapError as failure:
            try:
                await self._record_failure(action, caller, subject, failure)
            except Exception:
                logger.exception("could not audit a %s that ended in %s", action.value, type(failure).__name__)
            raise

    async def _record_failure(self, action: AuditAction, caller: Caller, subject: Subject, failure: TapError) -> None:
        if isinstance(failure, Refused):
            entra = isinstance(failure, EntraRefused)  # Entra's own refusal: its sentence says which rule applied
            await self.record(
                action,
                AuditOutcome.REFUSED,
                caller,
                user=subject.user,
                target=subject.reference,
                rule=failure.rule,
                graph_request_id=failure.request_id if isinstance(failure, EntraRefused) else None,
                detail=failure.user_message if entra else "",
                reason=subject.reason,
            )
        elif isinstance(failure, SignInRequired):
            await self.record(
                action,
                AuditOutcome.NEEDS_SIGN_IN,
                caller,
                user=subject.user,
                target=subject.reference,
                detail=f"no delegated token for {failure.user_id}: sign-in asked; nothing was written",
                reason=subject.reason,
            )
        elif isinstance(failure, UserNotFound | GraphRejected | GraphUnavailable):
            await self.record(
                action,
                AuditOutcome.FAILED,
                caller,
                user=subject.user,
                target=subject.reference,
                graph_request_id=getattr(failure, "request_id", None),
                detail=type(failure).__name__,
                reason=subject.reason,
            )
        else:
            await self.record(
                action,
                AuditOutcome.FAILED,
                caller,
                user=subject.user,
                target=subject.reference,
                detail=_failure_detail(failure),
                reason=subject.reason,
            )

    async def record(
        self,
        action: AuditAction,
        outcome: AuditOutcome,
        caller: Caller,
        *,
        user: DirectoryUser | None = None,
        target: str | None = None,
        pass_info: PassInfo | None = None,
        graph_request_id: str | None = None,
        rule: Rule | None = None,
        detail: str = "",
        reason: str = "",
        verification_id: str | None = None,
        evidence: Evidence | None = None,
    ) -> None:
        await self._audit.record(
            AuditEvent(
                at=self._clock.now(),
                action=action,
                outcome=outcome,
                actor_id=caller.object_id,
                actor_name=caller.display_name,
                target_id=user.object_id if user else None,
                target_upn=user.user_principal_name if user else target,
                lifetime_minutes=pass_info.lifetime_minutes if pass_info else None,
                start_at=pass_info.start_at if pass_info else None,
                one_time=pass_info.one_time if pass_info else None,
                pass_method_id=pass_info.method_id if pass_info else None,
                graph_request_id=graph_request_id,
                rule=rule.value if rule else None,
                detail=detail,
                reason=clean_reason(reason)[:MAX_REASON_LENGTH],
                verification_id=verification_id,
                evidence_method=evidence.method if evidence else None,
                evidence_by_id=evidence.confirmed_by_id if evidence else None,
                evidence_by=evidence.confirmed_by_label if evidence else None,
                evidence_at=evidence.at if evidence else None,
                evidence_score=evidence.score if evidence else None,
            )
        )


def _failure_detail(failure: TapError) -> str:
    """The failure's kind; for a refused reason also its sentence (it says what the reason lacked, never a pass)."""
    if isinstance(failure, ReasonRefused):
        return f"{type(failure).__name__}: {failure.user_message}"
    return type(failure).__name__
