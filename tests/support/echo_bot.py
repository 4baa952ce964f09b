"""A throwaway Microsoft 365 Agents SDK (1.9) bot that only exists to prove the Playground harness.

It is anonymous (no app registration), listens on 127.0.0.1 on a free port and:

* echoes every message as ``echo: <text>`` (the bot mention is already stripped by the SDK),
* ``card``   -> sends an Adaptive Card with an ``Action.Execute`` (verb ``approve``); the invoke is answered
  with a replacement card (``Approved by <name> (<aadObjectId>): <data>``),
* ``dm me``  -> creates a new 1:1 conversation with the sender (``create_conversation``) and posts
  ``proactive hello`` there; ``dm <user id>`` does the same for another mock user,
* ``edit``   -> sends ``original text`` and then replaces it (``update_activity``) with ``edited text``,
* ``who``    -> answers with the conversation type, tenant, aadObjectId and timezone it received.

Every raw activity body the bot receives is kept in :attr:`EchoBot.received` (a list of dicts), and the
outcome of each proactive call in :attr:`EchoBot.events`, so the tests can assert on exact shapes.

Never use this as a template for the real bot: it deliberately forces anonymous outbound calls
(``bot.teams.agent.SandboxClientFactory``), which is only acceptable on loopback with no app id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import warnings
from types import TracebackType
from typing import Any

from aiohttp import web
from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    Attachment,
    ChannelAccount,
    ContentTypes,
    ConversationParameters,
)
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter, jwt_authorization_middleware, start_agent_process
from microsoft_agents.hosting.core import (
    AgentApplication,
    AgentAuthConfiguration,
    ApplicationOptions,
    MemoryStorage,
    TurnContext,
    TurnState,
)

from bot.teams.agent import SandboxClientFactory

log = logging.getLogger(__name__)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
BOT_FRAMEWORK_AUDIENCE = "https://api.botframework.com"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def approval_card(title: str) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": title, "wrap": True}],
        "actions": [{"type": "Action.Execute", "title": "Approve", "verb": "approve", "data": {"request": "r-1"}}],
    }


def result_card(text: str) -> dict[str, Any]:
    return {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": text, "wrap": True}]}


def _tenant_id(activity: Activity) -> str | None:
    data = activity.channel_data
    if isinstance(data, dict):
        tenant = data.get("tenant")
        if isinstance(tenant, dict) and isinstance(tenant.get("id"), str):
            return tenant["id"]
    tenant_obj = getattr(data, "tenant", None)
    tenant_id = getattr(tenant_obj, "id", None)
    if isinstance(tenant_id, str):
        return tenant_id
    return activity.conversation.tenant_id if activity.conversation else None


class EchoBot:
    """``async with EchoBot() as bot:`` serves ``bot.endpoint`` (``http://127.0.0.1:<port>/api/messages``)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.received: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None

        auth = AgentAuthConfiguration(anonymous_allowed=True)
        self._auth_config = auth
        connections = MsalConnectionManager(connections_configurations={"SERVICE_CONNECTION": auth})
        self.adapter = CloudAdapter(channel_service_client_factory=SandboxClientFactory(connections))
        self.app: AgentApplication[TurnState] = AgentApplication[TurnState](
            ApplicationOptions(storage=MemoryStorage(), start_typing_timer=False),
            connection_manager=connections,
        )
        self._register_routes()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}/api/messages"

    # ---------------------------------------------------------------- routes

    def _register_routes(self) -> None:
        app = self.app

        @app.error
        async def on_error(ctx: TurnContext, err: Exception) -> None:
            log.exception("echo bot turn failed", exc_info=err)
            self.events.append({"error": repr(err)})
            await ctx.send_activity("sorry, something went wrong")

        @app.adaptive_card.action_execute("approve")
        async def on_approve(ctx: TurnContext, state: TurnState, data: object) -> AdaptiveCardInvokeResponse:
            who = ctx.activity.from_property
            name = who.name if who else "?"
            aad = who.aad_object_id if who else "?"
            # factory.adaptive_card() is annotated as taking a str, but the value must be the card dict.
            return AdaptiveCardInvokeResponse(
                status_code=200,
                type=ContentTypes.adaptive_card,
                value=result_card(f"Approved by {name} ({aad}): {json.dumps(data, sort_keys=True)}"),
            )

        @app.message(None)
        async def on_message(ctx: TurnContext, state: TurnState) -> None:
            text = (ctx.activity.text or "").replace("&nbsp;", " ").strip()
            if text == "card":
                await ctx.send_activity(
                    Activity(
                        type=ActivityTypes.message,
                        attachments=[Attachment(content_type=ADAPTIVE_CARD, content=approval_card("Approve?"))],
                    )
                )
            elif text == "edit":
                sent = await ctx.send_activity("original text")
                self.events.append({"edit_sent_id": sent.id if sent else None})
                if sent and sent.id:
                    update = Activity(type=ActivityTypes.message, id=sent.id, text="edited text")
                    result = await ctx.update_activity(update)
                    self.events.append({"edit_result": getattr(result, "id", None)})
            elif text == "dm me" or text.startswith("dm "):
                target = ctx.activity.from_property.id if text == "dm me" else text[3:].strip()
                await self._send_direct_message(ctx, target)
            elif text == "who":
                conv = ctx.activity.conversation
                who = ctx.activity.from_property
                zone = next(
                    (getattr(e, "timezone", None) for e in ctx.activity.entities or [] if e.type == "clientInfo"),
                    None,
                )
                await ctx.send_activity(
                    f"type={conv.conversation_type if conv else None} tenant={_tenant_id(ctx.activity)} "
                    f"aad={who.aad_object_id if who else None} tz={zone}"
                )
            else:
                await ctx.send_activity(f"echo: {text}")

    async def _send_direct_message(self, ctx: TurnContext, user_id: str) -> None:
        activity = ctx.activity
        tenant_id = _tenant_id(activity)
        if activity.recipient is None or not tenant_id:
            raise ValueError("the incoming activity has no recipient or tenant")
        params = ConversationParameters(
            is_group=False,
            bot=activity.recipient,
            members=[ChannelAccount(id=user_id)],
            tenant_id=tenant_id,
            channel_data={"tenant": {"id": tenant_id}},
        )
        created: dict[str, Any] = {}

        async def in_new_conversation(new_ctx: TurnContext) -> None:
            conversation = new_ctx.activity.conversation
            created["conversation_id"] = conversation.id if conversation else None
            sent = await new_ctx.send_activity("proactive hello")
            created["activity_id"] = sent.id if sent else None

        await self.adapter.create_conversation(
            "",
            str(activity.channel_id),
            activity.service_url or "",
            BOT_FRAMEWORK_AUDIENCE,
            params,
            in_new_conversation,
        )
        self.events.append({"dm": user_id, **created})
        await ctx.send_activity(f"dm sent to {user_id} in {created.get('conversation_id')}")

    # ---------------------------------------------------------------- server

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        try:
            self.received.append(await request.json())
        except ValueError:
            self.received.append({"_unparsable": await request.text()})
        response = await start_agent_process(request, self.app, self.adapter)
        return response if response is not None else web.Response(status=200)

    async def start(self) -> None:
        web_app = web.Application(middlewares=[jwt_authorization_middleware])
        with warnings.catch_warnings():
            # jwt_authorization_middleware reads this plain-string key, so it cannot be a web.AppKey.
            warnings.simplefilter("ignore", web.NotAppKeyWarning)
            web_app["agent_configuration"] = self._auth_config
        web_app.router.add_post("/api/messages", self._messages)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> EchoBot:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def _main() -> None:  # pragma: no cover - manual use: python -m tests.support.echo_bot
    logging.basicConfig(level=logging.INFO)
    async with EchoBot() as bot:
        print(bot.endpoint, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_main())
