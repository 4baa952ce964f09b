"""`SqlStore.may_have_ended` on SQLite and PostgreSQL: whether the audit log records a write of the bot that may
have ended a pass since its creation. A delivered pass is read again from Graph only when it does
(TapService.still_current), so every write that can end it must count, and nothing else need."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.adapters.store import SqlStore
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
OURS = "pass-ours"


def row(
    action: AuditAction, outcome: AuditOutcome, target: str | None = "megan", method: str | None = None
) -> AuditEvent:
    upn = f"{target}@x" if target else None
    return AuditEvent(NOW, action, outcome, "alex", "Alex Wilber", target, upn, pass_method_id=method)


async def created(store: SqlStore, action: AuditAction = AuditAction.ISSUE) -> None:
    await store.record(row(action, AuditOutcome.SUCCEEDED, method=OURS))


async def test_nothing_since_the_creation_is_nothing(store: SqlStore) -> None:
    # Before it: an earlier pass of the same user, revoked; the question this pass's issue asked; another user's.
    await store.record(row(AuditAction.ISSUE, AuditOutcome.SUCCEEDED, method="pass-before"))
    await store.record(row(AuditAction.REVOKE, AuditOutcome.SUCCEEDED, method="pass-before"))
    await store.record(row(AuditAction.ISSUE, AuditOutcome.NEEDS_CONFIRMATION))
    await created(store)
    # After it: what is not a write of a pass, and another user's writes.
    await store.record(row(AuditAction.STATUS, AuditOutcome.SUCCEEDED, method=OURS))
    await store.record(row(AuditAction.REDACT, AuditOutcome.SUCCEEDED, method=OURS))
    await store.record(row(AuditAction.DELIVERY, AuditOutcome.FAILED))
    await store.record(row(AuditAction.ISSUE, AuditOutcome.SUCCEEDED, target="lee", method="pass-lee"))
    await store.record(row(AuditAction.REVOKE, AuditOutcome.SUCCEEDED, target="lee", method="pass-lee"))
    assert not await store.may_have_ended("megan", OURS)


async def test_a_later_issue_or_onboarding_for_the_user_counts_whatever_its_outcome(store: SqlStore) -> None:
    await created(store)
    assert not await store.may_have_ended("megan", OURS)
    await store.record(row(AuditAction.ISSUE, AuditOutcome.FAILED))  # an uncertain create may have deleted it
    assert await store.may_have_ended("megan", OURS)


async def test_a_later_onboarding_counts(store: SqlStore) -> None:
    await created(store, AuditAction.ONBOARD)
    await store.record(row(AuditAction.ONBOARD, AuditOutcome.SUCCEEDED, method="pass-newer"))
    assert await store.may_have_ended("megan", OURS)


async def test_a_revoke_of_the_user_after_the_creation_counts(store: SqlStore) -> None:
    await created(store)
    await store.record(row(AuditAction.REVOKE, AuditOutcome.NOTHING_TO_DO))
    assert await store.may_have_ended("megan", OURS)


async def test_a_revoke_naming_the_pass_counts_even_recorded_before_its_creation(store: SqlStore) -> None:
    # A revoke takes no lock: it can read the new pass, delete it and write its row before the issue writes its own.
    await store.record(row(AuditAction.REVOKE, AuditOutcome.SUCCEEDED, method=OURS))
    await created(store)
    assert await store.may_have_ended("megan", OURS)


async def test_another_replicas_write_counts(store: SqlStore, store_url: str) -> None:
    await created(store)
    other = SqlStore.from_url(store_url)
    try:
        await other.record(row(AuditAction.ISSUE, AuditOutcome.SUCCEEDED, method="pass-newer"))
    finally:
        await other.close()
    assert await store.may_have_ended("megan", OURS)


async def test_a_revoke_naming_the_pass_counts_whatever_user_its_row_names(store: SqlStore) -> None:
    # A bulk job's revoke rows carry the pass they deleted but no user.
    await created(store)
    await store.record(row(AuditAction.REVOKE, AuditOutcome.SUCCEEDED, target=None, method=OURS))
    assert await store.may_have_ended("megan", OURS)
