"""JSON $batch: up to 20 requests, each through the normal pipeline (and so throttled on its own)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

from multidict import CIMultiDict
from yarl import URL

from bot.sandbox.errors import GraphError, bad_request
from bot.sandbox.routing import (
    GraphRequest,
    GraphResponse,
    GraphRouter,
    error_response,
    ok,
    serve_graph_request,
)
from bot.sandbox.state import SandboxState

BATCH_LIMIT = 20


@dataclass(frozen=True)
class _BatchItem:
    id: str
    request: GraphRequest
    depends_on: tuple[str, ...]


async def serve_batch(state: SandboxState, router: GraphRouter, request: GraphRequest) -> GraphResponse:
    try:
        if request.method != "POST":
            raise GraphError(405, "Request_BadRequest", "$batch accepts only POST.")
        items = [_with_outer_authorization(item, request) for item in _parse_batch(request.json_object())]
    except GraphError as error:
        return error_response(request, error, state.clock.now())

    # Independent items run concurrently, as in Graph; dependsOn makes an item wait for its predecessors.
    tasks: dict[str, asyncio.Task[GraphResponse]] = {}
    for item in items:
        predecessors = [tasks[dependency] for dependency in item.depends_on]
        tasks[item.id] = asyncio.create_task(_serve_item(state, router, item, predecessors))
    answers = await asyncio.gather(*tasks.values())
    return ok({"responses": [_item_json(item.id, answer) for item, answer in zip(items, answers, strict=True)]})


async def _serve_item(
    state: SandboxState,
    router: GraphRouter,
    item: _BatchItem,
    predecessors: Sequence[asyncio.Task[GraphResponse]],
) -> GraphResponse:
    if predecessors:
        earlier = await asyncio.gather(*predecessors)
        if any(not 200 <= answer.status < 300 for answer in earlier):
            failed = GraphError(424, "FailedDependency", "A request this one depends on has failed.")
            response = error_response(item.request, failed, state.clock.now())
            response.headers["request-id"] = item.request.request_id
            response.headers["client-request-id"] = item.request.client_request_id
            return response
    return await serve_graph_request(state, router, item.request)


def _with_outer_authorization(item: _BatchItem, outer: GraphRequest) -> _BatchItem:
    """Graph runs every item with the $batch request's own token; an item's Authorization header is ignored."""
    headers = CIMultiDict(item.request.headers)
    headers.popall("Authorization", None)
    authorization = next((value for name, value in outer.headers.items() if name.lower() == "authorization"), None)
    if authorization is not None:
        headers["Authorization"] = authorization
    return replace(item, request=replace(item.request, headers=headers))


def _item_json(item_id: str, response: GraphResponse) -> dict[str, object]:
    headers = dict(response.headers)
    rendered: dict[str, object] = {"id": item_id, "status": response.status, "headers": headers}
    if response.body is not None:
        headers["Content-Type"] = "application/json"
        rendered["body"] = response.body
    return rendered


def _parse_batch(body: dict[str, object]) -> list[_BatchItem]:
    raw_items = body.get("requests")
    if not isinstance(raw_items, list):
        raise bad_request("A $batch body needs a 'requests' array.")
    entries = cast(list[object], raw_items)
    if len(entries) > BATCH_LIMIT:
        raise bad_request(f"A $batch holds at most {BATCH_LIMIT} requests; got {len(entries)}.")
    items: list[_BatchItem] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        item = _parse_item(entry, position, seen)
        seen.add(item.id)
        items.append(item)
    return items


def _parse_item(entry: object, position: int, earlier_ids: set[str]) -> _BatchItem:
    where = f"requests[{position}]"
    if not isinstance(entry, dict):
        raise bad_request(f"{where} must be a JSON object.")
    fields = cast(dict[str, object], entry)
    item_id, method, url = fields.get("id"), fields.get("method"), fields.get("url")
    if not isinstance(item_id, str) or not item_id:
        raise bad_request(f"{where} needs a string 'id'.")
    if item_id in earlier_ids:
        raise bad_request(f"{where}: id '{item_id}' is used twice.")
    if not isinstance(method, str) or not isinstance(url, str) or not url:
        raise bad_request(f"{where} needs 'method' and 'url'.")
    parsed_url = URL(url)
    if parsed_url.is_absolute():
        raise bad_request(f"{where}: 'url' must be relative to the version, like /users/{{id}}.")
    if "$batch" in parsed_url.path:
        raise bad_request(f"{where}: a $batch cannot contain another $batch.")

    raw_headers = fields.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise bad_request(f"{where}: 'headers' must be a JSON object.")
    headers = CIMultiDict((str(name), str(value)) for name, value in cast(dict[str, object], raw_headers).items())

    raw_depends_on = fields.get("dependsOn") or []
    if not isinstance(raw_depends_on, list):
        raise bad_request(f"{where}: 'dependsOn' must be an array of ids.")
    depends_on = tuple(str(dependency) for dependency in cast(list[object], raw_depends_on))
    for dependency in depends_on:
        if dependency not in earlier_ids:
            raise bad_request(f"{where}: dependsOn '{dependency}' must name a request listed before it.")

    path = parsed_url.path if parsed_url.path.startswith("/") else "/" + parsed_url.path
    request = GraphRequest(
        method=method.upper(),
        path=path,
        query=dict(parsed_url.query.items()),
        headers=headers,
        body=fields.get("body"),
        client_request_id=headers.get("client-request-id") or str(uuid.uuid4()),
    )
    return _BatchItem(item_id, request, depends_on)
