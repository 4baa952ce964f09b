"""The command forms (issue 11 item 3) through the real HTTP endpoint, against the sandbox tenant.

`/tap`, `/tap issue` and `/tap onboard` without a user open a form privately; its people picker is answered through
the `application/search` invoke; its submit runs the typed command's rules, and what is wrong comes back on the same
card next to its field. Every card the bot sends here is checked against the card schema by the recording
connector, and every card a button answers with by `RunningBot.press`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.sandbox.generate import bulk_tenant
from bot.settings import DEMO_TENANT_FILE
from cards import verbs
from tests.harness.bot import ADELE, DIEGO, ISAIAH, LEE, MEGAN, Person, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.card_reading import pass_value
from tests.http.test_issue_flow import card_text, sandbox_passes

SEARCH_RESPONSE = "application/vnd.microsoft.search.searchResponse"
ERROR_RESPONSE = "application/vnd.microsoft.error"
MEGAN_FISCHER = "MeganF@contoso.onmicrosoft.com"
EMPTY_START = {"startDate": "", "startTime": ""}


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path))
    try:
        yield running
    finally:
        await stop_bot(running)


async def started(tmp_path: Path, tenant: dict[str, Any] | None = None, **settings: str) -> RunningBot:
    env = sandbox_env(tmp_path, **settings)
    if tenant is not None:
        path = tmp_path / "tenant.json"
        path.write_text(json.dumps(tenant), encoding="utf-8")
        env["TAPBOT_SANDBOX_TENANT"] = str(path)
    return await start_bot(env)


def inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The card's inputs by id."""
    return {element["id"]: element for element in card["body"] if str(element.get("type", "")).startswith("Input.")}


def error_under(card: dict[str, Any], field: str) -> str | None:
    """The sentence right under the field's input, if the bot put one there."""
    body = card["body"]
    for index, element in enumerate(body):
        if element.get("id") == field and index + 1 < len(body) and body[index + 1].get("id") == f"{field}Error":
            return body[index + 1]["text"]
    return None


def forms_sent(bot: RunningBot) -> list[tuple[str, dict[str, Any]]]:
    """(conversation, card) of every form the bot sent."""
    return [
        (sent.conversation_id, card)
        for sent in bot.connector.sent
        if (card := sent.card) is not None and "person" in inputs(card)
    ]


def pass_cards(bot: RunningBot) -> list[tuple[str, dict[str, Any]]]:
    """(conversation, card) of every pass card the bot sent."""
    return [(sent.conversation_id, card) for sent in bot.connector.sent if (card := sent.card) and _is_pass(card)]


def _is_pass(card: dict[str, Any]) -> bool:
    try:
        pass_value(card)
    except AssertionError:
        return False
    return True


def issue_values(target: Person, **values: str) -> dict[str, str]:
    return {"form": "issue", "person": target.object_id, "lifetime": "60", "oneTime": "false", **EMPTY_START, **values}


async def search(
    bot: RunningBot, person: Person, text: str, *, dataset: str = "people", skip: int = 0, top: int = 15, **extra: Any
) -> tuple[int, dict[str, Any]]:
    activity = bot.activity(person)
    value: dict[str, Any] = {"queryText": text, "dataset": dataset, "queryOptions": {"skip": skip, "top": top}}
    activity.update({"type": "invoke", "name": "application/search", "value": {**value, **extra}})
    async with bot.session.post(f"{bot.url}/api/messages", json=activity) as response:
        return response.status, await response.json()


def results(body: dict[str, Any]) -> list[dict[str, str]]:
    assert body["type"] == SEARCH_RESPONSE, body
    return body["value"]["results"]


