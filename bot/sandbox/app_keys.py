"""Typed keys for what the sandbox keeps on the aiohttp application and on each request."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.sandbox.routing import GraphRouter
from bot.sandbox.state import SandboxState


@dataclass(frozen=True)
class RequestIds:
    request_id: str
    client_request_id: str


SANDBOX_STATE = web.AppKey("sandbox_state", SandboxState)
GRAPH_ROUTER = web.AppKey("graph_router", GraphRouter)
REQUEST_IDS = web.RequestKey("request_ids", RequestIds)
HOSTED_FILES = web.AppKey("hosted_files", dict[str, tuple[str, bytes]])
