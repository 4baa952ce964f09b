"""tapbot end to end with the Microsoft 365 Agents Playground as the Teams client, over its HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.sandbox.playground import playground_config
from bot.sandbox.tenant import load_tenant
from bot.server import create_app
from bot.settings import DEMO_TENANT_FILE, Settings
from cards import verbs
from tests.harness.bot import sandbox_env
from tests.harness.card_schema import assert_valid_card
from tests.http.test_issue_flow import card_text, handed_over_data, pass_value
from tests.support.playground import BotMessage, Playground, require_playground

pytestmark = [pytest.mark.playground, pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")]

TIMEZONE = "Europe/Berlin"


async def serve_tapbot(tmp_path: Path) -> tuple[web.AppRunner, str]:
    app = await create_app(Settings.from_env(sandbox_env(tmp_path)))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages"


@pytest.fixture
async def tapbot_endpoint(tmp_path: Path) -> AsyncIterator[str]:
    require_playground()
    runner, endpoint = await serve_tapbot(tmp_path)
    try:
        yield endpoint
    finally:
        await runner.cleanup()


def is_pass_card(message: BotMessage) -> bool:
    return message.card is not None and "I have handed it over" in str(message.card)


async def test_operator_issues_hands_over_and_uses_a_channel(tapbot_endpoint: str) -> None:
    config = playground_config(load_tenant(DEMO_TENANT_FILE))
    async with Playground(tapbot_endpoint, config, timezone=TIMEZONE) as pg:
        await pg.send_personal("/tap issue MeganB@contoso.onmicrosoft.com 2h one-time")
        message = await pg.wait_for_message(is_pass_card)
        card: dict[str, Any] = message.card or {}
        assert_valid_card(card)
        assert message.conversation_type == "personal"
        text = card_text(card)
        secret = pass_value(card)
        assert "Megan Bowen" in text and "(Europe/Berlin)" in text and "UTC" in text and "One-time use\nYes" in text

        answer = await pg.invoke_action(message, verbs.HANDED_OVER, handed_over_data(card))
        assert secret not in str(answer) and "Hidden after hand-over" in card_text(answer["value"])

        since = len(pg.messages)
        await pg.send_channel("tap issue DiegoS@contoso.onmicrosoft.com")
        private = await pg.wait_for_message(is_pass_card, since=since)
        assert private.conversation_type == "personal"
        ack = await pg.wait_for_message(lambda m: "Sent to you privately" in (m.text or ""), since=since)
        assert ack.conversation_type == "channel"
        channel_texts = [str(m.raw) for m in pg.messages[since:] if m.conversation_type == "channel"]
        assert not any(pass_value(private.card or {}) in raw for raw in channel_texts)

        since = len(pg.messages)
        await pg.send_personal("/tap status MeganB@contoso.onmicrosoft.com")
        status = await pg.wait_for_message(lambda m: m.card is not None and "Pass status" in str(m.card), since=since)
        assert secret not in str(status.card)

        since = len(pg.messages)
        await pg.send_personal("/tap revoke MeganB@contoso.onmicrosoft.com")
        await pg.wait_for_message(lambda m: "Revoked the Temporary Access Pass" in (m.text or ""), since=since)


async def test_non_operator_is_refused(tapbot_endpoint: str) -> None:
    config = playground_config(
        load_tenant(DEMO_TENANT_FILE),
        current_user="DiegoS@contoso.onmicrosoft.com",
        others=(
            "MeganB@contoso.onmicrosoft.com",
            "LeeG@contoso.onmicrosoft.com",
            "AdeleV@contoso.onmicrosoft.com",
            "AlexW@contoso.onmicrosoft.com",
            "IsaiahL@contoso.onmicrosoft.com",
        ),
    )
    async with Playground(tapbot_endpoint, config, timezone=TIMEZONE) as pg:
        await pg.send_personal("/tap issue MeganB@contoso.onmicrosoft.com")
        refusal = await pg.wait_for_message(lambda m: "Only TAP operators" in (m.text or ""))
        assert refusal.conversation_type == "personal"
        assert not any(is_pass_card(m) for m in pg.messages)


async def test_manager_onboarding_approved_in_the_channel(tapbot_endpoint: str) -> None:
    tenant = load_tenant(DEMO_TENANT_FILE)
    config = playground_config(
        tenant,
        current_user="MeganB@contoso.onmicrosoft.com",
        others=(
            "AdeleV@contoso.onmicrosoft.com",
            "AlexW@contoso.onmicrosoft.com",
            "LeeG@contoso.onmicrosoft.com",
            "DiegoS@contoso.onmicrosoft.com",
            "IsaiahL@contoso.onmicrosoft.com",
        ),
    )
    adele = next(user for user in config["users"] if user["name"] == "Adele Vance")
    alex = next(user for user in config["users"] if user["name"] == "Alex Wilber")
    async with Playground(tapbot_endpoint, config, timezone=TIMEZONE) as pg:
        # An operator registers the Helpdesk channel (the Playground types as Megan, so Adele's line is mocked).
        await pg.send_custom_activity(
            {
                "type": "message",
                "text": "<at>tapbot</at> tap approvals here",
                "from": {"id": adele["id"], "name": adele["name"], "aadObjectId": adele["aadObjectId"]},
                "entities": [
                    {"type": "mention", "mentioned": {"id": pg.bot_id, "name": "tapbot"}, "text": "<at>tapbot</at>"}
                ],
            },
            conversation_id=pg.channel_id,
        )
        await pg.wait_for_message(lambda m: "now receives approval requests" in (m.text or ""))

        since = len(pg.messages)
        await pg.send_personal("/tap onboard LeeG@contoso.onmicrosoft.com")
        await pg.wait_for_message(lambda m: "waiting for an operator's approval" in (m.text or ""), since=since)
        request = await pg.wait_for_message(
            lambda m: m.card is not None and "Onboarding pass request" in str(m.card), since=since
        )
        assert request.conversation_type == "channel"
        assert_valid_card(request.card or {})
        request_id = next(a["data"]["requestId"] for a in (request.card or {})["actions"] if a["verb"] == verbs.APPROVE)

        answer = await pg.invoke_action(request, verbs.APPROVE, {"requestId": request_id}, from_id=alex["id"])
        assert "Approved by Alex Wilber" in card_text(answer["value"])
        delivered = await pg.wait_for_message(is_pass_card, since=since)
        assert delivered.conversation_type == "personal"
        assert "Temporary Access Pass for Lee Gu" in card_text(delivered.card or {})
        channel_raw = [str(m.raw) for m in pg.messages if m.conversation_type == "channel"]
        assert not any(pass_value(delivered.card or {}) in raw for raw in channel_raw)