# --- opening the form ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["/tap issue", "/tap", "issue"])
async def test_issue_without_a_user_opens_the_form(bot: RunningBot, text: str) -> None:
    await bot.say(ADELE, text)
    [(conversation, form)] = forms_sent(bot)
    assert conversation == bot.personal_chat_of(ADELE)
    fields = inputs(form)
    assert list(fields) == ["person", "lifetime", "oneTime", "startDate", "startTime", "reason"]
    person = fields["person"]
    assert person["style"] == "filtered" and person["choices.data"] == {"type": "Data.Query", "dataset": "people"}
    assert person["isRequired"] is True and person["errorMessage"]
    assert person["choices"] == [], "an operator's picker lists nobody until something is typed"
    # The demo policy allows 1 to 8 hours, 1 hour by default.
    lifetime = fields["lifetime"]
    assert [choice["value"] for choice in lifetime["choices"]] == ["60", "120", "240", "480"]
    assert lifetime["value"] == "60" and "(default)" in lifetime["choices"][0]["title"]
    assert fields["oneTime"]["type"] == "Input.Toggle" and fields["oneTime"]["value"] == "false"
    assert "Europe/Berlin" in fields["startDate"]["label"] and "Europe/Berlin" in fields["startTime"]["label"]
    assert not fields["reason"].get("isRequired"), "no reason rule is set"
    assert all(element.get("label") and element.get("errorMessage") for element in fields.values())
    [action] = form["actions"]
    assert action["verb"] == verbs.SUBMIT_FORM and action["data"] == {"form": "issue"}


async def test_the_form_asked_for_in_a_channel_opens_privately(bot: RunningBot) -> None:
    await bot.say(ADELE, "<at>tapbot</at> tap issue", kind="channel")
    [(conversation, _form)] = forms_sent(bot)
    assert conversation != "19:general@thread.tacv2;messageid=1"
    channel = [sent.text for sent in bot.connector.sent if sent.conversation_id.startswith("19:general")]
    assert len(channel) == 1 and "Sent to you privately" in channel[0]


async def test_a_non_operator_gets_the_issue_commands_refusal_not_a_form(bot: RunningBot) -> None:
    await bot.say(DIEGO, "/tap issue")
    assert forms_sent(bot) == []
    assert "Only TAP operators" in bot.connector.texts()[-1]


async def test_the_onboarding_form_is_for_a_manager_and_searches_their_reports(bot: RunningBot) -> None:
    await bot.say(MEGAN, "/tap onboard")
    [(_conversation, form)] = forms_sent(bot)
    fields = inputs(form)
    assert list(fields) == ["person", "startDate", "startTime", "lifetime", "reason"]
    assert fields["person"]["choices.data"]["dataset"] == "people.onboard"
    # Her own direct reports are listed without a search (a client without the typeahead can still choose them).
    assert [choice["title"] for choice in fields["person"]["choices"]] == [
        "Lee Gu (LeeG@contoso.onmicrosoft.com) · Marketing · Marketing Specialist",
        "Lidia Holloway (LidiaH@contoso.onmicrosoft.com) · Marketing · Product Marketing Associate",
    ]
    status, body = await search(bot, MEGAN, "L", dataset="people.onboard")
    assert status == 200
    assert [item["title"].split(" (")[0] for item in results(body)] == ["Lee Gu", "Lidia Holloway"]
    assert results(body)[0]["value"] == LEE.object_id
    # Nobody reports to Lee: no form, the typed command's refusal.
    await bot.say(LEE, "/tap onboard")
    assert len(forms_sent(bot)) == 1
    assert "direct reports" in bot.connector.texts()[-1]


async def test_a_policy_that_forces_one_time_use_shows_it_fixed(tmp_path: Path) -> None:
    tenant = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    tenant["temporaryAccessPassPolicy"]["isUsableOnce"] = True
    bot = await started(tmp_path, tenant)
    try:
        await bot.say(ADELE, "/tap issue")
        [(_conversation, form)] = forms_sent(bot)
        assert "oneTime" not in inputs(form)
        assert "One-time use: always (the tenant's policy requires it)." in card_text(form)
        answer = await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(MEGAN, oneTime=""))
        assert "sent" in card_text(answer["value"])
        [issued] = await sandbox_passes(bot)
        assert issued["is_usable_once"] is True
    finally:
        await stop_bot(bot)


# --- submitting --------------------------------------------------------------------------------------------


