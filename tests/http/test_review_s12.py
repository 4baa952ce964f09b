"""Reviewer R, issue 13 session 12: attacks on the commits of this session, each a failing test (xfail strict)
until its owner fixes the product code."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness.bot import ADELE, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.tokens import bearer, install_test_keys, registered_env
from tests.http.test_issue_flow import sandbox_passes
from tests.http.test_malformed import post_raw


@pytest.fixture
async def registered_bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningBot]:
    install_test_keys(monkeypatch)
    running = await start_bot(sandbox_env(tmp_path, **registered_env()))
    try:
        yield running
    finally:
        await stop_bot(running)


def smuggling(activity: dict[str, object], **hidden: str) -> bytes:
    """A body whose UTF-8 reading (what /api/messages checks) is `activity`, and whose reading in the charset
    `unicode_escape` (what aiohttp's request.text() and so the SDK read, when the Content-Type declares it) has
    `hidden`'s fields too: the last duplicate key wins in json.loads. Only ASCII, no other backslash in the body."""
    injected = "".join(f'","{name}":"{value}' for name, value in hidden.items())
    text = json.dumps({**activity, "zz": "x"})
    assert "\\" not in text
    assert text.endswith('"zz": "x"}')
    return (text[: -len('"}')] + injected.replace('"', '\\"') + '"}').encode()


@pytest.mark.xfail(
    strict=True,
    reason="bot/web/messages.py _ReadActivity.json: a text aiohttp decodes otherwise is json.loads'ed and handed to "
    "the SDK unchecked (pre-existing since before ba37ef9, kept by it)",
)
async def test_a_body_declared_in_another_charset_is_not_processed_unchecked(registered_bot: RunningBot) -> None:
    bot = registered_bot
    activity = bot.activity(ADELE, f"/tap issue {MEGAN.upn}")
    body = smuggling(activity, channelId="webchat")
    # As checked: a Teams activity with a channel token for its service URL (so the edge lets it through) ...
    assert json.loads(body)["channelId"] == "msteams"
    # ... as the SDK reads it: a webchat activity, which the edge refuses when it is sent plainly.
    assert json.loads(body.decode("unicode_escape"))["channelId"] == "webchat"
    headers = bearer(serviceurl=bot.connector.url)
    plain = json.loads(body.decode("unicode_escape"))
    response = await bot.post(plain, headers=headers)
    assert response.status == 401  # the edge's rule: only Teams
    status, _ = await post_raw(bot, body, {**headers, "Content-Type": "application/json; charset=unicode_escape"})
    assert await sandbox_passes(bot) == []
    assert status in (400, 401), status


@pytest.mark.xfail(
    strict=True,
    reason="bot/web/messages.py _ReadActivity.json: the unchecked reading in the declared charset goes to the SDK, "
    "whose Activity.model_validate is outside its try: a 500 (pre-existing, kept by ba37ef9)",
)
async def test_a_body_whose_declared_charset_reading_is_no_activity_gets_a_400(bot: RunningBot) -> None:
    activity = bot.activity(ADELE, f"/tap issue {MEGAN.upn}")
    body = smuggling(activity, recipient="not an object")
    status, document = await post_raw(bot, body, {"Content-Type": "application/json; charset=unicode_escape"})
    assert await sandbox_passes(bot) == []
    assert status == 400 and document is not None and isinstance(document.get("error"), str), status


@pytest.mark.xfail(
    strict=True,
    reason="pre-existing, not of this session: deliveryMode expectReplies makes the SDK buffer the bot's replies and "
    "return them in the HTTP answer, the pass card included; nothing at the edge refuses it",
)
async def test_a_pass_never_travels_in_the_http_answer(registered_bot: RunningBot) -> None:
    """With `deliveryMode: expectReplies` the SDK returns every reply of the turn in the answer to the POST instead of
    sending it to the connector: the pass card goes to whoever made the request (not through the allow-listed
    connector address), the bot records it as shown with no activity id (so it can never be hidden), and the
    connector, i.e. the requester's 1:1 chat, receives nothing. Teams never asks for this delivery mode."""
    bot = registered_bot
    activity = bot.activity(ADELE, f"/tap issue {MEGAN.upn}", deliveryMode="expectReplies")
    headers = {**bearer(serviceurl=bot.connector.url), "Content-Type": "application/json"}
    async with bot.session.post(f"{bot.url}/api/messages", data=json.dumps(activity), headers=headers) as response:
        answer = await response.text()
    passes = await sandbox_passes(bot)
    assert "application/vnd.microsoft.card.adaptive" not in answer, "the pass card came back in the HTTP answer"
    assert passes == [] or bot.connector.sent != [], "a live pass that only the HTTP answer carried"
