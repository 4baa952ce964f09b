"""One snapshot per bulk run (issue 13 item 2): the single command's verdicts from shared reads, a new snapshot for
rows checked more than SNAPSHOT_MAX_AGE after it and for every run (an approval-delayed one too), users read many at
a time, and per row only the current pass and the create."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.domain.approvals import ApprovalRules
from bot.domain.audit import AuditOutcome
from bot.domain.bulk import RowState
from bot.domain.bulk_service import Started, WaitingForApproval
from bot.domain.errors import Refused, Rule
from bot.domain.job_snapshot import SNAPSHOT_MAX_AGE, USERS_PER_READ, Snapshots, UserReads, take_snapshot
from bot.domain.model import DirectoryUser, IssuedPass, PolicyTarget, TargetType, UserType
from tests.domain.world import ADELE, STAFF, Sink, World, caller, rows_for
from tests.fakes import EXCLUDED, PROTECTED, default_policy

NESTED = "22222222-0000-0000-0000-0000000000aa"
INCLUDED = "22222222-0000-0000-0000-0000000000bb"
PEOPLE = [
    DirectoryUser(f"e0000000-0000-0000-0000-{n:012d}", f"person{n}@contoso.test", f"Person {n}") for n in range(40)
]


def matrix(world: World) -> dict[str, DirectoryUser]:
    """One person per verdict a target can earn, the groups as the fakes know them (already transitive)."""
    people = {
        "eligible": world.directory.add(PEOPLE[0]),
        "role holder": world.directory.add(PEOPLE[1], roles=("Global Administrator",)),
        "role through a group": world.directory.add(
            PEOPLE[2], roles=("Helpdesk Administrator (through group Helpdesk Admins)",)
        ),
        "eligible role": world.directory.add(PEOPLE[3], roles=("Global Administrator (eligible in PIM)",)),
        "PIM for Groups": world.directory.add(
            PEOPLE[4], roles=("Helpdesk Administrator (through eligible membership of group Helpdesk Admins)",)
        ),
        "protected": world.directory.add(PEOPLE[5], PROTECTED),
        "protected through a nested group": world.directory.add(PEOPLE[6], PROTECTED, NESTED),
        "excluded": world.directory.add(PEOPLE[7], EXCLUDED),
        "guest": world.directory.add(replace(PEOPLE[8], user_type=UserType.GUEST)),
        "disabled": world.directory.add(replace(PEOPLE[9], account_enabled=False)),
        "self": ADELE,
    }
    return people


@pytest.mark.parametrize("included_group", [False, True])
async def test_the_snapshot_gives_the_single_commands_verdict_for_every_kind_of_target(included_group: bool) -> None:
    world = World()
    people = matrix(world)
    if included_group:  # a policy that names its people: only members of INCLUDED are in scope
        world.directory.policy = default_policy(include_targets=(PolicyTarget(TargetType.GROUP, INCLUDED),))
        world.directory.add(PEOPLE[0], INCLUDED)
    snapshot = await take_snapshot(world.directory, frozenset({PROTECTED}), world.clock.now())
    verdicts: dict[str, Rule | None] = {}
    for name, user in people.items():
        try:
            await world.tap.check_target(caller(ADELE), user)
            single: tuple[Rule, str] | None = None
        except Refused as refusal:
            single = (refusal.rule, refusal.user_message)
        refusal = await snapshot.refusal(caller(ADELE), user, world.directory)
        assert (None if refusal is None else (refusal.rule, refusal.user_message)) == single, name
        verdicts[name] = None if single is None else single[0]
    assert verdicts == {
        "eligible": None,
        "role holder": Rule.ROLE_HOLDER,
        "role through a group": Rule.ROLE_HOLDER,
        "eligible role": Rule.ROLE_HOLDER,
        "PIM for Groups": Rule.ROLE_HOLDER,
        "protected": Rule.PROTECTED_GROUP,
        "protected through a nested group": Rule.PROTECTED_GROUP,
        "excluded": Rule.OUTSIDE_POLICY_SCOPE,
        "guest": Rule.GUEST,
        "disabled": Rule.DISABLED,
        "self": Rule.SELF_ISSUE,
    }


async def test_a_group_too_large_to_read_whole_is_checked_user_by_user() -> None:
    world = World()
    world.directory.add(PEOPLE[0], PROTECTED)
    world.directory.add(PEOPLE[1])
    real_members = world.directory.group_members

    async def too_large(group_id: str) -> frozenset[str] | None:
        return None if group_id == PROTECTED else await real_members(group_id)

    world.directory.group_members = too_large  # type: ignore[method-assign]
    snapshot = await take_snapshot(world.directory, frozenset({PROTECTED}), world.clock.now())
    assert snapshot.unread_groups == frozenset({PROTECTED})
    refused = await snapshot.refusal(caller(ADELE), PEOPLE[0], world.directory)
    assert refused is not None and refused.rule is Rule.PROTECTED_GROUP
    assert await snapshot.refusal(caller(ADELE), PEOPLE[1], world.directory) is None


async def test_a_snapshot_serves_for_its_age_and_is_taken_again_after_it() -> None:
    world = World()
    snapshots = Snapshots(world.directory, frozenset({PROTECTED}), world.clock)
    first = await snapshots.current()
    world.clock.advance(seconds=SNAPSHOT_MAX_AGE.total_seconds())
    assert await snapshots.current() is first and snapshots.taken == 1
    world.clock.advance(seconds=1)
    assert await snapshots.current() is not first and snapshots.taken == 2


async def test_users_are_read_fifteen_at_a_time_ahead_of_the_rows_and_again_after_the_age() -> None:
    world = World()
    for person in PEOPLE:
        world.directory.add(person)
    reads = UserReads(world.directory, world.clock, [person.object_id for person in PEOPLE])
    assert await reads.user(PEOPLE[0].object_id) == PEOPLE[0]
    for person in PEOPLE[1:USERS_PER_READ]:
        assert await reads.user(person.object_id) == person
    assert world.directory.user_reads == 1
    assert await reads.user(PEOPLE[USERS_PER_READ].object_id) == PEOPLE[USERS_PER_READ]
    assert world.directory.user_reads == 2
    world.clock.advance(seconds=SNAPSHOT_MAX_AGE.total_seconds() + 1)
    del world.directory.users[PEOPLE[1].object_id]  # deleted meanwhile
    assert await reads.user(PEOPLE[1].object_id) is None and world.directory.user_reads == 3


async def run_with_grant_on_first_create(world: World, job_id: int, grantee: DirectoryUser, *, wait: float) -> None:
    """Runs the job; the first create grants `grantee` a directory role and lets `wait` seconds pass."""
    create_pass = world.passes.create_pass
    granted: list[str] = []

    async def granting(user: DirectoryUser, **options: object) -> IssuedPass:
        if not granted:
            granted.append(user.object_id)
            world.directory.roles[grantee.object_id] = ("Global Administrator",)
            world.clock.advance(seconds=wait)
        return await create_pass(user, **options)  # type: ignore[arg-type]

    world.passes.create_pass = granting  # type: ignore[method-assign]
    await world.runner.run(job_id, Sink())


async def test_a_role_granted_mid_job_is_caught_once_the_snapshot_is_older_than_its_age(world: World) -> None:
    job_id = await world.checked_job(rows_for(STAFF))
    assert isinstance(await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False), Started)
    reads_before = world.directory.snapshot_reads
    await run_with_grant_on_first_create(world, job_id, STAFF[4], wait=SNAPSHOT_MAX_AGE.total_seconds() + 1)
    failed = await world.jobs.rows(job_id, (RowState.FAILED,))
    assert [row.target for row in failed] == [STAFF[4].object_id]
    assert failed[0].reason.startswith(f"{STAFF[4].label} holds the directory role Global Administrator")
    assert "issue:role_holder" in world.events(AuditOutcome.REFUSED)
    assert world.directory.snapshot_reads - reads_before == 2  # the run's first snapshot, and one after the age
    assert STAFF[4].object_id not in world.passes.passes


async def test_within_its_age_one_snapshot_and_one_user_read_serve_the_whole_run(world: World) -> None:
    job_id = await world.checked_job(rows_for(STAFF))
    assert isinstance(await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False), Started)
    snapshots, users, reads = world.directory.snapshot_reads, world.directory.user_reads, world.passes.reads
    await world.runner.run(job_id, Sink())
    assert {row.state for row in await world.jobs.rows(job_id)} == {RowState.DELIVERED}
    assert world.directory.snapshot_reads - snapshots == 1 and world.directory.user_reads - users == 1
    # per row: the current pass (read under the user's lock) and the create
    assert world.passes.reads - reads == len(STAFF) and len(world.passes.created) == len(STAFF)


async def test_an_approval_delayed_run_takes_its_own_snapshot() -> None:
    world = World(ApprovalRules(lifetime_threshold_minutes=240, bulk_row_threshold=1))
    await world.open_channel()
    job_id = await world.checked_job(rows_for(STAFF[:3]))
    waiting = await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False)
    assert isinstance(waiting, WaitingForApproval)
    world.directory.roles[STAFF[1].object_id] = ("Helpdesk Administrator (through group Helpdesk Admins)",)
    world.directory.add(STAFF[2], PROTECTED)  # both while the request waited, within seconds of the preflight
    assert await world.bulk.approved(waiting.request) is not None
    await world.runner.run(job_id, Sink())
    rows = {row.target: row for row in await world.jobs.rows(job_id)}
    assert rows[STAFF[0].object_id].state is RowState.DELIVERED
    assert rows[STAFF[1].object_id].state is RowState.FAILED
    assert "holds the directory role Helpdesk Administrator" in rows[STAFF[1].object_id].reason
    assert rows[STAFF[2].object_id].state is RowState.FAILED and "protected group" in rows[STAFF[2].object_id].reason
