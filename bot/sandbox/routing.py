"""Transport-neutral Graph requests, the route table, and the pipeline every request goes through.

The Graph surface has its own small router instead of aiohttp's so that $batch items run through exactly the
same handlers, budget and faults as top-level requests, without faking HTTP requests.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from bot.sandbox.errors import (
    GraphError,
    malformed_json_body,
    method_not_allowed,
    too_many_requests,
    unknown_segment,
)
from bot.sandbox.state import SandboxState
from bot.sandbox.throttle import is_authentication_method_path

logger = logging.getLogger(__name__)


class _MalformedBody:
    """Marks a request body that was present but not JSON."""


MALFORMED_BODY = _MalformedBody()


@dataclass(frozen=True)
class GraphRequest:
    method: str
    path: str
    """Decoded and relative to /v1.0, e.g. ``/users/adele@contoso.onmicrosoft.com``."""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: object = None
    """Decoded JSON, None when there was no body, MALFORMED_BODY when it was not JSON."""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    base_url: str = ""
    """The Graph root the request came to (``http://127.0.0.1:PORT/v1.0``), for absolute ``@odata.nextLink``s."""

    def json_object(self) -> dict[str, object]:
        """The body as a JSON object; an absent body counts as ``{}``."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise malformed_json_body()
        return cast(dict[str, object], self.body)


@dataclass
class GraphResponse:
    status: int
    body: object = None
    """JSON to send, or None for an empty body (204)."""
    headers: dict[str, str] = field(default_factory=dict)


def ok(body: object, status: int = 200) -> GraphResponse:
    return GraphResponse(status, body)


def no_content() -> GraphResponse:
    return GraphResponse(204)


def error_response(request: GraphRequest, error: GraphError, now: datetime | None = None) -> GraphResponse:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    envelope = {
        "error": {
            "code": error.code,
            "message": error.message,
            "innerError": {
                "date": moment.strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request.request_id,
                "client-request-id": request.client_request_id,
            },
        }
    }
    return GraphResponse(error.status, envelope, dict(error.headers))


GraphHandler = Callable[[SandboxState, GraphRequest, Mapping[str, str]], GraphResponse]


@dataclass(frozen=True)
class _Route:
    method: str
    segments: tuple[str, ...]
    pattern: re.Pattern[str]
    handler: GraphHandler

    def accepts_prefix(self, path_segments: list[str]) -> bool:
        if len(path_segments) > len(self.segments):
            return False
        return all(
            template.startswith("{") or template.lower() == segment.lower()
            for template, segment in zip(self.segments, path_segments, strict=False)
        )


class GraphRouter:
    """Routes like ``/users/{user}/manager``; literal segments match case-insensitively, as in Graph."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def add(self, method: str, template: str, handler: GraphHandler) -> None:
        segments = tuple(template.strip("/").split("/"))
        parts = [
            f"(?P<{segment[1:-1]}>[^/]+)" if segment.startswith("{") else re.escape(segment) for segment in segments
        ]
        pattern = re.compile("/" + "/".join(parts) + "/?", re.IGNORECASE)
        self._routes.append(_Route(method.upper(), segments, pattern, handler))

    def resolve(self, method: str, path: str) -> tuple[GraphHandler, dict[str, str]]:
        path_matched = False
        for route in self._routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method:
                return route.handler, found.groupdict()
            path_matched = True
        if path_matched:
            raise method_not_allowed()
        raise unknown_segment(self._first_unknown_segment(path))

    def _first_unknown_segment(self, path: str) -> str:
        segments = [segment for segment in path.split("/") if segment]
        for length in range(1, len(segments) + 1):
            if not any(route.accepts_prefix(segments[:length]) for route in self._routes):
                return segments[length - 1]
        return segments[-1] if segments else ""


async def serve_graph_request(state: SandboxState, router: GraphRouter, request: GraphRequest) -> GraphResponse:
    """Budget, then injected faults, then the handler; always answers, never raises."""
    counters = state.counters
    counters.requests_received += 1
    priority = next((v for k, v in request.headers.items() if k.lower() == "x-ms-throttle-priority"), "").lower()
    counters.by_priority[priority] = counters.by_priority.get(priority, 0) + 1
    decision = state.throttle.admit(request.method, request.path, request.query, request.headers)
    if not decision.admitted:
        counters.requests_throttled += 1
        name = decision.limit_name or "requests"
        counters.throttled_by[name] = counters.throttled_by.get(name, 0) + 1
        response = error_response(request, too_many_requests(decision.retry_after_s), state.clock.now())
    else:
        counters.requests_served += 1
        counters.resource_units += decision.cost.resource_units
        counters.writes += decision.cost.writes
        if is_authentication_method_path(request.path):
            counters.authentication_method_requests += 1
        response = await _run_with_faults(state, router, request)
    response.headers.update(decision.headers)
    response.headers["request-id"] = request.request_id
    response.headers["client-request-id"] = request.client_request_id
    # Only method, path and status: bodies may hold pass secrets and never reach the log.
    logger.debug("%s %s -> %s", request.method, request.path, response.status)
    return response


async def _run_with_faults(state: SandboxState, router: GraphRouter, request: GraphRequest) -> GraphResponse:
    fault = state.faults.take(request.method, request.path)
    if fault is None:
        return _run_handler(state, router, request)
    state.counters.faults_injected += 1
    if fault.status is None:
        await asyncio.sleep(fault.delay_s)
        return _run_handler(state, router, request)
    if fault.after_effect:
        _run_handler(state, router, request)  # the effect happens; its answer is lost on purpose
    if fault.delay_s:
        await asyncio.sleep(fault.delay_s)
    return error_response(request, fault.error(), state.clock.now())


def _run_handler(state: SandboxState, router: GraphRouter, request: GraphRequest) -> GraphResponse:
    try:
        if request.body is MALFORMED_BODY:
            raise malformed_json_body()
        handler, params = router.resolve(request.method, request.path)
        return handler(state, request, params)
    except GraphError as error:
        return error_response(request, error, state.clock.now())
    except Exception:
        logger.exception("sandbox handler failed for %s %s", request.method, request.path)
        failure = GraphError(500, "generalException", "The sandbox failed unexpectedly.")
        return error_response(request, failure, state.clock.now())
