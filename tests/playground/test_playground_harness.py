"""End-to-end checks of the Playground harness against the throwaway echo bot.

They prove ``tests/support/playground.py`` and pin down the Playground behaviour documented in
``docs/playground.md``. Without ``node_modules`` they are skipped locally and fail under CI.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.echo_bot import EchoBot
from tests.support.playground import (
    BotMessage,
    LogEntry,
    Playground,
    PlaygroundError,
    default_config,
    require_playground,
)

pytestmark = [
    pytest.mark.playground,
    # The SDK's jwt_authorization_middleware stores request["claims_identity"] under a plain str key.
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]

TIMEZONE = "Europe/Berlin"


@pytest.fixture
async def stack() -> AsyncIterator[tuple[EchoBot, Playground]]:
    require_playground()
    async with EchoBot() as bot, Playground(bot.endpoint, timezone=TIMEZONE) as pg:
        yield bot, pg


def received(bot: EchoBot, kind: str, text_contains: str | None = None) -> list[dict[str, Any]]:
    return [
        activity
        for activity in bot.received
        if activity.get("type") == kind and (text_contains is None or text_contains in (activity.get("text") or ""))
    ]


def entity(activity: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(e for e in activity.get("entities") or [] if e.get("type") == kind)


async def test_personal_message_echo(stack: tuple[EchoBot, Playground]) -> None:
    bot, pg = stack
    sent = await pg.send_personal("hello")
    assert sent.conversation_id == pg.personal_chat_id

    reply = await pg.wait_for_message(lambda m: m.text == "echo: hello")
    assert reply.kind == "create"
    assert reply.conversation_type == "personal"
    assert reply.conversation_id == pg.personal_chat_id
    assert reply.from_id == pg.bot_id

    (activity,) = received(bot, "message", "hello")
    user = pg.current_user
    assert activity["text"] == "hello"
    assert activity["textFormat"] == "plain"
    assert activity["conversation"] == {
        "conversationType": "personal",
        "tenantId": pg.tenant_id,
        "id": pg.personal_chat_id,
    }
    assert activity["from"] == {"id": user["id"], "name": user["name"], "aadObjectId": user["aadObjectId"]}
    assert activity["recipient"] == {"id": pg.bot_id, "name": pg.bot_name}
    assert activity["channelData"] == {"tenant": {"id": pg.tenant_id}}
    assert activity["serviceUrl"] == pg.service_url
    assert activity["channelId"] == "msteams"
    assert entity(activity, "clientInfo") == {
        "type": "clientInfo",
        "locale": "en-US",
        "country": "US",
        "platform": "Web",
        "timezone": TIMEZONE,
    }
    assert activity["localTimezone"] == TIMEZONE


async def test_channel_and_group_messages_need_a_mention(stack: tuple[EchoBot, Playground]) -> None:
    bot, pg = stack
    sent = await pg.send_channel("hi channel")
    assert sent.conversation_id == f"{pg.channel_id};messageid={sent.message_id}"

    reply = await pg.wait_for_message(lambda m: m.text == "echo: hi channel")
    assert reply.conversation_type == "channel"
    assert reply.thread_id == sent.conversation_id

    (activity,) = received(bot, "message", "hi channel")
    tag = f"<at>{pg.bot_name}</at>"
    assert activity["text"] == f"{tag} hi channel"
    assert entity(activity, "mention") == {
        "type": "mention",
        "mentioned": {"id": pg.bot_id, "name": pg.bot_name},
        "text": tag,
    }
    assert activity["conversation"] == {
        "isGroup": True,
        "conversationType": "channel",
        "tenantId": pg.tenant_id,
        "id": sent.conversation_id,
    }
    assert activity["channelData"] == {
        "teamsChannelId": pg.channel_id,
        "teamsTeamId": pg.team_id,
        "tenant": {"id": pg.tenant_id},
        "team": {"id": pg.team_id},
        "channel": {"id": pg.channel_id},
    }
    assert "platform" not in entity(activity, "clientInfo")

    # A reply inside the thread keeps the thread's conversation id.
    await pg.send_channel("in thread", thread=sent.conversation_id)
    threaded = await pg.wait_for_message(lambda m: m.text == "echo: in thread")
    assert threaded.conversation_id == sent.conversation_id

    # Group chat: a message without the mention never reaches the bot; one with it does.
    await pg.send_group("not for the bot", mention_bot=False)
    await pg.send_group("for the bot")
    group_reply = await pg.wait_for_message(lambda m: m.text == "echo: for the bot")
    assert group_reply.conversation_type == "groupChat"
    assert group_reply.conversation_id == pg.group_chat_id
    assert received(bot, "message", "not for the bot") == []
    (group_activity,) = received(bot, "message", "for the bot")
    assert group_activity["conversation"] == {
        "isGroup": True,
        "conversationType": "groupChat",
        "tenantId": pg.tenant_id,
        "id": pg.group_chat_id,
    }
    assert group_activity["channelData"] == {"tenant": {"id": pg.tenant_id}}


async def test_action_execute_round_trip(stack: tuple[EchoBot, Playground]) -> None:
    bot, pg = stack
    await pg.send_personal("card")
    card_message = await pg.wait_for_message(lambda m: m.card is not None)
    assert card_message.text is None
    assert card_message.card is not None
    assert card_message.card["actions"][0]["verb"] == "approve"

    answer = await pg.invoke_action(card_message, "approve", {"request": "r-1", "comment": "ok"}, title="Approve")
    assert answer["type"] == "application/vnd.microsoft.card.adaptive"
    user = pg.current_user
    text = answer["value"]["body"][0]["text"]
    assert text == f'Approved by {user["name"]} ({user["aadObjectId"]}): {{"comment": "ok", "request": "r-1"}}'

    (invoke,) = received(bot, "invoke")
    assert invoke["name"] == "adaptiveCard/action"
    assert invoke["replyToId"] == card_message.message_id
    assert invoke["value"] == {
        "action": {
            "type": "Action.Execute",
            "verb": "approve",
            "data": {"request": "r-1", "comment": "ok"},
            "title": "Approve",
        }
    }
    assert invoke["channelData"] == {"source": {"name": "message"}, "tenant": {"id": pg.tenant_id}}
    assert invoke["from"]["aadObjectId"] == user["aadObjectId"]

    # Unlike messages, an invoke can come from another member of the conversation.
    await pg.send_group("card")
    group_card = await pg.wait_for_message(lambda m: m.card is not None and m.conversation_type == "groupChat")
    other = pg.users[0]
    answer = await pg.invoke_action(group_card, "approve", {"request": "r-2"}, from_id=other["id"])
    assert f"Approved by {other['name']} ({other['aadObjectId']})" in answer["value"]["body"][0]["text"]
    group_invoke = received(bot, "invoke")[-1]
    assert group_invoke["from"] == {"id": other["id"], "name": other["name"], "aadObjectId": other["aadObjectId"]}
    assert group_invoke["conversation"]["name"] == pg.config["groupChat"]["name"]

    # In a channel the card lives in the post's conversation (thread_id).
    await pg.send_channel("card")
    channel_card = await pg.wait_for_message(lambda m: m.card is not None and m.conversation_type == "channel")
    answer = await pg.invoke_action(channel_card, "approve", {"request": "r-3"})
    assert "r-3" in answer["value"]["body"][0]["text"]
    assert received(bot, "invoke")[-1]["conversation"]["id"] == channel_card.thread_id


async def test_proactive_one_to_one_conversation(stack: tuple[EchoBot, Playground]) -> None:
    bot, pg = stack
    user = pg.current_user
    await pg.send_channel("dm me")
    dm = await pg.wait_for_message(lambda m: m.text == "proactive hello")
    # create_conversation for the current user returns the existing personal chat.
    assert dm.conversation_id == pg.personal_chat_id
    assert dm.conversation_type == "personal"
    await pg.wait_for_message(lambda m: (m.text or "").startswith("dm sent to"))

    create = await pg.wait_for_log(lambda e: e.name == "createConversation")
    assert create.direction == "from_bot"
    assert create.status == 201
    assert create.response == {"id": pg.personal_chat_id}
    assert create.request["isGroup"] is False
    assert create.request["members"] == [{"id": user["id"]}]
    assert create.request["tenantId"] == pg.tenant_id

    # A 1:1 with another user gets a new "<uuid>@test.user" conversation; the Playground accepts the
    # message but shows only the current user's chats, so it is visible in the log stream only.
    other = pg.users[1]
    mark = len(pg.messages)
    await pg.send_personal(f"dm {other['id']}")
    confirm = await pg.wait_for_message(lambda m: (m.text or "").startswith(f"dm sent to {other['id']}"), since=mark)

    def is_other_dm(entry: LogEntry) -> bool:
        return (
            entry.direction == "from_bot"
            and entry.name == "message"
            and (entry.conversation_id or "").endswith("@test.user")
        )

    delivered = await pg.wait_for_log(is_other_dm)
    assert delivered.status == 201
    assert delivered.request["text"] == "proactive hello"
    assert confirm.text == f"dm sent to {other['id']} in {delivered.conversation_id}"
    assert not any(m.conversation_id == delivered.conversation_id for m in pg.messages)
    assert bot.events[-1]["conversation_id"] == delivered.conversation_id


async def test_update_activity_replaces_the_message(stack: tuple[EchoBot, Playground]) -> None:
    _bot, pg = stack
    await pg.send_personal("edit")
    updated = await pg.wait_for_message(lambda m: m.text == "edited text", kind="update")
    original = await pg.wait_for_message(lambda m: m.text == "original text", kind="create")
    assert updated.message_id == original.message_id
    assert updated.conversation_id == pg.personal_chat_id

    update_call = await pg.wait_for_log(lambda e: e.direction == "from_bot" and e.status == 200)
    assert update_call.response == {"id": original.message_id}
    assert update_call.request["id"] == original.message_id


async def test_custom_activity_with_a_file_attachment(stack: tuple[EchoBot, Playground]) -> None:
    bot, pg = stack
    attachment = {
        "contentType": "application/vnd.microsoft.teams.file.download.info",
        "name": "users.csv",
        "contentUrl": "https://contoso.sharepoint.com/personal/alexw/Documents/users.csv",
        "content": {
            "downloadUrl": "https://contoso.sharepoint.com/download/users.csv?token=x",
            "uniqueId": "5a0a3bb7-7d8e-4a5e-9c0f-8a3f1b0c2d11",
            "fileType": "csv",
            "etag": "e-1",
        },
    }
    sent = await pg.send_custom_activity({"type": "message", "text": "", "attachments": [attachment]})
    await pg.wait_for_message(lambda m: m.text == "echo: ")

    activity = next(a for a in bot.received if a.get("attachments"))
    assert activity == sent
    assert activity["attachments"] == [attachment]
    assert activity["conversation"]["id"] == pg.personal_chat_id
    assert activity["channelData"]["tenant"]["id"] == pg.tenant_id
    assert activity["from"]["aadObjectId"] == pg.current_user["aadObjectId"]
    assert entity(activity, "clientInfo")["timezone"] == TIMEZONE


async def test_start_failure_reports_the_playground_log(tmp_path: Path) -> None:
    require_playground()
    config = default_config()
    config["users"] = config["users"][:4]  # the schema wants exactly five
    with pytest.raises(PlaygroundError) as failure:
        async with Playground("http://127.0.0.1:9/api/messages", config, start_timeout=15):
            pass
    message = str(failure.value)
    assert "exited with code 1" in message
    assert "must NOT have fewer than 5 items" in message


async def test_binds_loopback_only(stack: tuple[EchoBot, Playground]) -> None:
    _bot, pg = stack
    tcp = Path("/proc/net/tcp")
    if not tcp.exists():
        pytest.skip("needs Linux /proc/net/tcp")
    listening = [
        line.split()[1]
        for line in tcp.read_text().splitlines()[1:]
        if line.split()[3] == "0A"  # LISTEN
    ]
    ours = [address for address in listening if int(address.split(":")[1], 16) == pg.port]
    assert ours == [f"0100007F:{pg.port:04X}"]
    assert not Path("/proc/net/tcp6").exists() or all(
        int(line.split()[1].split(":")[1], 16) != pg.port
        for line in Path("/proc/net/tcp6").read_text().splitlines()[1:]
    )


async def test_wait_for_message_times_out_with_context(stack: tuple[EchoBot, Playground]) -> None:
    _bot, pg = stack
    await pg.send_personal("ping")
    await pg.wait_for_message(lambda m: m.text == "echo: ping")

    def never(message: BotMessage) -> bool:
        return False

    with pytest.raises(TimeoutError, match="echo: ping"):
        await pg.wait_for_message(never, timeout=0.3)
    await asyncio.sleep(0)


async def test_retries_when_the_chosen_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Playground silently falls back to a random port when ``-p`` is taken, which would break the
    ``--service-url``; the harness notices ("Listening on <other>") and retries on a new port."""
    require_playground()
    import tests.support.playground as playground_module

    real_free_port = playground_module.free_port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = int(blocker.getsockname()[1])
        ports = iter([taken])
        monkeypatch.setattr(
            playground_module, "free_port", lambda host="127.0.0.1": next(ports, None) or real_free_port(host)
        )
        async with EchoBot() as bot, Playground(bot.endpoint) as pg:
            assert pg.port != taken
            await pg.send_personal("after retry")
            reply = await pg.wait_for_message(lambda m: m.text == "echo: after retry")
            assert reply.conversation_id == pg.personal_chat_id
