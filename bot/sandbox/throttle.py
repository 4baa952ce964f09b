"""Throttling the way Microsoft Graph throttles identity-and-access requests, on the sandbox's clock.

Two configurations, which can be combined:

- the simple request budget (``request_budget`` per ``budget_window_s``): every request counts 1;
- Graph's published identity-and-access limits (``graph_limits``), as described in
  https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits: per app+tenant pair a
  resource-unit quota per 10 s by tenant size (S < 50 users: 3,500; M 50-500: 5,000; L > 500: 8,000) and a write
  quota of 3,000 per 150 s; per tenant, across apps, 18,000 writes per 5 min. Each request costs resource units
  (and writes) by its kind, see :func:`request_cost`.

Plus an optional limit Graph does not publish (``auth_method_limit``): requests on authentication-method endpoints
(``/users/{id}/authentication/...``) per window, to stand for the tighter limit pass creation may really have.

Windows slide: a request is admitted when, for every limit it counts against, the amounts admitted within the last
window plus its own stay within the limit; otherwise it is answered 429 with ``Retry-After`` (whole seconds: the
time until enough of the window has slid out) and counts against nothing. Graph documents a token bucket; a
sliding window has the same long-run rate and gives exact, testable Retry-After values.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

RESOURCE_UNITS_WINDOW_S = 10.0
APP_WRITES_LIMIT, APP_WRITES_WINDOW_S = 3_000, 150.0
TENANT_WRITES_LIMIT, TENANT_WRITES_WINDOW_S = 18_000, 300.0
# "S - under 50 users, M - between 50 and 500 users, and L - above 500 users".
TENANT_SIZE_UNITS = {"S": 3_500, "M": 5_000, "L": 8_000}
# x-ms-throttle-limit-percentage is "returned only when the application consumed more than 0.8 of its limit".
LIMIT_PERCENTAGE_THRESHOLD = 0.8
DEFAULT_APP_ID = "tapbot"
APP_HEADER = "x-sandbox-app-id"
"""Which app a request comes from (the sandbox has no tokens); lets tests put other apps in the tenant."""

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

# Base costs in resource units (and writes) from the published table; any identity path not listed costs 1 RU, a
# write 1 RU + 1 write. Costs published for `me/...` also apply to `users/{id}/...`. Paths are matched with ids
# replaced by `{id}`, lower-cased. Reading the table's `GET users` row as covering `users/{id}` too is this
# sandbox's choice (unconfirmed): with `$select` it costs 1, as the tapbot issue assumes.
# `users/{id}/ownedobjects` is in the table; `groups/{id}/owners` is not, so it costs the default 1 RU.
BASE_COSTS: Mapping[tuple[str, str], tuple[int, int]] = {
    ("GET", "users"): (2, 0),
    ("GET", "users/{id}"): (2, 0),
    ("GET", "applications"): (2, 0),
    ("GET", "contracts"): (3, 0),
    ("POST", "directoryobjects/getbyids"): (3, 0),
    ("POST", "getobjectsbyid"): (3, 0),
    ("GET", "groups/{id}/members"): (3, 0),
    ("GET", "groups/{id}/transitivemembers"): (5, 0),
    ("POST", "ismemberof"): (4, 0),
    ("POST", "users/{id}/checkmembergroups"): (4, 0),
    ("POST", "users/{id}/checkmemberobjects"): (4, 0),
    ("POST", "users/{id}/getmembergroups"): (2, 0),
    ("POST", "users/{id}/getmemberobjects"): (2, 0),
    ("GET", "users/{id}/licensedetails"): (2, 0),
    ("GET", "users/{id}/memberof"): (2, 0),
    ("GET", "users/{id}/ownedobjects"): (2, 0),
    ("GET", "users/{id}/transitivememberof"): (2, 0),
    ("GET", "oauth2permissiongrants"): (2, 0),
    ("GET", "oauth2permissiongrants/{id}"): (2, 0),
    ("GET", "serviceprincipals/{id}/approleassignments"): (2, 0),
    ("GET", "subscribedskus"): (3, 0),
}
# Collections whose next segment is an object id (so `users/x/manager` matches `users/{id}/manager`).
_ID_AFTER = frozenset({"users", "groups", "applications", "serviceprincipals", "oauth2permissiongrants", "me"})


@dataclass(frozen=True)
class Cost:
    resource_units: int
    writes: int


def request_cost(method: str, path: str, query: Mapping[str, str]) -> Cost:
    """Resource units and writes of one request, following the published table and its modifiers:
    `$select` −1, `$expand` +1, `$top` below 20 −1, never below 1."""
    method = method.upper()
    shape = _path_shape(path)
    units, writes = BASE_COSTS.get((method, shape), (1, 1 if method in WRITE_METHODS else 0))
    names = {name.lower() for name in query}
    if "$select" in names:
        units -= 1
    if "$expand" in names:
        units += 1
    top = next((value for name, value in query.items() if name.lower() == "$top"), None)
    if top is not None and top.isdigit() and int(top) < 20:
        units -= 1
    return Cost(max(1, units), writes)


def _path_shape(path: str) -> str:
    segments = [segment.lower() for segment in path.strip("/").split("/") if segment]
    if segments and segments[0] == "me":
        segments = ["users", "{id}", *segments[1:]]
    shaped: list[str] = []
    for index, segment in enumerate(segments):
        previous = segments[index - 1] if index else None
        if previous in _ID_AFTER and shaped[-1] != "{id}":
            shaped.append("{id}")
        elif segment.startswith(("microsoft.graph.", "graph.")):
            # A type cast (`transitiveMemberOf/microsoft.graph.group`, or msgraph-sdk's `graph.group`) costs what its
            # collection costs.
            continue
        else:
            shaped.append(segment)
    return "/".join(shaped)


def is_authentication_method_path(path: str) -> bool:
    segments = [segment.lower() for segment in path.strip("/").split("/") if segment]
    if segments[:1] == ["me"]:
        segments = ["users", "{id}", *segments[1:]]
    return len(segments) >= 3 and segments[0] == "users" and segments[2] == "authentication"


def tenant_size(user_count: int) -> str:
    if user_count < 50:
        return "S"
    return "M" if user_count <= 500 else "L"


class SlidingWindow:
    """Amounts admitted in the last ``window_s`` seconds, against a limit."""

    def __init__(self, name: str, limit: int, window_s: float) -> None:
        self.name = name
        self.limit = limit
        self.window_s = window_s
        self._entries: deque[tuple[float, int]] = deque()
        self._used = 0
        self.peak_usage = 0

    def used(self, now: float) -> int:
        while self._entries and self._entries[0][0] <= now - self.window_s:
            self._used -= self._entries.popleft()[1]
        return self._used

    def wait_for(self, now: float, amount: int) -> float:
        """Seconds until `amount` more fits (0 when it fits now)."""
        excess = self.used(now) + amount - self.limit
        if excess <= 0:
            return 0.0
        freed = 0
        for moment, admitted in self._entries:
            freed += admitted
            if freed >= excess:
                return moment + self.window_s - now
        return self.window_s  # more than the whole limit: never fits; say "a window"

    def add(self, now: float, amount: int) -> None:
        if amount <= 0:
            return
        self._entries.append((now, amount))
        self._used += amount
        self.peak_usage = max(self.peak_usage, self._used)

    def share(self, now: float) -> float:
        return self.used(now) / self.limit

    def reset(self) -> None:
        self._entries.clear()
        self._used = 0
        self.peak_usage = 0


@dataclass(frozen=True)
class Decision:
    admitted: bool
    cost: Cost
    retry_after_s: int = 0
    limit_name: str | None = None
    """The limit that refused the request (the one with the longest wait when several did)."""
    headers: Mapping[str, str] = field(default_factory=dict[str, str])


@dataclass(frozen=True)
class ThrottleSettings:
    request_budget: int | None = None
    budget_window_s: float = 10.0
    graph_limits: bool = False
    tenant_size: str | None = None
    """S, M or L; None: from the tenant's user count."""
    auth_method_limit: int | None = None
    auth_method_window_s: float = 10.0
    auth_method_writes_only: bool = False