async def test_a_valid_form_issues_the_pass_privately_and_settles(bot: RunningBot) -> None:
    data = issue_values(MEGAN, lifetime="120", oneTime="true", reason="INC0012345 lost phone")
    answer = await bot.press(ADELE, verbs.SUBMIT_FORM, data, kind="channel")
    settled = answer["value"]
    assert "person" not in inputs(settled) and not settled.get("actions"), "the form settles: no inputs, no button"
    text = card_text(settled)
    assert "Megan Bowen" in text and "2 hours" in text and "INC0012345 lost phone" in text
    [(conversation, card)] = pass_cards(bot)
    assert conversation.startswith("a:personal"), "the pass goes to the 1:1 chat, not the channel"
    assert "Temporary Access Pass for Megan Bowen" in card_text(card)
    secret = pass_value(card)
    assert not any(
        secret in str(sent.activity) for sent in bot.connector.sent if sent.conversation_id.startswith("19:")
    )
    [issued] = await sandbox_passes(bot)
    assert issued["lifetime_in_minutes"] == 120 and issued["is_usable_once"] is True
    [row] = [row for row in await bot.components.store.audit_rows() if row.action == "issue"]
    assert row.outcome == "succeeded" and row.actor_id == ADELE.object_id and row.reason == "INC0012345 lost phone"


async def test_the_start_is_read_in_the_technicians_time_zone(bot: RunningBot) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    day = bot.clock.now().astimezone(tokyo).date() + timedelta(days=2)
    data = issue_values(MEGAN, startDate=day.isoformat(), startTime="08:30")
    await bot.press(ADELE, verbs.SUBMIT_FORM, data, timezone="Asia/Tokyo")
    [issued] = await sandbox_passes(bot)
    start = datetime.fromisoformat(issued["start"].replace("Z", "+00:00"))
    assert start == datetime.combine(day, time(8, 30), tzinfo=tokyo)


async def test_invalid_fields_come_back_next_to_their_fields(bot: RunningBot) -> None:
    data = issue_values(MEGAN, lifetime="forever", startDate="2020-01-01", startTime="25:99", reason="x" * 301)
    data["person"] = ""
    answer = await bot.press(ADELE, verbs.SUBMIT_FORM, data)
    form = answer["value"]
    assert set(inputs(form)) >= {"person", "lifetime", "startDate", "startTime", "reason"}
    assert "Choose the person" in (error_under(form, "person") or "")
    assert "not a lifetime" in (error_under(form, "lifetime") or "")
    assert "time of day" in (error_under(form, "startTime") or "")
    assert "300 characters" in (error_under(form, "reason") or "")
    assert inputs(form)["reason"]["value"] == "x" * 301, "what was typed stays on the card"
    assert any(element.get("id") == "formProblem" for element in form["body"]), "the card says to fix the fields"
    assert await sandbox_passes(bot) == []


async def test_a_start_in_the_past_is_marked_on_the_date(bot: RunningBot) -> None:
    answer = await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(MEGAN, startDate="2020-01-01", startTime="08:00"))
    assert "already passed" in (error_under(answer["value"], "startDate") or "")
    assert await sandbox_passes(bot) == []


async def test_a_lifetime_outside_the_policy_is_marked_on_the_lifetime(bot: RunningBot) -> None:
    """A forged choice: the card only offers the policy's range, the service refuses anything else."""
    answer = await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(MEGAN, lifetime="600"))
    form = answer["value"]
    assert "1 hour" in (error_under(form, "lifetime") or "") and "8 hours" in (error_under(form, "lifetime") or "")
    assert inputs(form)["lifetime"]["value"] == "60", "the card offers the default again"
    assert await sandbox_passes(bot) == []


@pytest.mark.parametrize(
    ("person", "expected"),
    [(ADELE, "yourself"), (ISAIAH, "Privileged Authentication Administrator")],
    ids=["self", "privileged"],
)
async def test_a_person_who_cannot_get_a_pass_is_marked_on_the_person(
    bot: RunningBot, person: Person, expected: str
) -> None:
    answer = await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(person))
    form = answer["value"]
    assert expected in (error_under(form, "person") or "")
    chosen = inputs(form)["person"]
    assert chosen["value"] == person.object_id
    assert chosen["choices"] == [{"title": f"{person.name} ({person.upn})", "value": person.object_id}]
    assert await sandbox_passes(bot) == []


