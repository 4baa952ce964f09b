"""Every public SqlStore method, on SQLite and on PostgreSQL (the ``store`` fixture runs each test on both)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, StatementError

from bot.adapters.store import SqlStore
from bot.domain.approvals import ApprovalKind, ApprovalRequest, ApprovalsChannel, ApprovalStatus
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.bulk import BulkJob, BulkKind, JobStatus, JournalRow, RowState
from bot.domain.model import Recipient
from bot.domain.records import PassCard, PersonalConversation, RedactionReason

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 26, 9, 30, 15, 123456, tzinfo=UTC)
CONCURRENT = 10


def recipient(name: str = "Adele Vance", object_id: str = "adele") -> Recipient:
    return Recipient(
        object_id=object_id,
        tenant_id="tenant-1",
        name=name,
        channel_account_id=f"29:{object_id}",
        service_url="https://smba.trafficmanager.net/emea/",
        bot_id="28:tapbot",
    )


def audit_event(at: datetime = NOW, **changes: object) -> AuditEvent:
    event = AuditEvent(
        at=at,
        action=AuditAction.ISSUE,
        outcome=AuditOutcome.SUCCEEDED,
        actor_id="adele",
        actor_name="Adele Vance",
        target_id="megan",
        target_upn="MeganB@contoso.onmicrosoft.com",
        lifetime_minutes=120,
        start_at=at + timedelta(hours=1),
        one_time=True,
        pass_method_id="method-1",
        graph_request_id="request-1",
        rule=None,
        detail="",
    )
    return replace(event, **changes)  # type: ignore[arg-type]


def pass_card(**changes: object) -> PassCard:
    card = PassCard(
        id=str(uuid.uuid4()),
        requester_id="adele",
        target_id="megan",
        target_label="Megan Bowen (MeganB@contoso.onmicrosoft.com)",
        pass_method_id="method-1",
        start_at=NOW,
        expires_at=NOW + timedelta(hours=2),
        one_time=True,
        timezone="Europe/Berlin",
        service_url="https://smba.trafficmanager.net/emea/",
        conversation_id="a:personal-adele",
        activity_id=None,
        created_at=NOW,
    )
    return replace(card, **changes)  # type: ignore[arg-type]


def approval(**changes: object) -> ApprovalRequest:
    request = ApprovalRequest(
        id=str(uuid.uuid4()),
        kind=ApprovalKind.ONBOARDING,
        requester=recipient("Megan Bowen", "megan"),
        target_id="lee",
        target_label="Lee Gu (LeeG@contoso.onmicrosoft.com)",
        start_at=NOW + timedelta(days=3),
        lifetime_minutes=480,
        one_time=False,
        reason="first day",
        created_at=NOW,
        expires_at=NOW + timedelta(hours=24),
    )
    return replace(request, **changes)  # type: ignore[arg-type]


def job(**changes: object) -> BulkJob:
    value = BulkJob(
        id=0,
        kind=BulkKind.ISSUE,
        status=JobStatus.CHECKED,
        requester=recipient(),
        file_name="users.csv",
        timezone="Europe/Berlin",
        created_at=NOW,
    )
    return replace(value, **changes)  # type: ignore[arg-type]


def bulk_rows(count: int) -> list[JournalRow]:
    return [
        JournalRow(job_id=0, line=line, target=f"user{line}@contoso.onmicrosoft.com", state=RowState.READY)
        for line in range(2, count + 2)
    ]


# --- audit (append-only) --------------------------------------------------------------------------------------


async def test_audit_record_and_rows(store: SqlStore) -> None:
    await store.record(audit_event())
    await store.record(audit_event(NOW + timedelta(minutes=5), action=AuditAction.REVOKE, rule=None, detail="x"))
    await store.record(audit_event(NOW + timedelta(minutes=10), outcome=AuditOutcome.REFUSED, rule="guest"))
    rows = await store.audit_rows()
    assert [(row.id, row.action, row.outcome, row.rule) for row in rows] == [
        (rows[0].id, "issue", "succeeded", None),
        (rows[1].id, "revoke", "succeeded", None),
        (rows[2].id, "issue", "refused", "guest"),
    ]
    assert rows[0].id < rows[1].id < rows[2].id
    first = rows[0]
    assert (first.actor_id, first.actor_name, first.target_id, first.target_upn) == (
        "adele",
        "Adele Vance",
        "megan",
        "MeganB@contoso.onmicrosoft.com",
    )
    assert (first.lifetime_minutes, first.one_time, first.pass_method_id, first.graph_request_id) == (
        120,
        True,
        "method-1",
        "request-1",
    )
    assert first.at == NOW and first.at.tzinfo is UTC
    assert first.start_at == NOW + timedelta(hours=1)
    since = await store.audit_rows(since=NOW + timedelta(minutes=5))
    assert [row.action for row in since] == ["revoke", "issue"]


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET detail = 'changed'", "DELETE FROM audit_events", "DELETE FROM audit_events WHERE id > 0"],
)
async def test_audit_events_are_append_only(store: SqlStore, statement: str) -> None:
    await store.record(audit_event())
    with pytest.raises(DBAPIError, match="append-only"):
        async with store.engine.begin() as connection:
            await connection.execute(text(statement))
    rows = await store.audit_rows()
    assert [(row.action, row.detail) for row in rows] == [("issue", "")]


async def test_audit_events_cannot_be_truncated_on_postgresql(postgres_url: str) -> None:
    """SQLite has no TRUNCATE (its DELETE without WHERE fires the trigger, above); PostgreSQL's is refused too."""
    store = SqlStore.from_url(postgres_url)
    try:
        await store.record(audit_event())
        with pytest.raises(DBAPIError, match="append-only"):
            async with store.engine.begin() as connection:
                await connection.execute(text("TRUNCATE audit_events"))
        assert len(await store.audit_rows()) == 1
    finally:
        await store.close()


