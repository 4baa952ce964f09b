"""Records the bot keeps about what it did, as the edge and the domain see them (the store maps them to tables).

None of them can hold a pass value: a pass card is where a pass was shown, so it can be redacted later.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class SignInWaitKind(enum.StrEnum):
    """What to resume once a person signs in (issue 14, delegated writes): `ref` says which one."""

    COMMAND = "command"  # ref: the canonical command text, run again as that person in their personal chat
    VERIFICATION = "verification"  # ref: the verification id whose confirmed request is run again as the technician
    BULK = "bulk"  # ref: the bulk job id, paused waiting for its requester's sign-in
    APPROVAL = "approval"  # ref: the approval request id (and decision note, as the edge encodes it) for that approver


@dataclass(frozen=True)
class SignInWait:
    """An action paused until `user_id` signs in; taken once, and only before `expires_at`. Never a token."""

    user_id: str
    kind: SignInWaitKind
    ref: str
    created_at: datetime
    expires_at: datetime


class RedactionReason(enum.StrEnum):
    HANDED_OVER = "handed_over"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REPLACED = "replaced"
    REGISTERED = "registered_own_method"  # follow-through deleted it: the user registered a sign-in method


@dataclass(frozen=True)
class PassCard:
    """A pass card sent to a requester: where it is, so it can be redacted later. Never the pass."""

    id: str
    requester_id: str
    target_id: str
    target_label: str
    pass_method_id: str
    start_at: datetime
    expires_at: datetime
    one_time: bool
    timezone: str
    service_url: str
    conversation_id: str
    activity_id: str | None
    created_at: datetime
    redacted_at: datetime | None = None
    redaction_reason: str | None = None


@dataclass(frozen=True)
class PersonalConversation:
    """The 1:1 chat between the bot and a user, so private messages need not create it again."""

    user_id: str
    tenant_id: str
    service_url: str
    conversation_id: str


@dataclass(frozen=True)
class AuditEntry:
    """One stored audit event, as read back for an export (the event plus its id; never a pass)."""

    id: int
    at: datetime
    action: str
    outcome: str
    actor_id: str
    actor_name: str
    target_id: str | None
    target_upn: str | None
    lifetime_minutes: int | None
    start_at: datetime | None
    one_time: bool | None
    pass_method_id: str | None
    graph_request_id: str | None
    rule: str | None
    detail: str
    reason: str = ""
    verification_id: str | None = None
    evidence_method: str | None = None
    evidence_by_id: str | None = None
    evidence_by: str | None = None
    evidence_at: datetime | None = None
    evidence_score: float | None = None
