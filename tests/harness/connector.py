"""A recording Bot Connector: the Teams side of the bot's outbound REST calls, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from tests.harness.card_schema import assert_valid_card


@dataclass
class Sent:
    """One outbound call the bot made: kind is create, send, reply or update."""

    kind: str
    conversation_id: str
    activity: dict[str, Any]
    activity_id: str | None = None

    @property
    def text(self) -> str:
        return self.activity.get("text") or ""

    @property
    def card(self) -> dict[str, Any] | None:
        for attachment in self.activity.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                return attachment.get("content")
        return None


@dataclass
class RecordingConnector:
    sent: list[Sent] = field(default_factory=list)
    refuse_create_with: int | None = None
    refuse_send_with: int | None = None
    personal_chats: dict[str, str] = field(default_factory=dict)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # Teams id -> the member lookup's answer
    member_lookups: list[tuple[str, str]] = field(default_factory=list)  # (conversation id, member id) asked
    invalid_cards: list[str] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)  # the bot's connections (address, port) that called
    validate_cards: bool = True  # benchmarks switch it off: they measure the bot, not this check
    # Runs before a sent message is answered, while the bot waits for it: what happens "during delivery".
    before_answer: Callable[[Sent], Awaitable[None]] | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    url: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> RecordingConnector:
        app = web.Application(middlewares=[self._peer])
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{cid}/activities", self._send)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._reply)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._update)
        app.router.add_get("/v3/conversations/{cid}/members/{mid}", self._member)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _peer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        if peer is not None:
            self.peers.add((str(peer[0]), int(peer[1])))
        return await handler(request)

    def _record(self, sent: Sent) -> None:
        if sent.card is not None and self.validate_cards:
            try:
                assert_valid_card(sent.card)  # every card the bot sends in any HTTP test meets the schema
            except AssertionError as error:
                self.invalid_cards.append(str(error))
        self.sent.append(sent)
        self.changed.set()

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.refuse_create_with:
            return web.json_response(
                {"error": {"code": "BotNotInConversationRoster", "message": "refused"}}, status=self.refuse_create_with
            )
        member = (body.get("members") or [{}])[0].get("id", "")
        conversation_id = self.personal_chats.setdefault(member, f"a:personal-{len(self.personal_chats) + 1}")
        self._record(Sent("create", conversation_id, body))
        return web.json_response({"id": conversation_id})

    async def _send(self, request: web.Request) -> web.Response:
        if self.refuse_send_with:
            return web.json_response({"error": {"code": "Forbidden"}}, status=self.refuse_send_with)
        activity_id = f"msg-{next(self._ids)}"
        await self._answering(Sent("send", request.match_info["cid"], await request.json(), activity_id))
        return web.json_response({"id": activity_id})

    async def _reply(self, request: web.Request) -> web.Response:
        activity_id = f"msg-{next(self._ids)}"
        await self._answering(Sent("reply", request.match_info["cid"], await request.json(), activity_id))
        return web.json_response({"id": activity_id})

    async def _answering(self, sent: Sent) -> None:
        self._record(sent)
        if self.before_answer is not None:
            await self.before_answer(sent)

    async def _update(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        self._record(Sent("update", request.match_info["cid"], await request.json(), aid))
        return web.json_response({"id": aid})

    async def _member(self, request: web.Request) -> web.Response:
        member_id = request.match_info["mid"]
        self.member_lookups.append((request.match_info["cid"], member_id))
        member = self.members.get(member_id)
        if member is None:
            error = {"code": "MemberNotFoundInConversation", "message": "Member not found in conversation"}
            return web.json_response({"error": error}, status=404)
        return web.json_response(member)

    def add_member(self, object_id: str, name: str, upn: str, tenant_id: str) -> str:
        """A member of every conversation, as Teams' member lookup answers for them; returns their Teams id, which
        (as in Teams) is opaque: nothing in it is the object id."""
        teams_id = f"29:1{object_id.replace('-', '')[::-1]}"
        self.members[teams_id] = {
            "id": teams_id,
            "aadObjectId": object_id,
            "name": name,
            "userPrincipalName": upn,
            "tenantId": tenant_id,
            "userRole": "user",
        }
        return teams_id

    def in_conversation(self, conversation_id: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.conversation_id == conversation_id and sent.kind != "create"]

    def texts(self) -> list[str]:
        return [sent.text for sent in self.sent if sent.text]

    def cards(self) -> list[dict[str, Any]]:
        return [card for sent in self.sent if (card := sent.card) is not None]

    def clear(self) -> None:
        self.sent.clear()
