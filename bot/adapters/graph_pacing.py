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

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

import httpx

from bot.adapters.graph_costs import APP_WRITES, RESOURCE_UNITS, TENANT_WRITES, batch_item_charges, request_charges
from bot.domain.errors import Throttled
from bot.domain.pacer import ItemAnswer, Lane, Overdue, Pacer, current_lane

PRIORITY_HEADER = "x-ms-throttle-priority"
PRIORITY = {Lane.INTERACTIVE: "high", Lane.BULK: "low"}
# How long a 429 may keep a request waiting before it goes up as Throttled: a chat turn must answer soon; bulk work
# re-queues a throttled row itself, so it does not hold a row (and its user's lock) for long either.
MAX_THROTTLE_WAIT_S = {Lane.INTERACTIVE: 5.0, Lane.BULK: 30.0}
MAX_PACED_RETRIES = 3
DEFAULT_RETRY_AFTER_S = 5.0
_VERSIONS = ("/v1.0/", "/beta/")
_ITEM_429 = re.compile(rb'"status"\s*:\s*429\b')
_LIMIT_PERCENTAGE = "x-ms-throttle-limit-percentage"
_ITEM_PERCENTAGE = re.compile(rb"(?i)x-ms-throttle-limit-percentage")
# The `$batch` body being sent from this context and its items' charges, as send_batch (graph_batch.py) worked them
# out from the items it rendered: the transport takes them for that very body instead of parsing it again.
ItemCharges = list[tuple[str, dict[str, int]]]
_HANDED: ContextVar[tuple[bytes, ItemCharges] | None] = ContextVar("batch_charges", default=None)


@contextmanager
def batch_charges_handed(body: bytes, items: ItemCharges) -> Iterator[None]:
    """While sending `body` (a `$batch`): each item's id and graph_costs.item_charges, in the body's order, which is
    what graph_costs.batch_item_charges(body) would answer. Another body (a `$batch` built elsewhere, a body a
    middleware changed) is still parsed."""
    token = _HANDED.set((body, items))
    try:
        yield
    finally:
        _HANDED.reset(token)


class PacedTransport(httpx.AsyncBaseTransport):
    def __init__(self, pacer: Pacer, inner: httpx.AsyncBaseTransport) -> None:
        self.pacer = pacer
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        which = current_lane()
        request.headers[PRIORITY_HEADER] = PRIORITY[which]
        path = _graph_path(request)
        items: ItemCharges | None = None
        if path == "$batch" and request.method.upper() == "POST":
            content = request.content
            handed = _HANDED.get()
            items = handed[1] if handed is not None and handed[0] == content else batch_item_charges(content)
        if items:
            charges: dict[str, int] = {}
            for _, item_charges in items:
                for name, amount in item_charges.items():
                    charges[name] = charges.get(name, 0) + amount
        else:
            charges = request_charges(request.method, path, dict(request.url.params.items()))
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
                percentage = _float(response.headers.get(_LIMIT_PERCENTAGE))
                if not items or not 200 <= response.status_code < 300:
                    self.pacer.answered(ticket, limit_percentage=percentage)
                    return response
                try:
                    response, refusals, item_percentage = await _item_answers(request, response)
                except BaseException:
                    self.pacer.answered(ticket, limit_percentage=percentage)  # Graph had the batch: it counts
                    raise
                answers = [_item_answer(item_charges, refusals.get(item_id)) for item_id, item_charges in items]
                if item_percentage is not None:
                    percentage = max(percentage or 0.0, item_percentage)
                self.pacer.answered_batch(ticket, answers, limit_percentage=percentage)
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


async def _item_answers(
    request: httpx.Request, response: httpx.Response
) -> tuple[httpx.Response, dict[str, httpx.Headers], float | None]:
    """The headers of each `$batch` item Graph answered 429, by item id, the highest limit percentage an item's
    answer reported, and the response to hand on (read here, its body kept for the SDK). Graph evaluates each item
    against its limits on its own and answers a refused item 429, with its own Retry-After, inside a batch answered
    200 ("Combine multiple HTTP requests using JSON batching", https://learn.microsoft.com/graph/json-batching);
    an item's answer carries its own throttling headers (the sandbox does the same). Only a body naming a 429 or
    the limit-percentage header is parsed."""
    raw = b"".join([part async for part in response.aiter_raw()])
    await response.aclose()
    kept = httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=httpx.ByteStream(raw),
        request=request,
        extensions=response.extensions,
    )
    content = kept.read()  # decoded as the SDK will read it (gzip), from the bytes kept
    if _ITEM_429.search(content) is None and _ITEM_PERCENTAGE.search(content) is None:
        return kept, {}, None
    try:
        answer = json.loads(content)
    except ValueError:
        return kept, {}, None
    responses = answer.get("responses") if isinstance(answer, dict) else None
    refusals: dict[str, httpx.Headers] = {}
    percentage: float | None = None
    for entry in cast(list[Any], responses) if isinstance(responses, list) else []:
        if not isinstance(entry, dict):
            continue
        fields = cast(dict[str, Any], entry)
        raw_headers = fields.get("headers")
        headers = httpx.Headers(
            {str(name): str(value) for name, value in cast(dict[str, Any], raw_headers).items()}
            if isinstance(raw_headers, dict)
            else {}
        )
        if fields.get("status") == 429:
            refusals[str(fields.get("id"))] = headers
            continue
        reported = _float(headers.get(_LIMIT_PERCENTAGE))
        if reported is not None:
            percentage = reported if percentage is None else max(percentage, reported)
    return kept, refusals, percentage


def _item_answer(charges: dict[str, int], refusal: httpx.Headers | None) -> ItemAnswer:
    if refusal is None:
        return ItemAnswer(charges)
    retry_after = _float(refusal.get("retry-after"))
    return ItemAnswer(
        charges,
        throttled=True,
        retry_after_s=DEFAULT_RETRY_AFTER_S if retry_after is None else max(0.0, retry_after),
        scope=tuple(_scope_dimensions(refusal.get("x-ms-throttle-scope"))),
    )


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
