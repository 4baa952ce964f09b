"""Independent role reads as Graph `$batch`es, against the sandbox: the second round of a target's role reads (a
holder of a role-assignable group) and the reads that explain Entra's 403 on a delegated write each go as one round
trip, with the same facts and the same errors as the single requests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.domain.entra_rights import HeldRole, PassWrite
from bot.domain.errors import GraphRejected
from bot.domain.model import DirectoryUser
from bot.sandbox.faults import parse_fault_rule
from bot.sandbox.tenant import load_tenant
from bot.settings import DEMO_TENANT_FILE
from tests.adapters.sandbox_graph import Graph, recording_graph
from tests.harness.bot import ADELE, ALEX, DIEGO, ISAIAH, MEGAN, Person

GRADY = Person("f3ebd287-8aba-4215-a442-62511e3584a3", "GradyA@contoso.onmicrosoft.com", "Grady Archie")
MIRIAM = Person("0b8df986-914e-4a37-9b65-e000f7cd5fa3", "MiriamG@contoso.onmicrosoft.com", "Miriam Graham")
PATTI = "c41e7b52-3d8f-4a6e-9b1c-7e2d5f0a9c36"  # demo: owner of "Helpdesk Admins" (a role through a group)
PARIS = "c6173151-0f93-4734-813e-1176caae1b0f"  # demo: the Paris office administrative unit
BATCH = "POST /v1.0/$batch"


@pytest.fixture
async def graph() -> AsyncIterator[Graph]:
    async with recording_graph(load_tenant(DEMO_TENANT_FILE)) as graph:
        yield graph


def user(person: Person) -> DirectoryUser:
    return DirectoryUser(person.object_id, person.upn, person.name)


async def test_the_second_round_of_a_group_held_role_is_one_batch(graph: Graph) -> None:
    reading = await graph.gateway.target_reading(PATTI, [])
    assert reading.role_names == ("Helpdesk Administrator (through ownership of group Helpdesk Admins)",)
    # First round (roles, pass) and second round (the group's assignments and eligibilities): two round trips, where
    # the second round was one request per read before.
    assert graph.sent == [BATCH, BATCH]


@pytest.mark.parametrize(
    ("person", "target", "roles", "privileged", "units", "sent"),
    [
        (DIEGO, MEGAN, (), None, {}, [BATCH]),
        (ALEX, MEGAN, (HeldRole("Authentication Administrator", "/", active=False),), None, {}, [BATCH]),
        (
            ADELE,
            ISAIAH,
            (HeldRole("Authentication Administrator", "/", active=True),),
            "holds an admin role",
            {},
            [BATCH],
        ),
        (
            GRADY,
            MIRIAM,
            (HeldRole("Authentication Administrator", f"/administrativeUnits/{PARIS}", active=True),),
            "holds an admin role",
            {PARIS: "Paris office"},
            [BATCH, BATCH],  # Grady's role comes through a group: its grants are the second round
        ),
        (
            GRADY,
            MEGAN,
            (HeldRole("Authentication Administrator", f"/administrativeUnits/{PARIS}", active=True),),
            None,
            {PARIS: "Paris office"},
            [BATCH, BATCH, f"GET /v1.0/directory/administrativeUnits/{PARIS}"],  # a unit Megan is not in: its name
        ),
    ],
)
async def test_the_reads_behind_entras_refusal_go_as_batches(
    graph: Graph,
    person: Person,
    target: Person,
    roles: tuple[HeldRole, ...],
    privileged: str | None,
    units: dict[str, str],
    sent: list[str],
) -> None:
    facts = await graph.gateway.refusal_facts(person.object_id, user(target), PassWrite.ISSUE)
    assert facts.roles == roles
    assert facts.target_privileged == privileged
    assert facts.unit_names == units
    assert graph.sent == sent  # 11 to 14 requests when each read was sent on its own


async def test_a_refused_item_of_the_refusal_reads_raises_the_single_requests_error(graph: Graph) -> None:
    fault = {"path_regex": r"/memberOf/graph.administrativeUnit$", "status": 403}
    graph.sandbox.state.faults.add(parse_fault_rule(fault))
    with pytest.raises(GraphRejected) as batched:
        await graph.gateway.refusal_facts(ADELE.object_id, user(MEGAN), PassWrite.ISSUE)
    assert graph.sent == [BATCH]  # mapped from the item's answer, not asked again
    graph.sandbox.state.faults.add(parse_fault_rule(fault))
    with pytest.raises(GraphRejected) as single:
        await graph.gateway.administrative_units_of(MEGAN.object_id)
    assert str(batched.value).split("Request id:")[0] == str(single.value).split("Request id:")[0]


async def test_unit_names_are_read_as_one_batch_and_an_unknown_unit_keeps_its_id(graph: Graph) -> None:
    unknown = "00000000-0000-0000-0000-0000000000aa"
    assert await graph.gateway.unit_names([PARIS, unknown]) == ["Paris office", unknown]
    assert graph.sent == [BATCH]