async def test_long_display_text_is_clipped_not_refused(store: SqlStore) -> None:
    """SQLite ignores VARCHAR lengths and PostgreSQL refuses longer values: the store clips names it is given."""
    typed = "x" * 1000  # a mistyped target is audited as typed
    await store.record(audit_event(target_id=None, target_upn=typed, actor_name="A" * 400, detail="d" * 5000))
    row = (await store.audit_rows())[0]
    assert row.target_upn == "x" * 320 and row.actor_name == "A" * 256 and row.detail == "d" * 5000


# --- pass cards ----------------------------------------------------------------------------------------------


async def test_pass_card_save_read_and_activity(store: SqlStore) -> None:
    card = pass_card()
    await store.save_pass_card(card)
    assert await store.pass_card(card.id) == card
    await store.set_card_activity(card.id, "activity-1")
    assert await store.pass_card(card.id) == replace(card, activity_id="activity-1")
    assert await store.pass_card("no-such-card") is None


async def test_claim_redaction_once_under_concurrency(store: SqlStore) -> None:
    card = pass_card()
    await store.save_pass_card(card)
    reasons = [RedactionReason.HANDED_OVER, RedactionReason.EXPIRED] * (CONCURRENT // 2)
    outcomes = await asyncio.gather(
        *(
            store.claim_redaction(card.id, reason, NOW + timedelta(seconds=index))
            for index, reason in enumerate(reasons)
        )
    )
    assert outcomes.count(True) == 1
    winner = outcomes.index(True)
    stored = await store.pass_card(card.id)
    assert stored is not None
    assert stored.redaction_reason == reasons[winner].value and stored.redacted_at == NOW + timedelta(seconds=winner)
    assert await store.claim_redaction(card.id, RedactionReason.REVOKED, NOW) is False


async def test_cards_due_for_redaction_and_unredacted_cards(store: SqlStore) -> None:
    later = pass_card(expires_at=NOW + timedelta(minutes=30), created_at=NOW + timedelta(seconds=2))
    sooner = pass_card(expires_at=NOW + timedelta(minutes=10), created_at=NOW + timedelta(seconds=1))
    live = pass_card(expires_at=NOW + timedelta(hours=5), pass_method_id="method-2")
    other_user = pass_card(target_id="lee", pass_method_id="method-3", expires_at=NOW + timedelta(minutes=5))
    for card in (later, sooner, live, other_user):
        await store.save_pass_card(card)
    now = (NOW + timedelta(hours=1)).astimezone(NEW_YORK)  # any zone: compared as the same instant
    due = await store.cards_due_for_redaction(now)
    assert [card.id for card in due] == [other_user.id, sooner.id, later.id]
    assert [card.id for card in await store.cards_due_for_redaction(now, limit=2)] == [other_user.id, sooner.id]
    assert [card.id for card in await store.unredacted_cards_for_pass("method-1")] == [sooner.id, later.id]
    assert [card.id for card in await store.unredacted_cards_for_user("megan")] == [live.id, sooner.id, later.id]

    assert await store.claim_redaction(sooner.id, RedactionReason.REPLACED, NOW)
    assert [card.id for card in await store.cards_due_for_redaction(now)] == [other_user.id, later.id]
    assert [card.id for card in await store.unredacted_cards_for_pass("method-1")] == [later.id]
    assert [card.id for card in await store.unredacted_cards_for_user("megan")] == [live.id, later.id]
    assert await store.unredacted_cards_for_user("nobody") == []


# --- personal conversations ------------------------------------------------------------------------------------


async def test_personal_conversation_upsert(store: SqlStore) -> None:
    assert await store.personal_conversation("adele") is None
    first = PersonalConversation("adele", "tenant-1", "https://smba.example/emea/", "a:first")
    await store.save_personal_conversation(first, NOW)
    assert await store.personal_conversation("adele") == first
    moved = PersonalConversation("adele", "tenant-1", "https://smba.example/amer/", "a:second")
    await store.save_personal_conversation(moved, NOW + timedelta(minutes=1))
    assert await store.personal_conversation("adele") == moved


async def test_concurrent_first_saves_of_one_conversation_all_succeed(store: SqlStore) -> None:
    """Two replicas meeting the same new user at once: both saves succeed, one of them is kept."""
    saves = [PersonalConversation("lee", "tenant-1", "https://smba.example/", f"a:{index}") for index in range(10)]
    await asyncio.gather(*(store.save_personal_conversation(save, NOW) for save in saves))
    assert await store.personal_conversation("lee") in saves


# --- approvals ----------------------------------------------------------------------------------------------------


async def test_approval_save_read_and_card(store: SqlStore) -> None:
    request = approval()
    await store.save_approval(request)
    assert await store.approval(request.id) == request
    await store.set_approval_card(request.id, "https://smba.example/", "19:channel", "activity-9")
    assert await store.approval(request.id) == replace(
        request,
        card_service_url="https://smba.example/",
        card_conversation_id="19:channel",
        card_activity_id="activity-9",
    )
    assert await store.approval("no-such-request") is None


async def test_settle_approval_once_under_concurrency(store: SqlStore) -> None:
    request = approval()
    await store.save_approval(request)
    decisions = [
        request.decided(
            ApprovalStatus.APPROVED if index % 2 else ApprovalStatus.DENIED,
            f"operator-{index}",
            f"Operator {index}",
            NOW + timedelta(seconds=index),
            f"note {index}",
        )
        for index in range(CONCURRENT)
    ]
    outcomes = await asyncio.gather(*(store.settle_approval(decision) for decision in decisions))
    assert outcomes.count(True) == 1
    assert await store.approval(request.id) == decisions[outcomes.index(True)]
    late = request.decided(ApprovalStatus.EXPIRED, "tapbot", "tapbot", NOW, "")
    assert await store.settle_approval(late) is False


async def test_pending_overdue_and_requesters_approvals(store: SqlStore) -> None:
    second = approval(created_at=NOW + timedelta(minutes=2))
    first = approval(created_at=NOW + timedelta(minutes=1))
    overdue = approval(created_at=NOW, expires_at=NOW + timedelta(minutes=30))
    decided = approval(created_at=NOW + timedelta(minutes=3))
    someone_else = approval(requester=recipient("Alex Wilber", "alex"), created_at=NOW + timedelta(minutes=4))
    for request in (second, first, overdue, decided, someone_else):
        await store.save_approval(request)
    assert await store.settle_approval(decided.decided(ApprovalStatus.DENIED, "alex", "Alex", NOW, "no"))

    now = NOW + timedelta(hours=1)
    assert [item.id for item in await store.pending_approvals(now)] == [first.id, second.id, someone_else.id]
    assert [item.id for item in await store.overdue_approvals(now)] == [overdue.id]
    assert await store.overdue_approvals(NOW) == []
    assert [item.id for item in await store.approvals_of("megan", NOW)] == [
        decided.id,
        second.id,
        first.id,
        overdue.id,
    ]
    assert [item.id for item in await store.approvals_of("megan", NOW + timedelta(minutes=2))] == [
        decided.id,
        second.id,
    ]
    assert next(item.status for item in await store.approvals_of("megan", NOW)) is ApprovalStatus.DENIED


async def test_approvals_channel_upsert(store: SqlStore) -> None:
    assert await store.approvals_channel("tenant-1") is None
    first = ApprovalsChannel("https://smba.example/", "19:helpdesk", "tenant-1", "adele", NOW)
    await store.save_approvals_channel(first)
    assert await store.approvals_channel("tenant-1") == first
    moved = ApprovalsChannel("https://smba.example/", "19:it-ops", "tenant-1", "alex", NOW + timedelta(days=1))
    await store.save_approvals_channel(moved)
    assert await store.approvals_channel("tenant-1") == moved
    channels = [replace(first, conversation_id=f"19:channel-{index}") for index in range(CONCURRENT)]
    await asyncio.gather(*(store.save_approvals_channel(channel) for channel in channels))
    assert await store.approvals_channel("tenant-1") in channels


# --- bulk jobs ----------------------------------------------------------------------------------------------------


async def test_create_job_assigns_ids_and_keeps_rows(store: SqlStore) -> None:
    first = await store.create_job(job(), bulk_rows(3))
    second = await store.create_job(job(kind=BulkKind.REVOKE, file_name="revoke.csv"), bulk_rows(2))
    assert first.id > 0 and second.id > first.id
    assert first == replace(job(), id=first.id)
    assert await store.job(first.id) == first
    assert await store.job(second.id) == replace(job(kind=BulkKind.REVOKE, file_name="revoke.csv"), id=second.id)
    assert await store.job(second.id + 1000) is None
    rows = await store.rows(first.id)
    assert [(row.job_id, row.line, row.state) for row in rows] == [
        (first.id, 2, RowState.READY),
        (first.id, 3, RowState.READY),
        (first.id, 4, RowState.READY),
    ]
    assert [row.line for row in await store.rows(second.id)] == [2, 3]


async def test_set_job_status_only_from(store: SqlStore) -> None:
    created = await store.create_job(job(), [])
    assert await store.set_job_status(created.id, JobStatus.RUNNING, NOW, only_from=(JobStatus.CHECKED,))
    assert await store.set_job_status(created.id, JobStatus.RUNNING, NOW, only_from=(JobStatus.CHECKED,)) is False
    running = await store.job(created.id)
    assert running is not None and running.status is JobStatus.RUNNING and running.started_at == NOW
    later = NOW + timedelta(minutes=5)
    assert await store.set_job_status(created.id, JobStatus.CANCELLING, later)
    assert await store.set_job_status(
        created.id, JobStatus.CANCELLED, later, only_from=(JobStatus.RUNNING, JobStatus.CANCELLING)
    )
    cancelled = await store.job(created.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED and cancelled.finished_at == later
    assert await store.set_job_status(created.id + 1000, JobStatus.RUNNING, NOW) is False


async def test_job_progress_card_and_options(store: SqlStore) -> None:
    created = await store.create_job(job(), [])
    await store.set_job_progress_card(created.id, "https://smba.example/", "a:personal-adele", "activity-5")
    await store.set_job_options(created.id, replace_existing=True, approval_request_id="request-7")
    stored = await store.job(created.id)
    assert stored == replace(
        created,
        progress_service_url="https://smba.example/",
        progress_conversation_id="a:personal-adele",
        progress_activity_id="activity-5",
        replace_existing=True,
        approval_request_id="request-7",
    )


async def test_rows_save_rows_and_counts(store: SqlStore) -> None:
    created = await store.create_job(job(), bulk_rows(5))
    rows = await store.rows(created.id)
    await store.save_rows(
        [
            rows[3].moved(RowState.FAILED, reason="Graph said no", attempts=2),
            rows[0].moved(
                RowState.DELIVERED,
                user_id="user-2",
                user_label="User Two",
                pass_method_id="m-2",
                lifetime_minutes=60,
                one_time=True,
                start_at=NOW.astimezone(BERLIN),
                expires_at=NOW + timedelta(hours=1),
                attempts=1,
            ),
            rows[1].moved(RowState.DELIVERED),
        ]
    )
    await store.save_rows([])
    stored = await store.rows(created.id)
    assert stored[0] == rows[0].moved(
        RowState.DELIVERED,
        user_id="user-2",
        user_label="User Two",
        pass_method_id="m-2",
        lifetime_minutes=60,
        one_time=True,
        start_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        attempts=1,
    )
    assert stored[0].start_at is not None and stored[0].start_at.tzinfo is UTC
    assert stored[3] == rows[3].moved(RowState.FAILED, reason="Graph said no", attempts=2)
    assert [row.line for row in await store.rows(created.id, (RowState.DELIVERED,))] == [2, 3]
    assert [row.line for row in await store.rows(created.id, (RowState.READY, RowState.FAILED))] == [4, 5, 6]
    assert await store.row_counts(created.id) == {RowState.DELIVERED: 2, RowState.FAILED: 1, RowState.READY: 2}
    assert await store.row_counts(created.id + 1000) == {}


async def test_claim_job_lease(store: SqlStore) -> None:
    lease = timedelta(seconds=30)
    created = await store.create_job(job(), [])
    assert await store.claim_job(created.id, "replica-a", NOW, lease) is False, "only active jobs have a lease"
    assert await store.set_job_status(created.id, JobStatus.RUNNING, NOW)

    assert await store.claim_job(created.id, "replica-a", NOW, lease)
    assert await store.claim_job(created.id, "replica-b", NOW + timedelta(seconds=10), lease) is False
    assert await store.claim_job(created.id, "replica-a", NOW + timedelta(seconds=20), lease), "the owner renews"
    assert await store.claim_job(created.id, "replica-b", NOW + timedelta(seconds=40), lease) is False
    assert await store.claim_job(created.id, "replica-b", NOW + timedelta(seconds=51), lease), "the lease ran out"
    assert await store.claim_job(created.id, "replica-a", NOW + timedelta(seconds=52), lease) is False

    await store.release_job(created.id, "replica-a")  # not the owner: nothing happens
    assert await store.claim_job(created.id, "replica-a", NOW + timedelta(seconds=53), lease) is False
    await store.release_job(created.id, "replica-b")
    assert await store.claim_job(created.id, "replica-a", NOW + timedelta(seconds=54), lease)

    assert await store.set_job_status(created.id, JobStatus.CANCELLING, NOW)
    assert await store.claim_job(created.id, "replica-a", NOW + timedelta(seconds=55), lease), "cancelling is active"
    assert await store.set_job_status(created.id, JobStatus.CANCELLED, NOW)
    assert await store.claim_job(created.id, "replica-a", NOW + timedelta(seconds=56), lease) is False


async def test_claim_job_once_under_concurrency(store: SqlStore) -> None:
    created = await store.create_job(job(), [])
    assert await store.set_job_status(created.id, JobStatus.RUNNING, NOW)
    outcomes = await asyncio.gather(
        *(store.claim_job(created.id, f"replica-{index}", NOW, timedelta(seconds=30)) for index in range(CONCURRENT))
    )
    assert outcomes.count(True) == 1


async def test_active_jobs(store: SqlStore) -> None:
    jobs = [await store.create_job(job(), []) for _ in range(4)]
    assert await store.set_job_status(jobs[2].id, JobStatus.RUNNING, NOW)
    assert await store.set_job_status(jobs[0].id, JobStatus.CANCELLING, NOW)
    assert await store.set_job_status(jobs[1].id, JobStatus.FINISHED, NOW)
    assert [item.id for item in await store.active_jobs()] == [jobs[0].id, jobs[2].id]


# --- processed activities -----------------------------------------------------------------------------------------


async def test_first_delivery_refuses_duplicates(store: SqlStore) -> None:
    keep = timedelta(hours=1)
    assert await store.first_delivery("a:personal-adele|activity-1", NOW, keep)
    assert await store.first_delivery("a:personal-adele|activity-1", NOW + timedelta(minutes=1), keep) is False
    assert await store.first_delivery("a:personal-adele|activity-2", NOW, keep)
    # Past the window the record no longer counts, so the key counts as new again.
    assert await store.first_delivery("a:personal-adele|activity-1", NOW + timedelta(hours=2), keep)


async def test_a_record_past_its_keep_counts_as_unseen_before_it_is_deleted(store: SqlStore) -> None:
    """The old records are deleted once a minute (FORGET_EVERY), not on every delivery: one still in the table after
    its keep must not refuse the key, and a retry within the keep of the new record is refused again."""
    keep = timedelta(seconds=10)
    assert await store.first_delivery("c|activity-1", NOW, keep)
    later = NOW + timedelta(seconds=20)  # past the keep, before the next deletion
    assert await store.first_delivery("c|activity-1", later, keep)
    assert await store.first_delivery("c|activity-1", later + timedelta(seconds=5), keep) is False
    outcomes = await asyncio.gather(
        *(store.first_delivery("c|activity-1", later + timedelta(seconds=30), keep) for _ in range(CONCURRENT))
    )
    assert outcomes.count(True) == 1, "two deliveries at once both took over the old record"


async def test_records_past_their_keep_are_deleted_once_a_minute(store: SqlStore) -> None:
    keep = timedelta(seconds=10)

    async def kept() -> list[str]:
        async with store.engine.connect() as connection:
            rows = await connection.execute(text("SELECT key FROM processed_activities ORDER BY key"))
            return [row[0] for row in rows]

    assert await store.first_delivery("c|1", NOW, keep)
    assert await store.first_delivery("c|2", NOW + timedelta(seconds=30), keep)
    assert await kept() == ["c|1", "c|2"], "deleted again within the minute"
    assert await store.first_delivery("c|3", NOW + timedelta(seconds=61), keep)
    assert await kept() == ["c|3"]


async def test_first_delivery_once_under_concurrency_and_for_long_keys(store: SqlStore) -> None:
    keep = timedelta(hours=1)
    outcomes = await asyncio.gather(*(store.first_delivery("c|same", NOW, keep) for _ in range(CONCURRENT)))
    assert outcomes.count(True) == 1
    long_key = "19:" + "x" * 700 + "|activity-1"  # longer than the column: kept by its digest
    assert await store.first_delivery(long_key, NOW, keep)
    assert await store.first_delivery(long_key, NOW, keep) is False
    assert await store.first_delivery(long_key[:-1] + "2", NOW, keep)


# --- time zones, ping -------------------------------------------------------------------------------------------


async def test_aware_datetimes_come_back_as_the_same_instant_in_utc(store: SqlStore) -> None:
    start = datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=BERLIN)  # the last microsecond before DST
    expires = datetime(2026, 11, 1, 3, 30, tzinfo=NEW_YORK)  # the first hours of standard time
    card = pass_card(start_at=start, expires_at=expires, created_at=NOW.astimezone(BERLIN))
    await store.save_pass_card(card)
    stored = await store.pass_card(card.id)
    assert stored is not None
    for value, original in ((stored.start_at, start), (stored.expires_at, expires), (stored.created_at, NOW)):
        assert value == original and value.tzinfo is UTC
    assert stored.start_at.isoformat() == "2026-03-29T00:59:59.999999+00:00"
    assert stored.expires_at.isoformat() == "2026-11-01T08:30:00+00:00"


async def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    with pytest.raises(StatementError, match="naive datetimes"):
        await store.save_pass_card(pass_card(created_at=datetime(2026, 1, 1, 12, 0)))


async def test_ping_and_two_stores_on_one_database(store: SqlStore, store_url: str) -> None:
    """Two replicas on one database: each sees the other's writes, and leases exclude each other."""
    await store.ping()
    other = SqlStore.from_url(store_url)
    try:
        await other.create_schema()  # the second start: nothing to do
        created = await store.create_job(job(), [])
        assert await other.set_job_status(created.id, JobStatus.RUNNING, NOW)
        lease = timedelta(seconds=30)
        assert await store.claim_job(created.id, "replica-a", NOW, lease)
        assert await other.claim_job(created.id, "replica-b", NOW, lease) is False
        assert await other.first_delivery("c|1", NOW, lease)
        assert await store.first_delivery("c|1", NOW, lease) is False
    finally:
        await other.close()


# --- per-user check-and-create locks ------------------------------------------------------------------------------


async def test_lock_target(store: SqlStore) -> None:
    ttl = timedelta(seconds=60)
    assert await store.lock_target("megan", "holder-a", NOW, ttl)
    assert await store.lock_target("megan", "holder-b", NOW + timedelta(seconds=30), ttl) is False
    assert await store.lock_target("diego", "holder-b", NOW, ttl), "another user's lock is another lock"
    assert await store.lock_target("megan", "holder-a", NOW + timedelta(seconds=30), ttl), "the holder renews"
    await store.unlock_target("megan", "holder-b")  # not the holder: nothing happens
    assert await store.lock_target("megan", "holder-b", NOW + timedelta(seconds=60), ttl) is False
    assert await store.lock_target("megan", "holder-b", NOW + timedelta(seconds=91), ttl), "a dead holder's ran out"
    await store.unlock_target("megan", "holder-b")
    assert await store.lock_target("megan", "holder-c", NOW + timedelta(seconds=92), ttl), "given back"


async def test_lock_target_once_under_concurrency(store: SqlStore) -> None:
    ttl = timedelta(seconds=60)
    outcomes = await asyncio.gather(*(store.lock_target("megan", f"holder-{n}", NOW, ttl) for n in range(CONCURRENT)))
    assert outcomes.count(True) == 1
    assert await store.lock_target("expired", "holder-a", NOW, ttl)
    later = NOW + timedelta(minutes=5)
    takeovers = await asyncio.gather(
        *(store.lock_target("expired", f"holder-{n}", later, ttl) for n in range(1, CONCURRENT))
    )
    assert takeovers.count(True) == 1, "of several replicas taking over an expired lock, one wins"
