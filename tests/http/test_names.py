"""Names resolve (issue 11 item 1), through the real endpoint against the sandbox tenant: one match goes on, several
get a private choice whose buttons continue the command, none get the closest people; a name never changes who
is asking, and someone who may not search learns nothing about the directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from bot.settings import DEMO_TENANT_FILE
from cards import verbs
from tests.harness.bot import ADELE, ALEX, DIEGO, LEE, MEGAN, Person, RunningBot, sandbox_env, start_bot, stop_bot
from tests.http.test_issue_flow import card_text, cards_in, sandbox_passes

MEGAN_F = Person("b7d3c2a1-5e4f-4a8b-9c6d-2f1e0a9b8c7d", "MeganF@contoso.onmicrosoft.com", "Megan Fischer")
MESSAGE = "application/vnd.microsoft.activity.message"
SEARCH_PATH = "^/users$"  # GET /users is the directory search (and nothing else the bot does per command)


def choices(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The choose buttons of a "Which …?" card, by their title."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and node.get("verb") == verbs.CHOOSE_PERSON:
                found[node["title"]] = node["data"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


async def trap_searches(bot: RunningBot) -> None:
    """Any directory search from now on fails loudly (and is counted by the fault's remaining count)."""
    rule = {"method": "GET", "path_regex": SEARCH_PATH, "status": 503, "count": 50}
    async with aiohttp.ClientSession() as session, session.post(f"{bot.sandbox_control}/faults", json=rule) as answer:
        assert answer.status in (200, 201)


async def searches_made(bot: RunningBot) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{bot.sandbox_control}/faults") as answer:
        rules = await answer.json()
    items = rules["faults"]
    return sum(50 - rule["count"] for rule in items if rule["path_regex"] == SEARCH_PATH)


def last_text(bot: RunningBot, person: Person) -> str:
    texts = [item.text for item in bot.connector.in_conversation(bot.personal_chat_of(person)) if item.text]
    assert texts, "no text answer"
    return texts[-1]


async def test_a_unique_name_goes_on_and_the_card_names_the_person(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap issue Megan Bowen 2h")
    cards = cards_in(bot.connector.in_conversation(bot.personal_chat_of(ADELE)))
    assert len(cards) == 1
    text = card_text(cards[0])
    assert f"Temporary Access Pass for Megan Bowen ({MEGAN.upn})" in text
    assert "Marketing · Marketing Manager" in text
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [MEGAN.object_id]

    bot.connector.clear()
    await bot.say(ADELE, '/tap status "lee"')
    status = card_text(cards_in(bot.connector.sent)[0])
    assert f"Pass status for Lee Gu ({LEE.upn})" in status and "Marketing · Marketing Specialist" in status


async def test_an_ambiguous_name_asks_which_and_the_button_continues_the_command(bot: RunningBot) -> None:
    await bot.say(ADELE, "<at>tapbot</at> tap issue Megan 2h one-time", kind="channel")
    channel = bot.connector.in_conversation("19:general@thread.tacv2;messageid=1")
    assert [item.card for item in channel] == [None] and "privately" in channel[0].text  # the channel learns nothing
    created = [sent for sent in bot.connector.sent if sent.kind == "create"]
    private = cards_in(bot.connector.in_conversation(created[0].conversation_id))
    assert len(private) == 1
    assert "Which Megan?" in card_text(private[0])
    buttons = choices(private[0])
    assert set(buttons) == {"Choose Megan Bowen", "Choose Megan Fischer"}
    assert "Sales · Account Executive" in card_text(private[0])
    assert await sandbox_passes(bot) == []  # nothing issued before the choice

    answer = await bot.press(ADELE, verbs.CHOOSE_PERSON, buttons["Choose Megan Fischer"])
    assert answer["type"] == "application/vnd.microsoft.card.adaptive"
    assert f"Chose Megan Fischer ({MEGAN_F.upn})" in card_text(answer["value"])
    passes = await sandbox_passes(bot)
    assert [item["user_id"] for item in passes] == [MEGAN_F.object_id]
    assert passes[0]["is_usable_once"] is True and passes[0]["lifetime_in_minutes"] == 120
    pass_cards = [card for card in cards_in(bot.connector.sent) if "Temporary Access Pass for" in card_text(card)]
    assert len(pass_cards) == 1 and "Megan Fischer" in card_text(pass_cards[0])


async def test_more_than_ten_fit_and_the_card_says_narrow_it_down(tmp_path: Path) -> None:
    tenant = json.loads(DEMO_TENANT_FILE.read_text("utf-8"))
    tenant["users"] += [
        {
            "id": f"5a000000-0000-0000-0000-0000000000{n:02d}",
            "userPrincipalName": f"sam{n}@contoso.onmicrosoft.com",
            "displayName": f"Sam Example {n}",
        }
        for n in range(12)
    ]
    tenant_file = tmp_path / "tenant.json"
    tenant_file.write_text(json.dumps(tenant), "utf-8")
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant_file)))
    try:
        await bot.say(ADELE, "/tap status sam example")
        card = cards_in(bot.connector.sent)[0]
        assert len(choices(card)) == 10
        assert "Narrow it down" in card_text(card)
    finally:
        await stop_bot(bot)


