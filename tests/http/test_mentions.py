"""Mentions are users (issue 11 item 2), through the real endpoint: in a channel or group chat the person a command
names by @mention is the one Teams' mention entity identifies (its Teams id looked up in the conversation's
roster), never the text inside `<at>…</at>`, which the sender's client writes."""

from __future__ import annotations

from tests.harness.bot import ADELE, ALEX, DIEGO, MEGAN, TENANT_ID, Person, RunningBot
from tests.http.test_issue_flow import card_text, cards_in, sandbox_passes

CHANNEL = "19:general@thread.tacv2;messageid=1"
GROUP = "19:group@thread.v2"


def mention(person_id: str, markup: str) -> dict[str, object]:
    return {"type": "mention", "mentioned": {"id": person_id, "name": markup[4:-5]}, "text": markup}


def bot_mention() -> dict[str, object]:
    return {"type": "mention", "mentioned": {"id": "28:tapbot-sandbox", "name": "tapbot"}, "text": "<at>tapbot</at>"}


def member(bot: RunningBot, person: Person, tenant: str = TENANT_ID) -> str:
    return bot.connector.add_member(person.object_id, person.name, person.upn, tenant)


async def say_with_mentions(
    bot: RunningBot, sender: Person, text: str, mentions: list[dict[str, object]], *, kind: str = "channel"
) -> None:
    activity = bot.activity(sender, text, kind=kind)
    activity["entities"] = [bot_mention(), *mentions, *activity["entities"]]
    response = await bot.post(activity)
    assert response.status in (200, 202)


def private_texts(bot: RunningBot) -> list[str]:
    return [sent.text for sent in bot.connector.sent if sent.kind == "send" and sent.text]


async def test_a_mention_in_a_channel_names_the_person_of_the_entity(bot: RunningBot) -> None:
    megan = member(bot, MEGAN)
    await say_with_mentions(
        bot, ADELE, "<at>tapbot</at> tap issue <at>Megan Bowen</at> 2h", [mention(megan, "<at>Megan Bowen</at>")]
    )
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [MEGAN.object_id]
    private = cards_in([sent for sent in bot.connector.sent if sent.kind == "send"])
    assert len(private) == 1 and f"Temporary Access Pass for Megan Bowen ({MEGAN.upn})" in card_text(private[0])
    channel = bot.connector.in_conversation(CHANNEL)
    assert [sent.card for sent in channel] == [None] and "privately" in channel[0].text
    # The channel's roster answered: the channel message's team (the conversation here, having no team id).
    assert bot.connector.member_lookups == [(CHANNEL, megan)]


async def test_a_mention_whose_text_lies_names_whom_the_entity_names(bot: RunningBot) -> None:
    diego = member(bot, DIEGO)
    await say_with_mentions(
        bot,
        ALEX,
        "<at>tapbot</at> issue <at>Megan Bowen</at> 2h",
        [mention(diego, "<at>Megan Bowen</at>")],  # the text says Megan; Teams says the mention is Diego
        kind="groupChat",
    )
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [DIEGO.object_id]
    private = cards_in([sent for sent in bot.connector.sent if sent.kind == "send"])
    assert len(private) == 1
    text = card_text(private[0])
    assert f"Temporary Access Pass for Diego Siciliani ({DIEGO.upn})" in text and "Megan" not in text
    assert bot.connector.member_lookups == [(GROUP, diego)]


async def test_a_mention_teams_does_not_confirm_does_nothing(bot: RunningBot) -> None:
    stranger = "29:1someone-who-is-not-in-this-conversation"
    await say_with_mentions(
        bot, ADELE, "<at>tapbot</at> tap issue <at>Megan Bowen</at> 2h", [mention(stranger, "<at>Megan Bowen</at>")]
    )
    assert await sandbox_passes(bot) == []
    texts = private_texts(bot)
    assert len(texts) == 1 and "couldn't tell who 'Megan Bowen' is" in texts[0] and "did nothing" in texts[0]
    assert [sent.text for sent in bot.connector.in_conversation(CHANNEL)] == [
        "[SANDBOX] Sent to you privately: look in your personal chat with me."
    ]


async def test_a_member_of_another_tenant_is_not_a_person_here(bot: RunningBot) -> None:
    guest = member(bot, MEGAN, tenant="0d4a8a77-0000-4000-8000-00000000f00d")
    await say_with_mentions(
        bot, ADELE, "<at>tapbot</at> tap issue <at>Megan Bowen</at> 2h", [mention(guest, "<at>Megan Bowen</at>")]
    )
    assert await sandbox_passes(bot) == []
    assert "couldn't tell who 'Megan Bowen' is" in private_texts(bot)[0]


async def test_the_mention_text_is_never_read_as_a_name_and_a_mention_never_changes_the_caller(
    bot: RunningBot,
) -> None:
    """Diego (no operator) mentions Adele: the caller is still Diego, refused; nothing is issued for anyone."""
    adele = member(bot, ADELE)
    await say_with_mentions(
        bot, DIEGO, "<at>tapbot</at> tap issue <at>Adele Vance</at> 2h", [mention(adele, "<at>Adele Vance</at>")]
    )
    assert await sandbox_passes(bot) == []
    assert "operator" in private_texts(bot)[0].lower()


async def test_markup_without_an_entity_is_dropped_not_read(bot: RunningBot) -> None:
    """An `<at>` text no entity vouches for names nobody: the command has no user and opens the form, and no
    directory search for the text inside it happens."""
    await say_with_mentions(bot, ADELE, "<at>tapbot</at> tap issue <at>Megan Bowen</at> 2h", [])
    assert await sandbox_passes(bot) == []
    assert bot.connector.member_lookups == []
    assert all("Megan" not in text for text in private_texts(bot))
