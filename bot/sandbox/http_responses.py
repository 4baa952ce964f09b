"""Turns sandbox answers into aiohttp responses, in Graph's shape."""

from __future__ import annotations

import json

from aiohttp import web

from bot.sandbox.app_keys import REQUEST_IDS, SANDBOX_STATE
from bot.sandbox.errors import GraphError
from bot.sandbox.routing import GraphRequest, GraphResponse, error_response

# What Graph itself sends; clients must cope with the OData parameters.
GRAPH_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)


def to_http_response(response: GraphResponse) -> web.Response:
    if response.body is None:
        return web.Response(status=response.status, headers=response.headers)
    return web.Response(
        status=response.status,
        body=json.dumps(response.body).encode("utf-8"),
        headers={**response.headers, "Content-Type": GRAPH_CONTENT_TYPE},
    )


def http_error(request: web.Request, error: GraphError) -> web.Response:
    ids = request[REQUEST_IDS]
    graph_request = GraphRequest(
        method=request.method,
        path=request.path,
        request_id=ids.request_id,
        client_request_id=ids.client_request_id,
    )
    now = request.app[SANDBOX_STATE].clock.now()
    return to_http_response(error_response(graph_request, error, now))


def http_json(body: object, status: int = 200) -> web.Response:
    return to_http_response(GraphResponse(status, body))