async def test_a_non_operator_submitting_a_form_issues_nothing(bot: RunningBot) -> None:
    """Whatever the form's data says (here: an operator's identity in made-up fields), the caller is the presser."""
    forged = {"caller": ADELE.object_id, "aadObjectId": ADELE.object_id, "from": ADELE.upn}
    answer = await bot.press(DIEGO, verbs.SUBMIT_FORM, {**issue_values(MEGAN), **forged})
    assert answer["type"] == "application/vnd.microsoft.activity.message"
    assert "Only TAP operators" in answer["value"]
    assert await sandbox_passes(bot) == []


async def lookups_of(bot: RunningBot, person: Person) -> int:
    """How many times the bot read this user from Graph since `trap_lookups` (each read fails loudly)."""
    async with aiohttp.ClientSession() as session, session.get(f"{bot.sandbox_control}/faults") as answer:
        rules = (await answer.json())["faults"]
    return sum(50 - rule["count"] for rule in rules if person.object_id in rule["path_regex"])


async def trap_lookups(bot: RunningBot, person: Person) -> None:
    rule = {"method": "GET", "path_regex": f"/users/{person.object_id}$", "status": 503, "count": 50}
    async with aiohttp.ClientSession() as session, session.post(f"{bot.sandbox_control}/faults", json=rule) as answer:
        assert answer.status in (200, 201)


async def test_a_form_shown_again_names_nobody_to_someone_who_may_not_look(bot: RunningBot) -> None:
    """Bad fields come back only after the caller's right to the form is checked: a non-operator's submit reads
    nobody from the directory, and a manager's onboarding form only names her own reports."""
    await trap_lookups(bot, ISAIAH)
    answer = await bot.press(DIEGO, verbs.SUBMIT_FORM, issue_values(ISAIAH, startDate="2020-01-01"))
    assert "Only TAP operators" in answer["value"]
    answer = await bot.press(
        MEGAN, verbs.SUBMIT_FORM, {**issue_values(ISAIAH, startDate="2020-01-01"), "form": "onboard"}
    )
    form = answer["value"]
    assert error_under(form, "startDate")
    assert "Isaiah" not in card_text(form), "a manager does not learn who an object id is"
    assert inputs(form)["person"]["choices"][0] == {"title": ISAIAH.object_id, "value": ISAIAH.object_id}
    assert await lookups_of(bot, ISAIAH) == 0


@pytest.mark.parametrize(
    "data",
    [{"form": "revoke", "person": MEGAN.object_id}, {"form": "issue", "person": ["a"]}, {"person": MEGAN.object_id}],
    ids=["other-word", "list-value", "no-form"],
)
async def test_damaged_form_data_does_nothing(bot: RunningBot, data: dict[str, Any]) -> None:
    answer = await bot.press(ADELE, verbs.SUBMIT_FORM, data)
    assert "damaged" in answer["value"]
    assert await sandbox_passes(bot) == []


async def test_a_name_typed_into_the_picker_still_resolves(bot: RunningBot) -> None:
    answer = await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(MEGAN, person="Megan"))
    assert "sent" in card_text(answer["value"])
    assert "Which Megan" in str(bot.connector.cards()[-1]), "two Megans: the choice card, as for a typed name"
    assert await sandbox_passes(bot) == []


# --- reason rules ----------------------------------------------------------------------------------------------


async def test_a_required_reason_is_required_on_the_form(tmp_path: Path) -> None:
    bot = await started(tmp_path, TAPBOT_REASON_REQUIRED="true")
    try:
        await bot.say(ADELE, "/tap issue")
        [(_conversation, form)] = forms_sent(bot)
        assert inputs(form)["reason"]["isRequired"] is True
        answer = await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(MEGAN, reason="  "))
        assert "Give a reason" in (error_under(answer["value"], "reason") or "")
        assert await sandbox_passes(bot) == []
        answer = await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(MEGAN, reason="lost phone"))
        assert "sent" in card_text(answer["value"])
        assert len(await sandbox_passes(bot)) == 1
    finally:
        await stop_bot(bot)


