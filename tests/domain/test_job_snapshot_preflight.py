"""The bulk preflight on the job's snapshot (issue 13 item 2): one snapshot, users read 15 to a request, and no Graph
read per row (the current pass and the user's methods are read by the run, under the user's lock); each row with the
single command's verdict."""

from __future__ import annotations

from bot.domain.bulk import RowState
from bot.domain.job_snapshot import USERS_PER_READ
from bot.domain.model import DirectoryUser
from tests.domain.world import STAFF, World, rows_for
from tests.fakes import PROTECTED

CROWD_SIZE = 2 * USERS_PER_READ + 1


async def test_the_preflight_reads_one_snapshot_users_in_batches_and_nothing_per_row(world: World) -> None:
    crowd = [
        world.directory.add(DirectoryUser(f"c1000000-0000-0000-0000-{n:012d}", f"c{n}@contoso.test", f"C {n}"))
        for n in range(CROWD_SIZE)
    ]
    world.directory.add(STAFF[0], PROTECTED)
    world.directory.roles[STAFF[1].object_id] = ("Global Administrator",)
    job_id = await world.checked_job(rows_for([*crowd, STAFF[0], STAFF[1]]))
    assert world.directory.snapshot_reads == 1
    assert world.directory.user_reads == 3  # 33 users, 15 to a read
    assert (world.passes.reads, world.methods.reads) == (0, 0)
    rows = {row.target: row for row in await world.jobs.rows(job_id)}
    assert rows[STAFF[0].object_id].state is RowState.REFUSED and "protected group" in rows[STAFF[0].object_id].reason
    assert rows[STAFF[1].object_id].state is RowState.REFUSED
    assert "holds the directory role Global Administrator" in rows[STAFF[1].object_id].reason
    assert sum(1 for row in rows.values() if row.state is RowState.READY) == CROWD_SIZE
