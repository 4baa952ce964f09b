"""Who may receive a pass, and with which lifetime: pure rules over facts the directory supplied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.errors import Refused, Rule
from bot.domain.model import Caller, DirectoryUser, TapPolicy, TargetType, UserType

# Graph's own bounds for any pass, whatever the tenant policy says.
GRAPH_MIN_LIFETIME_MINUTES = 10
GRAPH_MAX_LIFETIME_MINUTES = 43200

START_PAST_TOLERANCE = timedelta(minutes=1)
# Graph documents no latest startDateTime (only lifetimeInMinutes 10..43200). This bound is ours: a start a
# quarter ahead covers announced hire dates, catches typos such as 9999-12-31, and keeps start plus lifetime a
# moment every card, time zone and database can represent.
START_MAX_AHEAD = timedelta(days=90)


@dataclass(frozen=True)
class TargetFacts:
    """What the directory said about the target, gathered before any rule is applied."""

    user: DirectoryUser
    role_names: tuple[str, ...]
    member_group_ids: frozenset[str]


def format_minutes(minutes: int) -> str:
    """480 → '8 hours', 90 → '1 hour 30 minutes', 2880 → '2 days'."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = []
    for amount, unit in ((days, "day"), (hours, "hour"), (mins, "minute")):
        if amount:
            parts.append(f"{amount} {unit}{'' if amount == 1 else 's'}")
    return " ".join(parts) or "0 minutes"


def target_refusal(
    caller: Caller, facts: TargetFacts, policy: TapPolicy, protected_group_ids: frozenset[str]
) -> Refused | None:
    """The first rule that forbids a pass for this target, or None. Order: most specific reason first."""
    user = facts.user
    if user.object_id.lower() == caller.object_id.lower():
        return Refused(
            Rule.SELF_ISSUE,
            "You can't issue a pass for yourself. Ask another operator to do it.",
        )
    if user.user_type is UserType.GUEST or "#EXT#" in user.user_principal_name.upper():
        return Refused(
            Rule.GUEST,
            f"{user.label} is an external guest; Temporary Access Passes are only for members of this tenant.",
        )
    if not user.account_enabled:
        return Refused(
            Rule.DISABLED,
            f"{user.label} has a disabled account. Enable the account first if the person should sign in.",
        )
    if facts.role_names:
        return Refused(
            Rule.ROLE_HOLDER,
            f"{user.label} holds the directory role {', '.join(sorted(facts.role_names))}. "
            "Passes for privileged accounts must be issued by a Privileged Authentication Administrator "
            "in the Entra admin center.",
        )
    if protected_group_ids & facts.member_group_ids:
        return Refused(
            Rule.PROTECTED_GROUP,
            f"{user.label} is in a protected group (break-glass or service accounts); "
            "this bot never issues passes for those accounts.",
        )
    return policy_scope_refusal(facts, policy)


def policy_scope_refusal(facts: TargetFacts, policy: TapPolicy) -> Refused | None:
    user = facts.user
    if not policy.enabled:
        return Refused(
            Rule.POLICY_DISABLED,
            "Temporary Access Passes are disabled in this tenant's authentication methods policy. "
            "An administrator must enable them in the Entra admin center first.",
        )
    if _matches_any(policy.exclude_targets, facts):
        return Refused(
            Rule.OUTSIDE_POLICY_SCOPE,
            f"{user.label} is excluded from the tenant's Temporary Access Pass policy.",
        )
    if not (policy.includes_everyone or _matches_any(policy.include_targets, facts)):
        return Refused(
            Rule.OUTSIDE_POLICY_SCOPE,
            f"{user.label} is not included in the tenant's Temporary Access Pass policy.",
        )
    return None


def _matches_any(targets: tuple, facts: TargetFacts) -> bool:
    for target in targets:
        if target.target_type is TargetType.USER and target.target_id.lower() == facts.user.object_id.lower():
            return True
        if target.target_type is TargetType.GROUP and target.target_id in facts.member_group_ids:
            return True
    return False


def resolve_lifetime(requested: int | None, policy: TapPolicy) -> int:
    """The lifetime to ask Graph for: the policy default when none was asked, refused outside the range."""
    minimum = max(policy.minimum_lifetime_minutes, GRAPH_MIN_LIFETIME_MINUTES)
    maximum = min(policy.maximum_lifetime_minutes, GRAPH_MAX_LIFETIME_MINUTES)
    if requested is None:
        return min(max(policy.default_lifetime_minutes, minimum), maximum)
    if not minimum <= requested <= maximum:
        return _raise_lifetime(requested, minimum, maximum)
    return requested


def _raise_lifetime(requested: int, minimum: int, maximum: int) -> int:
    raise Refused(
        Rule.LIFETIME_RANGE,
        f"A pass in this tenant must last between {format_minutes(minimum)} and {format_minutes(maximum)}; "
        f"you asked for {format_minutes(requested)}.",
    )


def clamp_lifetime(preferred: int | None, policy: TapPolicy) -> int:
    """A lifetime from settings (not typed by anyone), moved inside the policy's range instead of refused."""
    if preferred is None:
        return resolve_lifetime(None, policy)
    minimum = max(policy.minimum_lifetime_minutes, GRAPH_MIN_LIFETIME_MINUTES)
    maximum = min(policy.maximum_lifetime_minutes, GRAPH_MAX_LIFETIME_MINUTES)
    return min(max(preferred, minimum), maximum)


def resolve_one_time(requested: bool, policy: TapPolicy) -> bool:
    """The policy can force one-time use; an operator can always ask for it."""
    return requested or policy.one_time_forced


def schedule_refusal(lifetime_minutes: int, start_at: datetime | None, now: datetime) -> Refused | None:
    """Graph's bounds (and ours for the start) on any pass, whoever asked: checked again right before a create."""
    if not GRAPH_MIN_LIFETIME_MINUTES <= lifetime_minutes <= GRAPH_MAX_LIFETIME_MINUTES:
        return Refused(
            Rule.LIFETIME_RANGE,
            f"A pass must last between {format_minutes(GRAPH_MIN_LIFETIME_MINUTES)} and "
            f"{format_minutes(GRAPH_MAX_LIFETIME_MINUTES)}.",
        )
    return start_refusal(start_at, now)


def start_refusal(start_at: datetime | None, now: datetime) -> Refused | None:
    if start_at is None:
        return None
    if start_at < now - START_PAST_TOLERANCE:
        return Refused(Rule.START_IN_PAST, "That start time has already passed; give a time in the future.")
    if start_at > now + START_MAX_AHEAD:
        return Refused(
            Rule.START_TOO_LATE,
            f"A pass can start at most {START_MAX_AHEAD.days} days from now; give an earlier start.",
        )
    return None