async def test_a_ticket_pattern_is_named_on_the_form_and_checked(tmp_path: Path) -> None:
    bot = await started(tmp_path, TAPBOT_TICKET_PATTERN=r"INC\d{7}", TAPBOT_TICKET_EXAMPLE="INC0012345")
    try:
        await bot.say(ADELE, "/tap issue")
        [(_conversation, form)] = forms_sent(bot)
        reason = inputs(form)["reason"]
        assert reason["isRequired"] is True and "INC0012345" in reason["label"]
        answer = await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(MEGAN, reason="lost phone"))
        assert "ticket number like INC0012345" in (error_under(answer["value"], "reason") or "")
        assert await sandbox_passes(bot) == []
        answer = await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(MEGAN, reason="INC0012345 lost phone"))
        assert "sent" in card_text(answer["value"])
        assert len(await sandbox_passes(bot)) == 1
    finally:
        await stop_bot(bot)


# --- the people picker (application/search) ----------------------------------------------------------------------


async def test_the_picker_lists_matching_people_by_object_id(bot: RunningBot) -> None:
    status, body = await search(bot, ADELE, "Meg")
    assert status == 200
    found = results(body)
    assert [item["title"].split(" (")[0] for item in found] == ["Megan Bowen", "Megan Fischer"]
    assert found[0]["value"] == MEGAN.object_id
    assert "Sales" in found[1]["title"], "department and job title tell two Megans apart"
    assert not any("not eligible" in item["title"] for item in found)


async def test_the_picker_marks_who_cannot_get_a_pass_and_why(bot: RunningBot) -> None:
    _status, body = await search(bot, ADELE, "Isaiah")
    [isaiah] = results(body)
    assert isaiah["value"] == ISAIAH.object_id
    assert isaiah["title"].endswith("(not eligible: holds the directory role Global Administrator)")
    _status, body = await search(bot, ADELE, "Adele")
    [adele] = results(body)
    assert "not eligible" in adele["title"] and "yourself" in adele["title"]


async def test_the_picker_lists_at_most_15_and_pages_inside_them(tmp_path: Path) -> None:
    bot = await started(tmp_path, bulk_tenant(40))
    try:
        _status, body = await search(bot, ADELE, "Bulk", top=50)
        first = results(body)
        assert len(first) == 15
        _status, body = await search(bot, ADELE, "Bulk", skip=5, top=5)
        assert results(body) == first[5:10]
        _status, body = await search(bot, ADELE, "Bulk", skip=15, top=15)
        assert results(body) == []
    finally:
        await stop_bot(bot)


async def test_a_caller_who_may_not_search_gets_an_error_and_nothing_is_searched(bot: RunningBot) -> None:
    status, body = await search(bot, DIEGO, "Meg")
    assert status == 403
    assert body["type"] == ERROR_RESPONSE and "Only TAP operators" in body["value"]["message"]
    status, body = await search(bot, LEE, "Meg", dataset="people.onboard")
    assert status == 403 and "direct reports" in body["value"]["message"]
    assert bot.connector.sent == [], "a typeahead never posts into the chat"


@pytest.mark.parametrize(
    "value",
    [
        {"queryText": "Meg", "dataset": "users", "queryOptions": {"skip": 0, "top": 15}},
        {"queryText": 5, "dataset": "people", "queryOptions": {"skip": 0, "top": 15}},
        {"queryText": "Meg", "dataset": "people", "queryOptions": {"skip": -1, "top": 15}},
        {"queryText": "Meg", "dataset": "people", "queryOptions": {"skip": 0, "top": "all"}},
        {"queryText": "x" * 5000, "dataset": "people"},
        "text",
    ],
    ids=["other-dataset", "number-text", "negative-skip", "text-top", "long-text", "no-object"],
)
async def test_a_malformed_search_gets_a_400_sentence(bot: RunningBot, value: Any) -> None:
    activity = bot.activity(ADELE)
    activity.update({"type": "invoke", "name": "application/search", "value": value})
    async with bot.session.post(f"{bot.url}/api/messages", json=activity) as response:
        assert response.status == 400
        body = await response.json()
    assert body["type"] == ERROR_RESPONSE and body["value"]["message"]
    assert bot.connector.sent == []
