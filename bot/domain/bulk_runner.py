"""The lease loop: which replica runs which job, in the background, and for how long.

A job is claimed with a lease in the store that its runner renews every third of the lease; a lease nobody renewed
is taken over (`adopt`), after a restart or when the replica running it died. Losing the lease stops the run where
it is; the journal lets whoever holds it next resume (`bulk_row_runner.py`). A job waiting for its requester's
sign-in is not active: nobody adopts it; the sign-in resumes it (`resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from bot.domain.auditing import Auditor
from bot.domain.bulk import BulkJob, BulkSink, BulkStore, Progress
from bot.domain.bulk_row_runner import MethodsAndPass, RowRunner, RunTiming
from bot.domain.bulk_service import UnknownJob
from bot.domain.pacer import Lane, lane
from bot.domain.ports import AuditLog, Clock, Directory, PassMethods
from bot.domain.service import TapService

logger = logging.getLogger(__name__)


class BulkRunner:
    def __init__(
        self,
        *,
        tap: TapService,
        directory: Directory,
        passes: PassMethods,
        methods: MethodsAndPass,
        store: BulkStore,
        clock: Clock,
        audit: AuditLog,
        replica: str,
        lease: timedelta,
        timing: RunTiming | None = None,
    ) -> None:
        self._tap = tap
        self._directory = directory
        self._passes = passes
        self._methods = methods
        self._store = store
        self._clock = clock
        self._auditor = Auditor(audit, clock)
        self._replica = replica
        self._lease = lease
        self._timing = timing or RunTiming()
        self._running: dict[int, asyncio.Task[None]] = {}

    async def run(self, job_id: int, sink: BulkSink) -> BulkJob:
        """Runs (or resumes) a job to its end on this replica, without a lease. Safe to call again after a crash:
        the journal says where it was."""
        job, paused = await self._execute(job_id, sink)
        if paused is not None:
            await sink.waiting_sign_in(paused)
        return job

    async def _execute(self, job_id: int, sink: BulkSink) -> tuple[BulkJob, Progress | None]:
        """One run; with where it stopped when it paused for the requester's sign-in (the sink not told yet)."""
        job = await self._store.job(job_id)
        if job is None:
            raise UnknownJob(job_id)
        runner = RowRunner(
            job,
            sink,
            tap=self._tap,
            directory=self._directory,
            passes=self._passes,
            methods=self._methods,
            store=self._store,
            clock=self._clock,
            auditor=self._auditor,
            timing=self._timing,
        )
        with lane(Lane.BULK):  # its Graph requests (and its workers', started inside) go through the bulk lane
            return await runner.run(), runner.paused

    def start(self, job: BulkJob, sink: BulkSink) -> None:
        """Runs the job in the background under a lease, unless this replica already runs it."""
        if self._runs(job.id):
            return
        self._running[job.id] = asyncio.create_task(self._run_leased(job, sink), name=f"bulk-job-{job.id}")

    async def resume(self, job: BulkJob, sink: BulkSink) -> None:
        """Runs a job resumed after its requester's sign-in. Its paused run may still be ending here (showing the
        sign-in card, giving its lease back): that one ends first."""
        await self.wait(job.id)
        self.start(job, sink)

    async def adopt(self, sink: BulkSink) -> int:
        """Runs every active job no live replica holds: after a restart, or when the replica running it died."""
        adopted = 0
        for job in await self._store.active_jobs():
            if not self._runs(job.id) and await self._claim(job.id):
                self.start(job, sink)
                adopted += 1
        return adopted

    async def wait(self, job_id: int) -> None:
        task = self._running.get(job_id)
        if task is not None:
            await task

    async def stop(self) -> None:
        """Stops running jobs where they are and gives their leases back: another replica (or the next start)
        resumes them from the journal."""
        for task in self._running.values():
            task.cancel()
        for task in self._running.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _runs(self, job_id: int) -> bool:
        task = self._running.get(job_id)
        return task is not None and not task.done()

    async def _claim(self, job_id: int) -> bool:
        """Takes or renews the right to run the job; False while another replica holds it."""
        return await self._store.claim_job(job_id, self._replica, self._clock.now(), self._lease)

    async def _run_leased(self, job: BulkJob, sink: BulkSink) -> None:
        if not await self._claim(job.id):
            logger.info("bulk job %s is run by another replica", job.id)
            return
        run = asyncio.create_task(self._execute(job.id, sink), name=f"bulk-run-{job.id}")
        try:
            while not run.done():
                await asyncio.wait({run}, timeout=self._lease.total_seconds() / 3)
                if not run.done() and not await self._claim(job.id):
                    logger.warning("bulk job %s: lease lost to another replica; stopping here", job.id)
                    run.cancel()
                    await asyncio.wait({run})
            if not run.cancelled() and run.exception() is not None:
                logger.error(
                    "bulk job %s stopped with an error; a later round resumes it", job.id, exc_info=run.exception()
                )
        finally:
            if not run.done():
                run.cancel()
                await asyncio.wait({run})
            await asyncio.shield(self._store.release_job(job.id, self._replica))
        paused = None if run.cancelled() or run.exception() is not None else run.result()[1]
        if paused is not None:
            # After the lease went back: the sign-in this asks for may resume the job on any replica at once.
            try:
                await sink.waiting_sign_in(paused)
            except Exception:
                logger.exception("bulk job %s paused, but its requester could not be told", job.id)
