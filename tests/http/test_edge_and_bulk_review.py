"""Found by the review of issue 13's last round, through /api/messages: a body is acted on only as it was checked
(its declared charset), a pass never travels in the HTTP answer (deliveryMode), and a bulk pass stays audited when
its journal entry fails."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.store import SqlStore
from bot.domain.bulk import JournalRow, RowState
from bot.sandbox.generate import bulk_tenant, bulk_upns
from cards import verbs
from tests.harness.bot import ADELE, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.tokens import bearer, install_test_keys, registered_env
from tests.http.test_bulk import attach, csv_of, job_id_of, last_card
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


async def test_a_body_whose_declared_charset_reading_is_no_activity_gets_a_400(bot: RunningBot) -> None:
    activity = bot.activity(ADELE, f"/tap issue {MEGAN.upn}")
    body = smuggling(activity, recipient="not an object")
    status, document = await post_raw(bot, body, {"Content-Type": "application/json; charset=unicode_escape"})
    assert await sandbox_passes(bot) == []
    assert status == 400 and document is not None and isinstance(document.get("error"), str), status


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


@pytest.fixture
async def bulk_bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(2)), encoding="utf-8")
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant)))
    try:
        yield running
    finally:
        await stop_bot(running)


async def test_a_bulk_pass_stays_audited_when_its_journal_write_fails(
    bulk_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real SQLite store, through /api/messages: the journal write that records a row CREATED fails (a full disk,
    a PostgreSQL deadlock victim...). Before 5dc06a3 the pass's audit row was committed on its own first; now it goes
    down with the journal write, and a pass exists in Graph that the audit log never mentions."""
    bot = bulk_bot
    store = bot.components.store
    assert isinstance(store, SqlStore)
    save_rows = store.save_rows

    async def failing_created(rows: list[JournalRow]) -> None:
        if any(row.state is RowState.CREATED for row in rows):
            raise OSError("database or disk is full")
        await save_rows(rows)

    await attach(bot, "users.csv", csv_of(bulk_upns(1)))
    job_id = job_id_of(last_card(bot))
    monkeypatch.setattr(store, "save_rows", failing_created)
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "false"})
    with contextlib.suppress(Exception):
        await asyncio.wait_for(bot.components.bulk.wait(job_id), 30)
    passes = await sandbox_passes(bot)
    assert len(passes) == 1, "the row's pass was created in Graph"
    audited = {
        row.pass_method_id for row in await store.audit_rows() if row.action == "issue" and row.outcome == "succeeded"
    }
    assert passes[0]["id"] in audited, "a pass that exists in Graph has no audit row"


async def test_an_activity_asking_for_a_streamed_answer_is_refused_before_any_pass(bot: RunningBot) -> None:
    activity = bot.activity(ADELE, f"/tap issue {MEGAN.upn}", deliveryMode="stream")
    response = await bot.post(activity)
    rows = await bot.components.store.audit_rows()
    assert [row.action for row in rows if row.action == "issue"] == [], "a pass made for a turn that cannot answer"
    assert response.status == 400
