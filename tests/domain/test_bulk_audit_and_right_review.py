"""Found by the review of issue 13's last round: a bulk row's pass stays audited when its journal entry fails, and
a run resumed for a requester who is no longer an operator leaves no pass nobody saw."""

from __future__ import annotations

import pytest

from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.bulk import RowState
from tests.domain.test_bulk_run import started
from tests.domain.test_service_transactions import World, a_bulk_rows_pass
from tests.domain.world import ADELE, STAFF, Sink
from tests.domain.world import World as BulkWorld
from tests.fakes import MEGAN


async def test_a_journal_entry_that_fails_does_not_take_the_pass_audit_row_with_it() -> None:
    """Before 5dc06a3 a bulk row's pass was audited in a transaction of its own and the row journaled CREATED after
    it: a failing journal write left the issuance audited. Now the journal write shares the audit row's
    transaction, and its failure (a deadlock victim on PostgreSQL, a full disk, a vanished row...) rolls the audit
    row back: a live pass that nobody was shown, and no audit record that it was ever created."""
    world = World()
    with pytest.raises(OSError):
        async with world.service.target_lock(MEGAN, on_taking=world.store.noted("creating")) as held:
            await a_bulk_rows_pass(world, held, on_recorded=world.store.noted("created", fail=True))
    assert world.passes.created == [MEGAN.object_id], "the pass exists in Graph"
    assert world.store.locks.held == {}
    issued = [e for e in world.store.events if e.action is AuditAction.ISSUE and e.outcome is AuditOutcome.SUCCEEDED]
    assert len(issued) == 1, "a pass that exists has no audit row"


async def test_a_resumed_run_whose_requester_lost_the_right_leaves_no_unseen_pass(world: BulkWorld) -> None:
    """A crash left one row CREATED (its pass made, never shown); the run that resumes the job finds its requester
    no longer an operator: the rows end FAILED, and the pass nobody saw must not stay live."""
    job_id = await started(world, STAFF[:2])
    first, second = await world.jobs.rows(job_id)
    unshown = await world.passes.create_pass(STAFF[0], lifetime_minutes=60, one_time=False, start_at=None)
    await world.jobs.save_rows([first.moved(RowState.CREATED, pass_method_id=unshown.info.method_id)])
    world.remove_operator(ADELE)
    await world.runner.run(job_id, Sink())
    assert {row.state for row in await world.jobs.rows(job_id)} == {RowState.FAILED}
    assert second.state is RowState.PENDING
    current = world.passes.passes.get(STAFF[0].object_id)
    assert current is None or current.method_id != unshown.info.method_id, "a live pass nobody was shown"
