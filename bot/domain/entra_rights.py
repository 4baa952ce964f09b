"""Why Entra refused a delegated write (issue 14): the sentence naming what the acting person lacks.

Graph's 403 on a pass write says only "Request Authorization failed". The rule below reads the person's directory
roles (active and eligible, with their scope) and the target's administrative units and privileges, and says which of
Entra's rules applies, in the order a person can act on it:

1. no role that can write passes at all (Authentication Administrator, Privileged Authentication Administrator,
   Global Administrator);
2. such a role only eligible in Privileged Identity Management: activate it;
3. the role only at administrative units the target is not in;
4. Authentication Administrator, but the target is privileged (holds an admin role, or is a member or owner of a
   role-assignable group): only a Privileged Authentication Administrator may;
5. otherwise Entra's own reason is not one of these: said with Graph's code and request id.

Pure: the facts come from app-only Graph reads (bot/adapters/graph_roles.py).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

AUTHENTICATION_ADMINISTRATOR = "Authentication Administrator"
PRIVILEGED_AUTHENTICATION_ADMINISTRATOR = "Privileged Authentication Administrator"
GLOBAL_ADMINISTRATOR = "Global Administrator"
# Roles that may manage other users' authentication methods; the privileged ones may for any user.
PASS_WRITER_ROLES = frozenset(
    {AUTHENTICATION_ADMINISTRATOR, PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR}
)
PRIVILEGED_WRITER_ROLES = frozenset({PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR})
TENANT_SCOPE = "/"
_UNIT_SCOPE_PREFIX = "/administrativeunits/"


class PassWrite(enum.StrEnum):
    ISSUE = "issue"
    REVOKE = "revoke"


@dataclass(frozen=True)
class HeldRole:
    """A directory role the acting person holds (active) or may activate (eligible), at the tenant or a unit."""

    name: str
    scope: str = TENANT_SCOPE  # "/" or "/administrativeUnits/{id}"
    active: bool = True

    @property
    def unit_id(self) -> str | None:
        scope = self.scope.lower()
        return scope[len(_UNIT_SCOPE_PREFIX) :] if scope.startswith(_UNIT_SCOPE_PREFIX) else None


@dataclass(frozen=True)
class RefusalFacts:
    """What the rule reads: the acting person's roles, the target's units and why the target is privileged."""

    write: PassWrite
    target_name: str
    roles: Sequence[HeldRole] = ()
    target_unit_ids: frozenset[str] = frozenset()  # lower case
    unit_names: Mapping[str, str] = field(default_factory=dict)  # unit id (lower case) -> display name
    target_privileged: str | None = None  # e.g. "holds an admin role", "is in the role-assignable group X"
    graph_code: str | None = None
    request_id: str | None = None


def refusal_sentence(facts: RefusalFacts) -> str:
    writers = [role for role in facts.roles if role.name in PASS_WRITER_ROLES]
    if any(_covers(role, facts) for role in writers if role.active):
        return _fallback(facts)  # the roles allow it: Entra refused for a reason not modelled here
    eligible = sorted((role for role in writers if not role.active and _covers(role, facts)), key=_preference)
    if eligible:
        return f"Activate your {eligible[0].name} role in Privileged Identity Management first, then try again."
    active = [role for role in writers if role.active]
    pool = active or [role for role in writers if not role.active]  # activating an eligible one would not help
    if not pool:
        action = "issue passes" if facts.write is PassWrite.ISSUE else "revoke passes"
        return f"You need the {AUTHENTICATION_ADMINISTRATOR} role in Entra to {action}."
    in_scope = [role for role in pool if _in_scope(role, facts)]
    if not in_scope:
        role = sorted(pool, key=_preference)[0]
        units = sorted(
            {facts.unit_names.get(r.unit_id or "", "an administrative unit") for r in pool if r.name == role.name}
        )
        which = f"the administrative unit {units[0]}" if len(units) == 1 else f"the administrative units {_and(units)}"
        return f"Your {role.name} role covers only {which}; {facts.target_name} is not in it."
    if facts.target_privileged:
        deed = "give them a pass" if facts.write is PassWrite.ISSUE else "revoke their pass"
        return (
            f"{facts.target_name} {facts.target_privileged}: only a {PRIVILEGED_AUTHENTICATION_ADMINISTRATOR} "
            f"can {deed}."
        )
    return _fallback(facts)


def _in_scope(role: HeldRole, facts: RefusalFacts) -> bool:
    if role.scope == TENANT_SCOPE:
        return True
    return role.unit_id is not None and role.unit_id in facts.target_unit_ids


def _covers(role: HeldRole, facts: RefusalFacts) -> bool:
    if not _in_scope(role, facts):
        return False
    return role.name in PRIVILEGED_WRITER_ROLES or not facts.target_privileged


def _preference(role: HeldRole) -> tuple[int, str]:
    """Authentication Administrator first (the least privilege that may do it), then the others by name."""
    return (0 if role.name == AUTHENTICATION_ADMINISTRATOR else 1, role.name)


def _and(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1]


def _fallback(facts: RefusalFacts) -> str:
    return unexplained_refusal(facts.graph_code, facts.request_id)


def unexplained_refusal(graph_code: str | None, request_id: str | None) -> str:
    """Entra's refusal when the roles allow the write, or could not be read: its code and request id."""
    details = [part for part in (graph_code, f"request id {request_id}" if request_id else None) if part]
    said = f" ({', '.join(details)})" if details else ""
    return f"Entra refused this write with your rights{said}."
