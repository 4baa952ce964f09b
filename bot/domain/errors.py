"""Errors the domain raises. Each carries a sentence a user can act on, and never a pass value."""

from __future__ import annotations

import enum


class TapError(Exception):
    """Base: `user_message` is what the requester reads; str(error) is the same sentence."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class Rule(enum.StrEnum):
    """The rule behind a refusal. Its value is what the audit log stores."""

    WRONG_TENANT = "wrong_tenant"
    NOT_OPERATOR = "not_operator"
    UNKNOWN_CALLER = "unknown_caller"
    SELF_ISSUE = "self_issue"
    GUEST = "guest"
    DISABLED = "disabled"
    ROLE_HOLDER = "role_holder"
    PROTECTED_GROUP = "protected_group"
    POLICY_DISABLED = "policy_disabled"
    OUTSIDE_POLICY_SCOPE = "outside_policy_scope"
    LIFETIME_RANGE = "lifetime_range"
    START_IN_PAST = "start_in_past"
    START_TOO_LATE = "start_too_late"
    NOT_MANAGER = "not_manager"
    HAS_SIGN_IN_METHODS = "has_sign_in_methods"
    EXISTING_PASS = "existing_pass"
    NO_APPROVALS_CHANNEL = "no_approvals_channel"
    SELF_APPROVAL = "self_approval"
    VERIFICATION_REQUIRED = "verification_required"  # a recovery pass needs a verification of the person first
    VERIFICATION_NOT_USABLE = "verification_not_usable"  # used, expired, refused, or made for another pass
    NO_ATTESTER = "no_attester"  # nobody may confirm who the user is (no usable manager, no fallback approver)
    NOT_ATTESTER = "not_attester"  # someone other than the person asked pressed Confirm / This is not them
    ENTRA_REFUSED = "entra_refused"  # delegated writes: Entra refused the write with the technician's own rights


class Refused(TapError):
    """A rule forbids the request. Refusals are audited."""

    def __init__(self, rule: Rule, user_message: str) -> None:
        super().__init__(user_message)
        self.rule = rule


class TargetBusy(TapError):
    """Another operator (or replica) is checking and creating a pass for the same user right now."""

    def __init__(self, label: str) -> None:
        super().__init__(f"Another operator is issuing a pass for {label} right now; try again in a moment.")


class UserNotFound(TapError):
    def __init__(self, reference: str) -> None:
        super().__init__(
            f"I can't find a user '{reference}' in this tenant. "
            "Check the spelling of the user principal name, or use the object id."
        )
        self.reference = reference


class GraphUnavailable(TapError):
    """Graph failed or timed out; nothing was left half-done."""

    def __init__(self, user_message: str, request_id: str | None = None) -> None:
        super().__init__(user_message)
        self.request_id = request_id


class Throttled(GraphUnavailable):
    def __init__(self, retry_after_seconds: float, request_id: str | None = None) -> None:
        super().__init__(
            f"Microsoft Graph is throttling requests right now. Try again in about "
            f"{max(1, round(retry_after_seconds))} seconds.",
            request_id,
        )
        self.retry_after_seconds = retry_after_seconds


class GraphRejected(TapError):
    """Graph refused a write for a reason the bot's own checks did not foresee."""

    def __init__(self, user_message: str, request_id: str | None = None) -> None:
        super().__init__(user_message)
        self.request_id = request_id


class NotRecorded(TapError):
    """A pass was made but its audit row could not be written: it was deleted again (or, failing that, the sentence
    says it is still valid and how to end it)."""


class SignInRequired(TapError):
    """A delegated write needs `user_id`'s own Graph token and none is available: nothing was sent.

    The Teams edge answers with a sign-in card in that person's 1:1 chat and resumes the action after sign-in.
    """

    def __init__(self, user_id: str, user_message: str | None = None) -> None:
        super().__init__(
            user_message
            or "Sign in to tapbot first: passes are written with your own Entra rights, and I have no sign-in of "
            "yours to use. Nothing was changed."
        )
        self.user_id = user_id


class EntraRefused(Refused):
    """Entra refused a delegated write (403) with the acting person's own rights; the sentence names what they lack.

    A `Refused` with rule `Rule.ENTRA_REFUSED`, so it is audited and answered like the bot's own refusals."""

    def __init__(self, user_message: str, request_id: str | None = None) -> None:
        super().__init__(Rule.ENTRA_REFUSED, user_message)
        self.request_id = request_id