async def test_no_match_names_the_closest_people(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap issue Megan Smith")
    sentence = last_text(bot, ADELE)
    assert "Nobody in the directory is called 'Megan Smith'" in sentence
    assert "has the word 'Megan'" in sentence
    assert f"Megan Bowen ({MEGAN.upn}) · Marketing · Marketing Manager" in sentence and "Megan Fischer" in sentence

    await bot.say(ADELE, "/tap revoke Meggan")
    assert "starts with 'Meg'" in last_text(bot, ADELE)
    await bot.say(ADELE, "/tap status Zzyzx Qwerty")
    assert "Check the spelling" in last_text(bot, ADELE)
    assert await sandbox_passes(bot) == []


async def test_a_non_operator_typing_a_name_learns_nothing_about_the_directory(bot: RunningBot) -> None:
    await bot.say(DIEGO, f"/tap issue {MEGAN.upn}")
    typed = last_text(bot, DIEGO)
    await trap_searches(bot)
    for text in ("/tap issue Megan", "/tap status Megan Bowen", "/tap revoke Zzyzx"):
        await bot.say(DIEGO, text)
        assert last_text(bot, DIEGO) == typed, text
    # Lee reports to nobody: onboarding by name is the typed command's refusal too, and nobody was searched for.
    await bot.say(LEE, "/tap onboard Megan")
    assert "only request onboarding passes for your own direct reports" in last_text(bot, LEE)
    assert await searches_made(bot) == 0
    refused = [row for row in await bot.components.store.audit_rows() if row.outcome == "refused"]
    assert {(row.actor_id, row.target_upn, row.rule) for row in refused} >= {
        (DIEGO.object_id, "Megan", "not_operator"),
        (LEE.object_id, "Megan", "not_manager"),
    }


async def test_a_manager_finds_only_her_direct_reports(bot: RunningBot) -> None:
    await trap_searches(bot)
    await bot.say(MEGAN, "/tap onboard Adele")  # Adele exists, but does not report to Megan
    sentence = last_text(bot, MEGAN)
    assert "None of your direct reports is called 'Adele'" in sentence
    assert "Lee Gu" in sentence and "Lidia Holloway" in sentence and "Adele Vance" not in sentence
    assert await searches_made(bot) == 0


async def test_forged_choice_buttons_are_refused(bot: RunningBot) -> None:
    command = f"/tap issue {MEGAN_F.object_id} 2h"
    # A non-operator pressing a choice offered to them: the typed command's refusal, nothing issued.
    answer = await bot.press(DIEGO, verbs.CHOOSE_PERSON, {"command": command, "offeredTo": DIEGO.object_id})
    assert answer["type"] == MESSAGE and "Only TAP operators" in answer["value"]
    # An operator pressing a choice offered to someone else.
    answer = await bot.press(ALEX, verbs.CHOOSE_PERSON, {"command": command, "offeredTo": ADELE.object_id})
    assert answer["type"] == MESSAGE and "offered to someone else" in answer["value"]
    # Commands no choice card carries: a name still to resolve, a command about nobody, text that is no command.
    for forged in ("/tap issue Megan", "/tap policy", "/tap approvals here", "x" * 700, 42):
        answer = await bot.press(ADELE, verbs.CHOOSE_PERSON, {"command": forged, "offeredTo": ADELE.object_id})
        assert answer["type"] == MESSAGE and "damaged" in answer["value"], forged
    assert await sandbox_passes(bot) == []
