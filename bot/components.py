"""What the running app holds (built by the app factory in bot/server.py), under one typed key of the app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from aiohttp import web

from bot.adapters.graph import GraphGateway
from bot.adapters.store import SqlStore
from bot.adapters.user_tokens import TokenServiceTokens
from bot.domain.approval_desk import ApprovalDesk
from bot.domain.decisions import DecisionService
from bot.domain.pacer import Pacer
from bot.domain.service import TapService
from bot.health import ReadinessCache
from bot.settings import Settings
from bot.teams.agent import TeamsRuntime
from bot.teams.bulk_flow import BulkFlow
from bot.teams.commands import CommandRunner
from bot.teams.housekeeping import Housekeeping

if TYPE_CHECKING:
    from bot.sandbox.server import RunningSandbox
    from bot.verified_id_setup import VerifiedIdParts


@dataclass(kw_only=True)
class Components:
    """Everything the running app holds, so the endpoints, the tests and shutdown can reach it."""

    settings: Settings
    store: SqlStore
    graph: GraphGateway
    graph_base_url: str
    http_client: httpx.AsyncClient
    sandbox: RunningSandbox | None
    runtime: TeamsRuntime
    service: TapService
    desk: ApprovalDesk
    decisions: DecisionService
    bulk: BulkFlow
    commands: CommandRunner
    housekeeping: Housekeeping
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    readiness: ReadinessCache = field(default_factory=ReadinessCache)
    pacer: Pacer | None = None
    verified_id: VerifiedIdParts | None = None  # Verified ID's callback endpoint, when it is a verification method
    # TAPBOT_GRAPH_WRITES=delegated: the people's own Graph tokens (in memory) and their channel accounts; None when
    # the bot writes with its own permission.
    delegated_tokens: TokenServiceTokens | None = None


COMPONENTS = web.AppKey("components", Components)
