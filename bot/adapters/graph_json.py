"""Graph's JSON answers (parsed with json.loads) read into the bot's types, and the small helpers around them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from bot.domain.model import DirectoryUser, PassInfo, PolicyTarget, TargetType, UsabilityReason, UserType

TENANT_SCOPE = "/"


@dataclass(frozen=True)
class RoleGrant:
    """A directory role a principal holds (active) or may activate at will (eligible in PIM)."""

    principal_id: str
    role_name: str
    directory_scope_id: str = TENANT_SCOPE
    eligible: bool = False


@dataclass(frozen=True)
class GroupEligibility:
    """PIM for Groups: the user may activate membership (or ownership) of this group at will."""

    group_id: str
    group_name: str
    access: str  # "member" or "owner"


def _odata_literal(value: str) -> str:
    return value.replace("'", "''")


# The user properties a name search looks in: displayName is matched word by word (Graph tokenizes it), the others
# by their start (Graph: "fields other than displayName and description default to $filter startswith behavior").
SEARCH_PROPERTIES = ("displayName", "givenName", "surname", "mail", "userPrincipalName")
# A known Graph issue: `$search` on directory objects mishandles values containing '&' (search-query-parameter.md).
_SEARCH_UNSAFE = str.maketrans({"&": " "})


def user_search_clauses(text: str) -> str | None:
    """The `$search` value for a name typed by a person: `"displayName:Megan Bowen" OR "givenName:Megan Bowen" OR
    ...`. Graph's rules (concepts/search-query-parameter.md): each clause is `"property:text"` inside double quotes,
    a `"` or `\\` in the text escaped with a backslash, clauses joined by upper-case OR; the query string's own
    percent-encoding is the SDK's. None when nothing searchable is left."""
    cleaned = " ".join(text.translate(_SEARCH_UNSAFE).split())
    if not cleaned:
        return None
    escaped = cleaned.replace("\\", "\\\\").replace('"', '\\"')
    return " OR ".join(f'"{name}:{escaped}"' for name in SEARCH_PROPERTIES)


def _role_name(definition: object) -> str:
    name = definition.get("displayName") if isinstance(definition, dict) else None
    return str(name) if name else "a directory role"


def _values(collection: Mapping[str, Any] | None) -> list[Any]:
    """The `value` array of a Graph answer; objects in it are dicts (or strings, for checkMemberGroups)."""
    values = collection.get("value") if collection else None
    return list(cast(list[Any], values)) if isinstance(values, list) else []


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _role_label(grant: RoleGrant, via_group: str | None) -> str:
    """'Global Administrator', or with how it is held: 'Helpdesk Administrator (eligible in PIM, through group X)'."""
    how: list[str] = []
    if grant.eligible:
        how.append("eligible in PIM")
    if via_group is not None:
        how.append(via_group)
    if grant.directory_scope_id != TENANT_SCOPE:
        how.append("scoped to an administrative unit")
    return f"{grant.role_name} ({', '.join(how)})" if how else grant.role_name


def _targets(raw: object) -> tuple[PolicyTarget, ...]:
    targets: list[PolicyTarget] = []
    for entry in cast(list[Any], raw) if isinstance(raw, list) else []:
        if isinstance(entry, dict) and entry.get("id"):
            kind = TargetType.USER if str(entry.get("targetType") or "").lower() == "user" else TargetType.GROUP
            targets.append(PolicyTarget(kind, str(entry["id"])))
    return tuple(targets)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _directory_user(user: Mapping[str, Any]) -> DirectoryUser:
    upn = _text(user.get("userPrincipalName")) or ""
    user_type = UserType.GUEST if (_text(user.get("userType")) or "").lower() == "guest" else UserType.MEMBER
    return DirectoryUser(
        object_id=_text(user.get("id")) or "",
        user_principal_name=upn,
        display_name=_text(user.get("displayName")) or upn,
        user_type=user_type,
        account_enabled=user.get("accountEnabled") is not False,
        employee_hire_date=_utc(_datetime(user.get("employeeHireDate"))),
        mail=_text(user.get("mail")),
        department=_text(user.get("department")) or None,
        job_title=_text(user.get("jobTitle")) or None,
    )


def _pass_info(method: Mapping[str, Any]) -> PassInfo:
    created = _utc(_datetime(method.get("createdDateTime"))) or datetime.now(UTC)
    start = _utc(_datetime(method.get("startDateTime"))) or created
    try:
        reason = UsabilityReason(_text(method.get("methodUsabilityReason")) or "Unknown")
    except ValueError:
        reason = UsabilityReason.UNKNOWN
    return PassInfo(
        method_id=_text(method.get("id")) or "",
        created_at=created,
        start_at=start,
        lifetime_minutes=_int(method.get("lifetimeInMinutes")) or 0,
        one_time=method.get("isUsableOnce") is True,
        usable=method.get("isUsable") is True,
        usability_reason=reason,
    )


def _datetime(value: object) -> datetime | None:
    """An ISO 8601 date-time from Graph (`2026-11-02T09:00:00Z`, up to 7 fractional digits); None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most 6 fractional digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
