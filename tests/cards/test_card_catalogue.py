"""Every card the bot can send, in each of its variants, against the official Adaptive Card 1.5 schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.approvals import ApprovalKind, ApprovalRequest, ApprovalStatus
from bot.domain.model import DirectoryUser, IssuedPass, PassInfo, PassRequest, PassSecret, Recipient, UsabilityReason
from bot.domain.service import PassStatus, ReplaceNeeded
from cards.approvals import approval_request_card, decided_request_card, requests_card
from cards.formatting import local_and_utc
from cards.passes import (
    CardJson,
    pass_card,
    redacted_pass_card,
    replace_question_card,
    replace_settled_card,
    status_card,
    with_banner,
)
from cards.reference import help_card, policy_card
from tests.fakes import default_policy
from tests.harness.card_schema import assert_valid_card

NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")
USER = DirectoryUser("6832c635-8862-4324-872b-4990d834254a", "MeganB@contoso.onmicrosoft.com", "Megan Bowen")


def info(reason: UsabilityReason = UsabilityReason.ENABLED_BY_POLICY, start: datetime = NOW) -> PassInfo:
    return PassInfo("method-1", NOW, start, 480, True, reason is UsabilityReason.ENABLED_BY_POLICY, reason)


def catalogue() -> dict[str, CardJson]:
    issued = IssuedPass(USER, info(), PassSecret("Xy7#kP2q"), "request-1")
    replaced = IssuedPass(USER, info(start=NOW + timedelta(days=1)), PassSecret("Qq9!aa1Z"), None, info())
    question = ReplaceNeeded(USER, info(), PassRequest(USER.object_id, start_at=NOW + timedelta(hours=3)), 120, True)
    cards: dict[str, CardJson] = {
        "pass": pass_card(issued, card_id="c1", tz=TOKYO, now=NOW),
        "pass replacing another, future start": pass_card(replaced, card_id="c2", tz=TOKYO, now=NOW),
        "replace question": replace_question_card(question, tz=TOKYO),
        "replace settled": replace_settled_card(USER.label, "Kept the existing pass; nothing was changed."),
        "status none": status_card(PassStatus(USER, None, NOW), tz=TOKYO),
        "policy": policy_card(default_policy()),
        "policy forced one-time, disabled": policy_card(default_policy(enabled=False, one_time_forced=True)),
        "help": help_card(),
        "help unknown": help_card(unknown_word="dance"),
    }
    request = ApprovalRequest(
        id="r1",
        kind=ApprovalKind.ONBOARDING,
        requester=Recipient("m", "t", "Megan Bowen", "29:m", "https://smba.example/", "28:bot"),
        target_id="u",
        target_label="Lee Gu (LeeG@contoso.onmicrosoft.com)",
        start_at=NOW + timedelta(days=40),
        lifetime_minutes=480,
        one_time=False,
        reason="Onboarding pass requested by Megan Bowen for a new hire.",
        created_at=NOW,
        expires_at=NOW + timedelta(hours=24),
    )
    cards["approval request"] = approval_request_card(request, tz=TOKYO)
    for status in ApprovalStatus:
        decided = request.decided(status, "a", "Alex Wilber", NOW, "welcome")
        cards[f"approval {status.value}"] = decided_request_card(decided, tz=TOKYO, outcome="The requester was told.")
    cards["requests operator"] = requests_card([request] * 25, tz=TOKYO, operator=True, now=NOW)
    cards["requests own, empty"] = requests_card([], tz=TOKYO, operator=False, now=NOW)
    for reason in UsabilityReason:
        cards[f"status {reason.value}"] = status_card(PassStatus(USER, info(reason), NOW), tz=TOKYO)
    for reason in ("handed_over", "expired", "revoked", "replaced"):
        cards[f"redacted {reason}"] = redacted_pass_card(
            target_label=USER.label,
            start_at=NOW,
            expires_at=NOW + timedelta(hours=8),
            one_time=True,
            reason=reason,
            redacted_at=NOW,
            tz=TOKYO,
        )
    cards.update({f"sandbox {name}": with_banner(card) for name, card in list(cards.items())})
    return cards


@pytest.mark.parametrize(("name", "card"), catalogue().items())
def test_card_is_valid_adaptive_card_1_5(name: str, card: CardJson) -> None:
    assert_valid_card(card)


def test_the_secret_is_on_the_pass_card_only() -> None:
    for name, card in catalogue().items():
        assert ("Xy7#kP2q" in str(card)) == (name in ("pass", "sandbox pass")), name


def test_times_show_local_and_utc() -> None:
    assert local_and_utc(NOW, TOKYO) == "Thu 26 Nov 2026, 22:00 (Asia/Tokyo) · 13:00 UTC"
    late = NOW + timedelta(hours=10)
    assert local_and_utc(late, TOKYO) == "Fri 27 Nov 2026, 08:00 (Asia/Tokyo) · Thu 26 Nov 2026, 23:00 UTC"
    assert local_and_utc(NOW, ZoneInfo("UTC")) == "Thu 26 Nov 2026, 13:00 UTC"


def test_validator_rejects_a_broken_card() -> None:
    with pytest.raises(AssertionError):
        assert_valid_card({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlok", "text": "x"}]})
