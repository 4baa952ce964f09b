"""The pacer at the bottom of the Graph client: every attempt is admitted, marked with its priority, and read back.

Sits under kiota's middleware (so it sees each attempt) and above the telemetry transport (so each attempt is one
span). For each request it
- takes the lane from the context (bot/domain/pacer.py: interactive unless bulk work said otherwise) and sets
  `x-ms-throttle-priority`: `high` for a technician's command, `low` for bulk work. Graph documents the header under
  the identity-and-access limits: "If the header doesn't exist or is set to any other value, it indicates a normal
  request. We recommend setting priority to `high` only for the requests initiated by the user"; low, normal, high;
  "low priority requests are throttled first ... Using the priority request header doesn't change the limits"
  (https://learn.microsoft.com/graph/throttling-limits, "Other headers");
- waits for admission against every limit dimension it counts toward (graph_costs.request_charges);
- tells the pacer what Graph answered: `Retry-After` and `x-ms-throttle-scope` of a 429, and
  `x-ms-throttle-limit-percentage` ("returned only when the application consumed more than 0.8 of its limit. The
  value ranges from 0.8 to 1.8", same page);
- owns the retry of a 429: Graph refused the request before doing anything, so it is sent again once the pacer
  admits it again (after Retry-After), as long as the lane's patience allows (MAX_THROTTLE_WAIT_S); then the 429
  goes up and becomes `Throttled`. kiota's RetryHandler no longer retries 429s (graph_client.py), so one 429 costs
  exactly one more request, not the SDK's retries plus the pacer's.
"""

from __future__ import annotations

import httpx

from bot.adapters.graph_costs import APP_WRITES, RESOURCE_UNITS, TENANT_WRITES, request_charges
from bot.domain.errors import Throttled
from bot.domain.pacer import Lane, Overdue, Pacer, current_lane

PRIORITY_HEADER = "x-ms-throttle-priority"
PRIORITY = {Lane.INTERACTIVE: "high", Lane.BULK: "low"}
# How long a 429 may keep a request waiting before it goes up as Throttled: a chat turn must answer soon; bulk work
# re-queues a throttled row itself, so it does not hold a row (and its user's lock) for long either.
MAX_THROTTLE_WAIT_S = {Lane.INTERACTIVE: 5.0, Lane.BULK: 30.0}
MAX_PACED_RETRIES = 3
DEFAULT_RETRY_AFTER_S = 5.0
_VERSIONS = ("/v1.0/", "/beta/")


class PacedTransport(httpx.AsyncBaseTransport):
    def __init__(self, pacer: Pacer, inner: httpx.AsyncBaseTransport) -> None:
        self.pacer = pacer
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        which = current_lane()
        request.headers[PRIORITY_HEADER] = PRIORITY[which]
        body = request.content if request.method.upper() == "POST" and _graph_path(request) == "$batch" else None
        charges = request_charges(request.method, _graph_path(request), dict(request.url.params.items()), body)
        waited = 0.0
        attempt = 0
        while True:
            try:
                ticket = await self.pacer.admit(charges, which, max_wait_s=MAX_THROTTLE_WAIT_S[which] - waited)
            except Overdue as overdue:
                # Graph said to wait longer than this lane may (or the limit is that far): nothing is sent.
                raise Throttled(max(overdue.seconds, 0.0)) from None
            try:
                response = await self._inner.handle_async_request(request)
            except BaseException:
                self.pacer.abandoned(ticket)
                raise
            if response.status_code != 429:
                percentage = _float(response.headers.get("x-ms-throttle-limit-percentage"))
                self.pacer.answered(ticket, limit_percentage=percentage)
                return response
            retry_after = _float(response.headers.get("retry-after"))
            retry_after = DEFAULT_RETRY_AFTER_S if retry_after is None else max(0.0, retry_after)
            self.pacer.answered(
                ticket,
                throttled=True,
                retry_after_s=retry_after,
                scope=_scope_dimensions(response.headers.get("x-ms-throttle-scope")),
            )
            attempt += 1
            waited += retry_after
            if attempt > MAX_PACED_RETRIES or waited > MAX_THROTTLE_WAIT_S[which]:
                return response
            await response.aread()
            await response.aclose()

    async def aclose(self) -> None:
        await self._inner.aclose()


def _graph_path(request: httpx.Request) -> str:
    path = request.url.path
    for version in _VERSIONS:
        index = path.find(version)
        if index >= 0:
            return path[index + len(version) :]
    return path.lstrip("/")


def _scope_dimensions(scope: str | None) -> list[str]:
    """`<Scope>/<Limit>/<ApplicationId>/<TenantId>` → the pacer's dimensions it names."""
    if not scope:
        return []
    parts = scope.split("/")
    if len(parts) < 2:
        return []
    where, limit = parts[0].lower(), parts[1].lower()
    if where == "tenant" and limit == "write":
        return [TENANT_WRITES]
    if where == "tenant_application" and limit == "write":
        return [APP_WRITES]
    if where == "tenant_application":
        return [RESOURCE_UNITS]
    return []


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None
