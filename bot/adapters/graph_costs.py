"""What one Graph request counts toward: the limit dimensions the pacer (bot/domain/pacer.py) admits it against.

Graph's published identity-and-access limits
(https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits): per app and tenant, resource
units per 10 s by tenant size (S < 50 users 3,500; M 50-500 5,000; L > 500 8,000) and 3,000 writes per 150 s; per
tenant across apps 18,000 writes per 5 min. Costs by request kind follow the page's table ("Any requests not listed
have a base cost of 1"; a POST, PATCH, PUT or DELETE also costs 1 write; `$select` -1, `$expand` +1, `$top` below
20 -1, never below 1; costs given for `me/...` apply to `users/{id}/...`). The sandbox emulates the same page on its
side (bot/sandbox/throttle.py); tests check that both count the bot's requests alike.

Graph publishes no limit for authentication-method endpoints (`users/{id}/authentication/...`), where passes are
read and created: the pacer learns those from 429s, reads and writes apart.

The tenant's size tier is not known to the bot: it assumes the largest (L) and Graph's
`x-ms-throttle-limit-percentage` (sent above 0.8 of a limit) or a scoped 429 lowers it for a smaller tenant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from bot.domain.pacer import Limit

RESOURCE_UNITS = "resource units per app+tenant"
APP_WRITES = "writes per app+tenant"
TENANT_WRITES = "writes per tenant"
AUTH_METHOD_WRITES = "authentication-method writes"
AUTH_METHOD_READS = "authentication-method reads"

TENANT_SIZE_UNITS = {"S": 3_500, "M": 5_000, "L": 8_000}
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Read-only actions Graph lists with a write cost of 0.
READ_ACTIONS = frozenset(
    {
        "directoryobjects/getbyids",
        "getobjectsbyid",
        "ismemberof",
        "users/{id}/checkmembergroups",
        "users/{id}/checkmemberobjects",
        "users/{id}/getmembergroups",
        "users/{id}/getmemberobjects",
    }
)
BASE_UNITS: Mapping[tuple[str, str], int] = {
    ("GET", "users"): 2,
    ("GET", "users/{id}"): 2,  # read as the `GET users` row, as the sandbox does (the page does not say)
    ("GET", "applications"): 2,
    ("GET", "contracts"): 3,
    ("POST", "directoryobjects/getbyids"): 5,
    ("POST", "getobjectsbyid"): 5,
    ("GET", "groups/{id}/members"): 3,
    ("GET", "groups/{id}/transitivemembers"): 5,
    ("POST", "ismemberof"): 4,
    ("POST", "users/{id}/checkmembergroups"): 4,
    ("POST", "users/{id}/checkmemberobjects"): 4,
    ("POST", "users/{id}/getmembergroups"): 2,
    ("POST", "users/{id}/getmemberobjects"): 2,
    ("GET", "users/{id}/licensedetails"): 2,
    ("GET", "users/{id}/memberof"): 2,
    ("GET", "users/{id}/ownedobjects"): 2,
    ("GET", "users/{id}/transitivememberof"): 2,
    ("GET", "oauth2permissiongrants"): 2,
    ("GET", "oauth2permissiongrants/{id}"): 2,
    ("GET", "serviceprincipals/{id}/approleassignments"): 2,
    ("GET", "subscribedskus"): 3,
}
_ID_AFTER = frozenset({"users", "groups", "applications", "serviceprincipals", "oauth2permissiongrants", "me"})
_VERSIONS = frozenset({"v1.0", "beta"})
_TYPE_CASTS = ("microsoft.graph.", "graph.")
_AUTHENTICATION = "users/{id}/authentication"
_AUTHENTICATION_UNDER = _AUTHENTICATION + "/"


def graph_limits(tenant_size: str = "L") -> list[Limit]:
    return [
        Limit(RESOURCE_UNITS, 10.0, TENANT_SIZE_UNITS[tenant_size], reported=True),
        Limit(APP_WRITES, 150.0, 3_000, reported=True),
        Limit(TENANT_WRITES, 300.0, 18_000),
        Limit(AUTH_METHOD_WRITES, 10.0),
        # A refused read is only retried: bulk reads start from a generous guess (30 per second), creates from 2.
        Limit(AUTH_METHOD_READS, 10.0, bulk_start=300),
    ]


def request_charges(method: str, path: str, query: Mapping[str, str], body: bytes | None = None) -> dict[str, int]:
    """The amounts one request counts toward each dimension; a `$batch` counts its items one by one."""
    segments = _segments(path)
    method = method.upper()
    if method == "POST" and segments == ["$batch"]:
        return _batch_charges(body)
    shape = _shape(segments)
    units = BASE_UNITS.get((method, shape), 1)
    names = {name.lower(): value for name, value in query.items()}
    if "$select" in names:
        units -= 1
    if "$expand" in names:
        units += 1
    top = names.get("$top")
    if top is not None and top.isdigit() and int(top) < 20:
        units -= 1
    charges = {RESOURCE_UNITS: max(1, units)}
    writes = 1 if method in WRITE_METHODS and shape not in READ_ACTIONS else 0
    if writes:
        charges[APP_WRITES] = writes
        charges[TENANT_WRITES] = writes
    if len(segments) >= 3 and (shape == _AUTHENTICATION or shape.startswith(_AUTHENTICATION_UNDER)):
        charges[AUTH_METHOD_WRITES if writes else AUTH_METHOD_READS] = 1
    return charges


def _segments(path: str) -> list[str]:
    segments = [segment for segment in path.strip("/").split("/") if segment]
    if segments and segments[0].lower() in _VERSIONS:
        segments = segments[1:]
    return segments


def _shape(segments: list[str]) -> str:
    shaped: list[str] = []
    previous = ""
    for index, segment in enumerate(segments):
        lowered = segment.lower()
        if previous in _ID_AFTER and shaped and shaped[-1] != "{id}":
            shaped.append("{id}")
        elif not index and lowered == "me":
            shaped += ("users", "{id}")  # `me/...` costs what `users/{id}/...` costs
            lowered = "{id}"
        elif not lowered.startswith(_TYPE_CASTS):
            shaped.append(lowered)
        # else: a type cast costs what its collection costs
        previous = lowered
    return "/".join(shaped)


def batch_item_charges(body: bytes | None) -> list[tuple[str, dict[str, int]]] | None:
    """Each item of a `$batch` body with what it counts toward (its id, as Graph answers it), in the body's order;
    None for a body that is not a batch's."""
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return None
    requests = parsed.get("requests") if isinstance(parsed, dict) else None
    if not isinstance(requests, list):
        return None
    items: list[tuple[str, dict[str, int]]] = []
    for item in cast(list[Any], requests):
        if not isinstance(item, dict):
            continue
        entry = cast(dict[str, Any], item)
        items.append(
            (str(entry.get("id")), item_charges(str(entry.get("method") or "GET"), str(entry.get("url") or "")))
        )
    return items


def item_charges(method: str, url: str) -> dict[str, int]:
    """What one `$batch` item counts toward: its method and its URL as the batch body gives it (path and query)."""
    path, _, query_text = url.partition("?")
    query = {name: value for name, _, value in (part.partition("=") for part in query_text.split("&") if part)}
    return request_charges(method, path, query)


def _batch_charges(body: bytes | None) -> dict[str, int]:
    total: dict[str, int] = {}
    for _, charges in batch_item_charges(body) or []:
        for name, amount in charges.items():
            total[name] = total.get(name, 0) + amount
    return total or {RESOURCE_UNITS: 1}
