"""A GraphGateway on a sandbox of its own, recording every HTTP request its client sends (the adapter tests that
count round trips)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.sandbox.faults import parse_fault_rule
from bot.sandbox.server import RunningSandbox, start_sandbox
from bot.sandbox.tenant import Tenant
from bot.settings import GraphMode, GraphSettings


@dataclass
class Graph:
    gateway: GraphGateway
    sandbox: RunningSandbox
    sent: list[str]  # "METHOD path" of every HTTP request the bot's client sent

    def fault(self, path_regex: str, status: int, **more: Any) -> None:
        self.sandbox.state.faults.add(parse_fault_rule({"path_regex": path_regex, "status": status, **more}))


@asynccontextmanager
async def recording_graph(tenant: Tenant) -> AsyncIterator[Graph]:
    sandbox = await start_sandbox(tenant)
    client, http = build_graph_client(GraphSettings(GraphMode.SANDBOX, timeout_seconds=5), sandbox.base_url)
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    http.event_hooks["request"].append(record)
    try:
        yield Graph(GraphGateway(client, SystemClock()), sandbox, sent)
    finally:
        await http.aclose()
        await sandbox.close()
