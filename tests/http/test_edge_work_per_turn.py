"""What the Teams edge does for one activity (issue 13, the CPU per interactive command): the body is parsed and
validated into the SDK's model once, not again by the SDK; no token service client is made for a turn that does
not call it, and no connector client is built anew for each turn. And what must not change with that: a body the
SDK's own read decodes differently is still its to refuse."""

from __future__ import annotations

import codecs
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from microsoft_agents.activity import Activity, AdaptiveCardInvokeValue
from microsoft_agents.hosting.core.connector.client import ConnectorClient, UserTokenClient

from bot import telemetry
from bot.web.messages import turn_summary
from cards import verbs
from tests.harness.bot import ADELE, MEGAN, RunningBot
from tests.http.test_bulk import last_card
from tests.http.test_issue_flow import cards_in, handed_over_data, sandbox_passes
from tests.http.test_malformed import post_raw


def count_validations(monkeypatch: pytest.MonkeyPatch) -> list[type]:
    """The type of what each Activity.model_validate call was given (a dict: a parse and validation of a body)."""
    given: list[type] = []
    validate = Activity.model_validate.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Activity], obj: Any, *args: Any, **kwargs: Any) -> Activity:
        given.append(type(obj))
        return validate(cls, obj, *args, **kwargs)

    monkeypatch.setattr(Activity, "model_validate", classmethod(counting))
    return given


def count_made(monkeypatch: pytest.MonkeyPatch, kind: type[Any]) -> list[str]:
    made: list[str] = []
    init = kind.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(type(self).__name__)
        init(self, *args, **kwargs)

    monkeypatch.setattr(kind, "__init__", counting)
    return made


async def test_an_issue_validates_its_activity_once_and_makes_no_client_anew(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn}")  # warm: the first turn reads more than later ones
    validations = count_validations(monkeypatch)
    token_clients = count_made(monkeypatch, UserTokenClient)
    connector_clients = count_made(monkeypatch, ConnectorClient)
    response = await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")
    assert response.status == 202
    response = await bot.say(ADELE, f"/tap issue {MEGAN.upn}")
    assert response.status == 202
    assert len(await sandbox_passes(bot)) == 1  # revoked, and issued again
    assert validations.count(dict) == 2, validations  # one per turn: the SDK took the model /api/messages made
    assert token_clients == []
    assert connector_clients == []  # the first turn's, kept for the connector's address and token


async def test_a_pressed_button_is_routed_by_its_verb_without_a_validation_per_verb(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One route takes every verb: a route per verb validated the invoke's value once per verb route until one
    matched. Now the route's selector and the SDK's handler validate it, once each."""
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    data = handed_over_data(last_card(bot))
    given: list[object] = []
    validate = AdaptiveCardInvokeValue.model_validate.__func__  # type: ignore[attr-defined]

    def counting(cls: type[AdaptiveCardInvokeValue], obj: Any, *args: Any, **kwargs: Any) -> AdaptiveCardInvokeValue:
        given.append(obj)
        return validate(cls, obj, *args, **kwargs)

    monkeypatch.setattr(AdaptiveCardInvokeValue, "model_validate", classmethod(counting))
    answer = await bot.press(ADELE, verbs.HANDED_OVER, data)
    assert answer["type"] == "application/vnd.microsoft.card.adaptive"  # the card, its pass hidden
    assert len(given) == 2, len(given)
    stored = await bot.components.store.pass_card(data["cardId"])
    assert stored is not None and stored.redacted_at is not None


async def test_a_body_the_sdk_reads_otherwise_is_still_refused_by_it(bot: RunningBot) -> None:
    """/api/messages parses the bytes as json.loads does (a UTF-8 byte order mark skipped); the SDK reads the text
    aiohttp decodes (the mark kept, which JSON refuses): such a body was refused by the SDK's read, and still is."""
    activity = bot.activity(ADELE, f"/tap issue {MEGAN.upn}")
    status, document = await post_raw(bot, codecs.BOM_UTF8 + json.dumps(activity).encode())
    assert status == 400 and document is not None and isinstance(document.get("error"), str)
    # UTF-16 (which json.loads finds by itself) declared as such is read alike by both: taken.
    body = json.dumps(activity).encode("utf-16-le")
    status, _ = await post_raw(bot, body, {"Content-Type": "application/json; charset=utf-16-le"})
    assert status == 202
    assert len(cards_in(bot.connector.sent)) == 1 and len(await sandbox_passes(bot)) == 1


async def test_with_telemetry_off_the_turns_middleware_hands_back_the_handlers_own_awaitable() -> None:
    """No layer of its own that every await of every turn would resume."""
    answer = web.Response(status=202)

    async def handler(_request: web.Request) -> web.StreamResponse:
        return answer

    request = make_mocked_request("POST", "/api/messages")
    awaited = telemetry.turns(request, handler)
    assert awaited.__qualname__ == handler.__qualname__  # type: ignore[attr-defined]  # the handler's coroutine
    assert await awaited is answer


def test_the_console_summary_replaces_unprintable_characters_whether_or_not_there_are_any() -> None:
    """Printable names and commands (nearly all) are taken as they are, without a look at each character."""
    body: dict[str, Any] = {"type": "message", "from": {"name": "Adele Vance"}, "text": "/tap issue megan@x.com 2h"}
    assert turn_summary(body) == "Adele Vance in personal chat: tap issue …"
    body["from"] = {"name": "Adele\x1b[31mVance\u2028"}
    body["text"] = "/tap\x07issue"
    assert turn_summary(body) == "Adele [31mVance in personal chat: tap issue"


async def test_replies_held_for_the_http_answer_are_refused_however_the_field_is_spelled(bot: RunningBot) -> None:
    """The SDK's model takes its field names as well as Teams' (`delivery_mode` as `deliveryMode`)."""
    for field in ("deliveryMode", "delivery_mode"):
        activity = bot.activity(ADELE, f"/tap issue {MEGAN.upn}", **{field: "expectReplies"})
        status, document = await post_raw(bot, json.dumps(activity).encode())
        assert status == 400 and document is not None and isinstance(document.get("error"), str), field
    assert bot.connector.sent == [] and await sandbox_passes(bot) == []
    activity = bot.activity(ADELE, f"/tap issue {MEGAN.upn}")
    status, _ = await post_raw(bot, json.dumps(activity).encode(), {"Content-Type": "application/json; charset=UTF-8"})
    assert status == 202 and len(await sandbox_passes(bot)) == 1  # Teams' own header: UTF-8 declared


async def test_only_the_normal_delivery_mode_is_taken(bot: RunningBot) -> None:
    """Deny by default: Teams sends no deliveryMode (or `normal`); any other keeps the replies from the connector."""
    for mode in ("stream", "notification", "ephemeral", "EXPECTREPLIES"):
        activity = bot.activity(ADELE, f"/tap issue {MEGAN.upn}", deliveryMode=mode)
        status, _ = await post_raw(bot, json.dumps(activity).encode())
        assert status == 400, mode
    assert bot.connector.sent == [] and await sandbox_passes(bot) == []
    activity = bot.activity(ADELE, f"/tap issue {MEGAN.upn}", deliveryMode="normal")
    status, _ = await post_raw(bot, json.dumps(activity).encode())
    assert status == 202 and len(await sandbox_passes(bot)) == 1
