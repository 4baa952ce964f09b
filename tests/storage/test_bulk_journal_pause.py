"""The journal's side of a bulk job paused for its requester's sign-in (delegated writes), on both engines: no
migration (the status is a string), the pause time kept, a resumed run keeping its first start, no lease taken."""

from __future__ import annotations

from datetime import timedelta

from bot.adapters.store import SqlStore
from bot.domain.bulk import JobStatus
from tests.storage.test_store import NOW, bulk_rows, job


async def test_a_paused_job_keeps_its_pause_time_and_its_first_start(store: SqlStore) -> None:
    created = await store.create_job(job(), bulk_rows(3))
    await store.set_job_status(created.id, JobStatus.RUNNING, NOW)
    other = await store.create_job(job(), bulk_rows(1))
    await store.set_job_status(other.id, JobStatus.RUNNING, NOW)

    paused_at = NOW + timedelta(minutes=3)
    assert await store.set_job_status(created.id, JobStatus.WAITING_SIGN_IN, paused_at, only_from=(JobStatus.RUNNING,))
    paused = await store.job(created.id)
    assert paused is not None and paused.status is JobStatus.WAITING_SIGN_IN and paused.paused_at == paused_at
    assert [waiting.id for waiting in await store.jobs_waiting_sign_in()] == [created.id]
    assert [active.id for active in await store.active_jobs()] == [other.id], "nobody adopts a waiting job"
    assert not await store.claim_job(created.id, "replica-a", paused_at, timedelta(seconds=30))

    resumed_at = NOW + timedelta(hours=2)
    assert await store.set_job_status(created.id, JobStatus.RUNNING, resumed_at, only_from=(JobStatus.WAITING_SIGN_IN,))
    resumed = await store.job(created.id)
    assert resumed is not None and resumed.status is JobStatus.RUNNING
    assert resumed.started_at == NOW and resumed.finished_at is None and resumed.paused_at is None
    assert await store.jobs_waiting_sign_in() == []
    assert await store.claim_job(created.id, "replica-a", resumed_at, timedelta(seconds=30))
