"""The sentence for Entra's refusal of a delegated write: each of Entra's rules named in words the person can act on."""

from __future__ import annotations

import pytest

from bot.domain.entra_rights import (
    AUTHENTICATION_ADMINISTRATOR as AA,
)
from bot.domain.entra_rights import (
    GLOBAL_ADMINISTRATOR as GA,
)
from bot.domain.entra_rights import (
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR as PAA,
)
from bot.domain.entra_rights import HeldRole, PassWrite, RefusalFacts, refusal_sentence

PARIS = "/administrativeUnits/9b1c0000-0000-4000-8000-00000000a001"
LYON = "/administrativeUnits/9b1c0000-0000-4000-8000-00000000a002"
UNITS = {"9b1c0000-0000-4000-8000-00000000a001": "Paris office", "9b1c0000-0000-4000-8000-00000000a002": "Lyon office"}


def facts(*roles: HeldRole, write: PassWrite = PassWrite.ISSUE, **extra: object) -> RefusalFacts:
    return RefusalFacts(write=write, target_name="Megan Bowen", roles=roles, unit_names=UNITS, **extra)  # type: ignore[arg-type]


def test_no_role_at_all() -> None:
    assert refusal_sentence(facts()) == "You need the Authentication Administrator role in Entra to issue passes."
    assert refusal_sentence(facts(HeldRole("Helpdesk Administrator"), write=PassWrite.REVOKE)) == (
        "You need the Authentication Administrator role in Entra to revoke passes."
    )


def test_eligible_but_not_active_in_pim() -> None:
    assert refusal_sentence(facts(HeldRole(AA, active=False))) == (
        "Activate your Authentication Administrator role in Privileged Identity Management first, then try again."
    )


def test_an_eligible_privileged_role_is_named_for_a_privileged_target_held_only_as_authentication_administrator() -> (
    None
):
    sentence = refusal_sentence(
        facts(HeldRole(AA), HeldRole(PAA, active=False), target_privileged="holds an admin role")
    )
    assert sentence == (
        "Activate your Privileged Authentication Administrator role in Privileged Identity Management first, "
        "then try again."
    )


def test_a_role_scoped_to_a_unit_the_target_is_not_in() -> None:
    assert refusal_sentence(facts(HeldRole(AA, PARIS))) == (
        "Your Authentication Administrator role covers only the administrative unit Paris office; "
        "Megan Bowen is not in it."
    )
    assert refusal_sentence(facts(HeldRole(AA, PARIS), HeldRole(AA, LYON))) == (
        "Your Authentication Administrator role covers only the administrative units Lyon office and Paris office; "
        "Megan Bowen is not in it."
    )


def test_an_eligible_role_at_another_unit_is_not_a_reason_to_activate_it() -> None:
    assert refusal_sentence(facts(HeldRole(AA, PARIS, active=False))).startswith(
        "Your Authentication Administrator role covers only the administrative unit Paris office"
    )


def test_a_unit_role_covers_its_members() -> None:
    unit = frozenset({"9b1c0000-0000-4000-8000-00000000a001"})
    assert refusal_sentence(facts(HeldRole(AA, PARIS), target_unit_ids=unit)).startswith("Entra refused")
    assert (
        refusal_sentence(facts(HeldRole(AA, PARIS), target_unit_ids=unit, target_privileged="holds an admin role"))
        == "Megan Bowen holds an admin role: only a Privileged Authentication Administrator can give them a pass."
    )


@pytest.mark.parametrize(
    ("why", "write", "sentence"),
    [
        (
            "holds an admin role",
            PassWrite.ISSUE,
            "Megan Bowen holds an admin role: only a Privileged Authentication Administrator can give them a pass.",
        ),
        (
            "owns the role-assignable group Helpdesk Admins",
            PassWrite.REVOKE,
            "Megan Bowen owns the role-assignable group Helpdesk Admins: only a Privileged Authentication "
            "Administrator can revoke their pass.",
        ),
    ],
)
def test_authentication_administrator_for_a_privileged_target(why: str, write: PassWrite, sentence: str) -> None:
    assert refusal_sentence(facts(HeldRole(AA), write=write, target_privileged=why)) == sentence


@pytest.mark.parametrize("role", [PAA, GA])
def test_when_the_roles_allow_it_entras_own_code_and_request_id_are_said(role: str) -> None:
    assert (
        refusal_sentence(
            facts(HeldRole(role), target_privileged="holds an admin role", graph_code="accessDenied", request_id="r-1")
        )
        == "Entra refused this write with your rights (accessDenied, request id r-1)."
    )
    assert refusal_sentence(facts(HeldRole(AA))) == "Entra refused this write with your rights."
