"""Values the TAP rules work with. Nothing here knows about Teams or Graph."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class PassSecret:
    """The pass value. Its repr and str are masked so it cannot leak through logs or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a pass secret cannot be empty")
        self._value = value

    def reveal(self) -> str:
        """The real value: only the private pass card calls this."""
        return self._value

    def __repr__(self) -> str:
        return "PassSecret(********)"

    def __str__(self) -> str:
        return "********"

    def __format__(self, format_spec: str) -> str:
        return "********"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a pass secret cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PassSecret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("PassSecret", self._value))


@dataclass(frozen=True)
class Recipient:
    """Where a later private message to a person goes: enough to find or open their 1:1 chat."""

    object_id: str
    tenant_id: str
    name: str
    channel_account_id: str
    service_url: str
    bot_id: str


@dataclass(frozen=True)
class Caller:
    """Who is asking, taken from the authenticated activity, never from typed text."""

    object_id: str
    tenant_id: str
    display_name: str = ""
    address: Recipient | None = None  # how to reach them privately later (approvals)


class UserType(enum.StrEnum):
    MEMBER = "Member"
    GUEST = "Guest"


@dataclass(frozen=True)
class DirectoryUser:
    object_id: str
    user_principal_name: str
    display_name: str
    user_type: UserType = UserType.MEMBER
    account_enabled: bool = True
    employee_hire_date: datetime | None = None
    mail: str | None = None
    department: str | None = None
    job_title: str | None = None

    @property
    def label(self) -> str:
        """How people recognise the user in a sentence: 'Megan Bowen (megan@contoso.com)'."""
        if self.display_name and self.display_name != self.user_principal_name:
            return f"{self.display_name} ({self.user_principal_name})"
        return self.user_principal_name


class TargetType(enum.StrEnum):
    USER = "user"
    GROUP = "group"


ALL_USERS = "all_users"


@dataclass(frozen=True)
class PolicyTarget:
    target_type: TargetType
    target_id: str


@dataclass(frozen=True)
class TapPolicy:
    """The tenant's Temporary Access Pass policy, as Graph describes it."""

    enabled: bool
    default_lifetime_minutes: int
    minimum_lifetime_minutes: int
    maximum_lifetime_minutes: int
    default_length: int
    one_time_forced: bool
    include_targets: tuple[PolicyTarget, ...] = ()
    exclude_targets: tuple[PolicyTarget, ...] = ()

    @property
    def includes_everyone(self) -> bool:
        return any(target.target_id == ALL_USERS for target in self.include_targets)

    @property
    def target_group_ids(self) -> frozenset[str]:
        return frozenset(
            target.target_id
            for target in (*self.include_targets, *self.exclude_targets)
            if target.target_type is TargetType.GROUP and target.target_id != ALL_USERS
        )


class UsabilityReason(enum.StrEnum):
    ENABLED_BY_POLICY = "EnabledByPolicy"
    DISABLED_BY_POLICY = "DisabledByPolicy"
    EXPIRED = "Expired"
    NOT_YET_VALID = "NotYetValid"
    ONE_TIME_USED = "OneTimeUsed"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class PassInfo:
    """What can be known about a pass without its value (every read after creation)."""

    method_id: str
    created_at: datetime
    start_at: datetime
    lifetime_minutes: int
    one_time: bool
    usable: bool
    usability_reason: UsabilityReason

    @property
    def expires_at(self) -> datetime:
        return self.start_at + timedelta(minutes=self.lifetime_minutes)

    def is_live(self, now: datetime) -> bool:
        """Live: someone could still sign in with it now or later (usable, or waiting for its start)."""
        if self.usability_reason in (UsabilityReason.EXPIRED, UsabilityReason.ONE_TIME_USED):
            return False
        return now < self.expires_at


@dataclass(frozen=True)
class Evidence:
    """How the person was verified before their pass (bot/domain/verification.py): shown on the pass card, kept in
    the audit row and the audit export."""

    method: str  # "manager", "verified_id"
    confirmed_by_id: str  # who or what confirmed: an object id, or the Verified ID request's id
    confirmed_by_label: str  # for people to read: "Diego Siciliani (manager)", "Verified ID with Face Check"
    at: datetime
    score: float | None = None  # Face Check's match confidence, when there is one


@dataclass(frozen=True)
class IssuedPass:
    """A pass just created: the only value that carries the secret."""

    user: DirectoryUser
    info: PassInfo
    secret: PassSecret = field(repr=False)
    graph_request_id: str | None = None
    replaced: PassInfo | None = None
    evidence: Evidence | None = None  # the verification the pass was issued after, if any
    # Its audit row was written while its creator still held the user's lock (TapService.create_checked_pass): every
    # other pass of the user the bot made is recorded before it or after it, in the log's order.
    recorded_in_lock_order: bool = False


@dataclass(frozen=True)
class UnseenPass:
    """A pass known to exist that nobody was shown, known by its id and dates only (a bulk run stopped between its
    create and its results page: the value was lost with that run)."""

    user: DirectoryUser
    info: PassInfo


@dataclass(frozen=True)
class PassRequest:
    """What an operator asked for; unset fields take the policy's defaults."""

    target: str
    lifetime_minutes: int | None = None
    one_time: bool = False
    start_at: datetime | None = None
    replace: bool = False
    replace_method_id: str | None = None
    approved: bool = False  # a second operator already approved this request
    reason: str = ""  # why the pass is wanted, e.g. "INC0012345 lost phone"; see bot/domain/reasons.py
    verification_id: str | None = None  # a confirmed verification of the user, consumed by the write (verification.py)


@dataclass(frozen=True)
class OnboardRequest:
    """What a manager asked for; unset fields take the hire date and the onboarding defaults."""

    target: str
    start_at: datetime | None = None
    lifetime_minutes: int | None = None
    reason: str = ""
    verification_id: str | None = None  # a confirmed verification of the new hire (TAPBOT_VERIFY_ONBOARDING)
