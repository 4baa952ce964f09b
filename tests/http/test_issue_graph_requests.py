"""Graph requests of a typed `/tap issue`, through /api/messages: with verification of the person on (the product's
default), the user's sign-in methods are read in the target's `$batch`, in place of its pass list (the methods list
holds the pass), so the verification's requirement costs no request of its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.harness.bot import ADELE, LEE, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.http.test_issue_flow import card_text
from tests.http.test_verification import pass_cards, prompts

METHODS_LIST = "/authentication/methods"
PASS_LIST = "/authentication/temporaryAccessPassMethods"


@dataclass
class Counted:
    sent: list[str]  # "METHOD path" of the HTTP requests the bot sent to Graph during the command
    items: int  # Graph requests the sandbox received ($batch items one by one)
    method_list_reads: int  # the target's methods list read (as a batch item or alone)


async def counted(bot: RunningBot, text: str, user_id: str) -> Counted:
    sandbox = bot.components.sandbox
    assert sandbox is not None
    counters = sandbox.state.counters
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    hooks = bot.components.http_client.event_hooks["request"]
    hooks.append(record)
    items, reads = counters.requests_received, counters.method_list_reads.get(user_id, 0)
    try:
        await bot.say(ADELE, text)
    finally:
        hooks.remove(record)
    return Counted(sent, counters.requests_received - items, counters.method_list_reads.get(user_id, 0) - reads)


async def issue_for_lee(tmp_path: Path, verification: str) -> tuple[Counted, Counted]:
    """Lee Gu (a new hire, nothing but a password: no verification needed) gets a pass, then is asked about again
    (he now holds one): the Graph requests of each command, the operator check and the policy already cached."""
    bot = await start_bot(sandbox_env(tmp_path / verification, TAPBOT_VERIFICATION=verification))
    try:
        await bot.say(ADELE, f"/tap status {MEGAN.upn}")  # the operator check and the policy, cached from here on
        first = await counted(bot, f"/tap issue {LEE.upn} 2h", LEE.object_id)
        assert prompts(bot) == [] and len(pass_cards(bot)) == 1
        bot.connector.clear()
        second = await counted(bot, f"/tap issue {LEE.upn} 3h", LEE.object_id)
        question = [card_text(sent.card) for sent in bot.connector.sent if sent.card]
        assert any("already holds a pass" in text for text in question), question
        return first, second
    finally:
        await stop_bot(bot)


async def test_verification_costs_no_graph_request_of_its_own(tmp_path: Path) -> None:
    on_issue, on_question = await issue_for_lee(tmp_path, "manager")
    off_issue, off_question = await issue_for_lee(tmp_path, "off")

    # With verification on, the methods list is one item of the target's batch, read once, never alone, and the
    # pass list is not read before the write (the methods list held the pass: the second command found it).
    for command in (on_issue, on_question):
        assert command.method_list_reads == 1
        assert not any(METHODS_LIST in request for request in command.sent), command.sent
        assert "POST /v1.0/$batch" in command.sent
    before_create = on_issue.sent[: on_issue.sent.index(f"POST /v1.0/users/{LEE.object_id}{PASS_LIST}")]
    assert not any(PASS_LIST in request for request in before_create), on_issue.sent
    # With it off, the pass list is read in its place and the methods list not at all.
    assert off_issue.method_list_reads == off_question.method_list_reads == 0

    # So the same requests either way: before, verification cost one request more per issue.
    assert len(on_issue.sent) == len(off_issue.sent)
    assert on_issue.items == off_issue.items
    assert len(on_question.sent) == len(off_question.sent)
    assert on_question.items == off_question.items
