"""The real tapbot app on a real socket, driven over HTTP the way Teams drives it."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from bot.server import COMPONENTS, Components, create_app
from bot.settings import BOT_CONNECTION_PREFIX, DEMO_TENANT_FILE, Settings
from tests.harness.card_schema import assert_valid_card
from tests.harness.connector import RecordingConnector

TENANT_ID = "e0eeef39-44a5-4e21-9fc8-bc6e2ac99ce8"
BOT_ID = "28:tapbot-sandbox"
BOT_APP_ID_SETTING = BOT_CONNECTION_PREFIX + "CLIENTID"


@dataclass(frozen=True)
class Person:
    object_id: str
    upn: str
    name: str

    @property
    def channel_id(self) -> str:
        return f"29:{self.object_id}"


ADELE = Person("884f0a7d-eeec-4d58-b136-0634982d6c8f", "AdeleV@contoso.onmicrosoft.com", "Adele Vance")
ALEX = Person("6601a486-a875-4902-9a3b-12efd11431b5", "AlexW@contoso.onmicrosoft.com", "Alex Wilber")
MEGAN = Person("6832c635-8862-4324-872b-4990d834254a", "MeganB@contoso.onmicrosoft.com", "Megan Bowen")
DIEGO = Person("a16c0c60-bbb6-433c-b4da-464eebbc0e8b", "DiegoS@contoso.onmicrosoft.com", "Diego Siciliani")
ISAIAH = Person("23af9669-041d-4e33-95bc-75a043dc44c2", "IsaiahL@contoso.onmicrosoft.com", "Isaiah Langer")
BREAKGLASS = Person("1c52bf3f-00c5-4e70-8e02-8f6e59f2438f", "breakglass01@contoso.onmicrosoft.com", "Emergency")
NESTOR = Person("0074c33f-115c-42b7-a836-41b82ced43ea", "NestorW@contoso.onmicrosoft.com", "Nestor Wilke")
JANE = Person("63fed6c2-5ce6-4cc1-a29b-4026e48d2604", "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com", "Jane")
PRADEEP = Person("ece8410d-fc08-4905-b6fd-ce58a17e5519", "PradeepG@contoso.onmicrosoft.com", "Pradeep Gupta")
JONI = Person("8b22bdb0-c56c-4ef5-a5f1-662179b90168", "JoniS@contoso.onmicrosoft.com", "Joni Sherman")
LEE = Person("9d3562ea-aefc-4b97-9721-5e506d279f43", "LeeG@contoso.onmicrosoft.com", "Lee Gu")


class ShiftableClock:
    """Real time plus an offset a test can move forward (to reach an expiry without waiting)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def sandbox_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        "TAPBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}",
        "TAPBOT_SANDBOX_TENANT": str(DEMO_TENANT_FILE),
        "TAPBOT_DEFAULT_TIMEZONE": "Europe/Berlin",
        "TAPBOT_HOUSEKEEPING_SECONDS": "3600",
        # Recovery passes need a verification of the person by default (issue 12); tests about anything else issue
        # as before it existed. tests/http/test_verification.py turns it on.
        "TAPBOT_VERIFICATION": "off",
    }
    env.update(overrides)
    return env


@dataclass
class RunningBot:
    app: web.Application
    runner: web.AppRunner
    url: str
    connector: RecordingConnector
    clock: ShiftableClock
    session: aiohttp.ClientSession
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def components(self) -> Components:
        return self.app[COMPONENTS]

    @property
    def sandbox_control(self) -> str:
        sandbox = self.components.sandbox
        assert sandbox is not None
        return sandbox.control_url

    async def post(self, activity: dict[str, Any], headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        async with self.session.post(f"{self.url}/api/messages", json=activity, headers=headers or {}) as response:
            await response.read()
            return response

    def activity(
        self,
        person: Person,
        text: str | None = None,
        *,
        kind: str = "personal",
        tenant: str = TENANT_ID,
        timezone: str = "Europe/Berlin",
        **extra: Any,
    ) -> dict[str, Any]:
        return teams_activity(
            f"incoming-{next(self._ids)}",
            self.connector.url,
            person,
            text,
            kind=kind,
            tenant=tenant,
            timezone=timezone,
            **extra,
        )

    async def say(self, person: Person, text: str, **options: Any) -> aiohttp.ClientResponse:
        return await self.post(self.activity(person, text, **options))

    async def press(
        self, person: Person, verb: str, data: dict[str, Any], *, reply_to: str | None = None, **options: Any
    ) -> dict[str, Any]:
        """Sends an Action.Execute invoke (on the message `reply_to`, as Teams does) and returns the answer body."""
        activity = card_action(self.activity(person, **options), verb, data)
        if reply_to is not None:
            activity["replyToId"] = reply_to
        async with self.session.post(f"{self.url}/api/messages", json=activity) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
        if body.get("type") == "application/vnd.microsoft.card.adaptive":
            assert_valid_card(body["value"])
        return body

    def personal_chat_of(self, person: Person) -> str:
        return f"a:personal-{person.object_id}"


def teams_activity(
    activity_id: str,
    service_url: str,
    person: Person,
    text: str | None = None,
    *,
    kind: str = "personal",
    tenant: str = TENANT_ID,
    timezone: str = "Europe/Berlin",
    **extra: Any,
) -> dict[str, Any]:
    """A message activity from `person` as Teams sends it: in their 1:1 chat with the bot, a channel or a group chat."""
    conversation: dict[str, Any] = {"id": f"a:personal-{person.object_id}", "conversationType": "personal"}
    if kind == "channel":
        conversation = {
            "id": "19:general@thread.tacv2;messageid=1",
            "conversationType": "channel",
            "isGroup": True,
            "tenantId": tenant,
        }
    elif kind == "groupChat":
        conversation = {"id": "19:group@thread.v2", "conversationType": "groupChat", "isGroup": True}
    activity: dict[str, Any] = {
        "type": "message",
        "id": activity_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": person.channel_id, "name": person.name, "aadObjectId": person.object_id},
        "recipient": {"id": BOT_ID, "name": "tapbot"},
        "conversation": conversation,
        "channelData": {"tenant": {"id": tenant}},
        "entities": [{"type": "clientInfo", "locale": "en-US", "timezone": timezone}],
    }
    if text is not None:
        activity["text"] = text
    activity.update(extra)
    return activity


def card_action(activity: dict[str, Any], verb: str, data: dict[str, Any]) -> dict[str, Any]:
    """The activity turned into the Action.Execute invoke Teams sends when a card's button is pressed."""
    activity.update(
        {
            "type": "invoke",
            "name": "adaptiveCard/action",
            "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}},
        }
    )
    return activity


async def start_bot(env: dict[str, str], *, clock: ShiftableClock | None = None) -> RunningBot:
    clock = clock or ShiftableClock()
    connector = await RecordingConnector().start()
    if env.get(BOT_APP_ID_SETTING) and "TAPBOT_CONNECTOR_HOSTS" not in env:
        # With a bot registration only listed loopback connectors are trusted: this test's recording one.
        env = {**env, "TAPBOT_CONNECTOR_HOSTS": f"127.0.0.1:{URL(connector.url).port}"}
    settings = Settings.from_env(env)
    app = await create_app(settings, clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    session = aiohttp.ClientSession()
    return RunningBot(app, runner, f"http://127.0.0.1:{port}", connector, clock, session)


async def stop_bot(bot: RunningBot) -> None:
    await bot.session.close()
    await bot.runner.cleanup()
    await bot.connector.stop()
    assert bot.connector.invalid_cards == [], bot.connector.invalid_cards


def new_id() -> str:
    return str(uuid.uuid4())