class GraphThrottle:
    """Admits or refuses each Graph request ($batch items one by one) against every configured limit."""

    def __init__(self, settings: ThrottleSettings, user_count: int, now: Callable[[], float]) -> None:
        self.settings = settings
        self._now = now
        self.size = settings.tenant_size or tenant_size(user_count)
        self.budget = SlidingWindow("requests", settings.request_budget or 0, settings.budget_window_s)
        self.resource_units = SlidingWindow(
            "resource units per app+tenant", TENANT_SIZE_UNITS[self.size], RESOURCE_UNITS_WINDOW_S
        )
        self.auth_methods = SlidingWindow(
            "authentication-method requests", settings.auth_method_limit or 0, settings.auth_method_window_s
        )
        self._app_writes: dict[str, SlidingWindow] = {}
        self.tenant_writes = SlidingWindow("writes per tenant", TENANT_WRITES_LIMIT, TENANT_WRITES_WINDOW_S)
        self._app_units: dict[str, SlidingWindow] = {}

    @property
    def limits(self) -> dict[str, float]:
        """Every active limit as a rate per second (for benchmarks: which one binds)."""
        rates: dict[str, float] = {}
        for window in self._windows_of(DEFAULT_APP_ID):
            rates[window.name] = window.limit / window.window_s
        return rates

    def admit(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Decision:
        now = self._now()
        app = _header(headers, APP_HEADER) or DEFAULT_APP_ID
        cost = request_cost(method, path, query) if self.settings.graph_limits else Cost(1, 0)
        charges = list(self._charges(app, method, path, cost))
        waits = [(window.wait_for(now, amount), window) for window, amount in charges]
        refused = [(wait, window) for wait, window in waits if wait > 0]
        if refused:
            wait, window = max(refused, key=lambda pair: pair[0])
            # Graph sends whole seconds, and kiota cannot parse fractional ones.
            retry_after = max(1, math.ceil(wait))
            return Decision(False, cost, retry_after, window.name, self._refusal_headers(window, app, cost))
        for window, amount in charges:
            window.add(now, amount)
        return Decision(True, cost, headers=self._answer_headers(app, cost, now))

    def _windows_of(self, app: str) -> list[SlidingWindow]:
        windows: list[SlidingWindow] = []
        if self.settings.request_budget is not None:
            windows.append(self.budget)
        if self.settings.graph_limits:
            windows += [self._units_of(app), self._writes_of(app), self.tenant_writes]
        if self.settings.auth_method_limit is not None:
            windows.append(self.auth_methods)
        return windows

    def _charges(self, app: str, method: str, path: str, cost: Cost) -> Iterable[tuple[SlidingWindow, int]]:
        if self.settings.request_budget is not None:
            yield self.budget, 1
        if self.settings.graph_limits:
            yield self._units_of(app), cost.resource_units
            if cost.writes:
                yield self._writes_of(app), cost.writes
                yield self.tenant_writes, cost.writes
        counted = not self.settings.auth_method_writes_only or method.upper() in WRITE_METHODS
        if self.settings.auth_method_limit is not None and counted and is_authentication_method_path(path):
            yield self.auth_methods, 1

    def _units_of(self, app: str) -> SlidingWindow:
        if app == DEFAULT_APP_ID:
            return self.resource_units
        return self._app_units.setdefault(
            app, SlidingWindow("resource units per app+tenant", TENANT_SIZE_UNITS[self.size], RESOURCE_UNITS_WINDOW_S)
        )

    def _writes_of(self, app: str) -> SlidingWindow:
        return self._app_writes.setdefault(
            app, SlidingWindow("writes per app+tenant", APP_WRITES_LIMIT, APP_WRITES_WINDOW_S)
        )

    def _answer_headers(self, app: str, cost: Cost, now: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        if not self.settings.graph_limits:
            return headers
        headers["x-ms-resource-unit"] = str(cost.resource_units)
        share = max(self._units_of(app).share(now), self._writes_of(app).share(now))
        if share > LIMIT_PERCENTAGE_THRESHOLD:
            headers["x-ms-throttle-limit-percentage"] = f"{share:.2f}"
        return headers

    def _refusal_headers(self, window: SlidingWindow, app: str, cost: Cost) -> dict[str, str]:
        if window is self.tenant_writes:
            scope, limit, information = "Tenant", "Write", "WriteLimitExceeded"
        elif window.name.startswith("writes"):
            scope, limit, information = "Tenant_Application", "Write", "WriteLimitExceeded"
        elif window.name.startswith("resource units"):
            scope, limit, information = "Tenant_Application", "ReadWrite", "ResourceUnitLimitExceeded"
        else:
            # The simple budget and the unpublished authentication-method limit: Graph says nothing more.
            return {}
        headers = {
            "x-ms-throttle-scope": f"{scope}/{limit}/{app}/sandbox-tenant",
            "x-ms-throttle-information": information,
        }
        if self.settings.graph_limits:
            headers["x-ms-resource-unit"] = str(cost.resource_units)
        return headers

    def usage(self) -> dict[str, int]:
        now = self._now()
        return {window.name: window.used(now) for window in self._windows_of(DEFAULT_APP_ID)}

    def reset(self) -> None:
        for window in [self.budget, self.resource_units, self.auth_methods, self.tenant_writes]:
            window.reset()
        self._app_writes.clear()
        self._app_units.clear()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
