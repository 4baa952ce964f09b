"""Follow-through's rules without I/O: which method counts as the user's own new one, and how times are said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.follow_through import (
    FollowThrough,
    PassWatch,
    RegisteredMethod,
    UserMethods,
    expired_unused_sentence,
    local_time,
    new_strong_method,
    registered_sentence,
)
from bot.domain.model import PassInfo, UsabilityReason

START = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
AUTHENTICATOR = "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod"
FIDO2 = "#microsoft.graph.fido2AuthenticationMethod"
HELLO = "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod"
PHONE = "#microsoft.graph.phoneAuthenticationMethod"


def watch(**changes: object) -> PassWatch:
    base = PassWatch(
        pass_method_id="m1",
        target_id="lee",
        target_label="Lee Gu",
        requester_id="adele",
        timezone="Europe/Berlin",
        service_url="https://smba.example/",
        conversation_id="a:1",
        one_time=False,
        start_at=START,
        expires_at=START + timedelta(hours=8),
    )
    return PassWatch(**{**base.__dict__, **changes})


def test_only_strong_methods_created_at_or_after_the_start_count() -> None:
    before = RegisteredMethod("a", HELLO, START - timedelta(seconds=1))
    phone = RegisteredMethod("p", PHONE, START + timedelta(minutes=5))
    assert new_strong_method(watch(), (before, phone)) is None
    at_start = RegisteredMethod("f", FIDO2, START)
    later = RegisteredMethod("h", HELLO, START + timedelta(minutes=9))
    assert new_strong_method(watch(), (later, before, at_start)) == at_start, "the earliest"


def test_a_method_without_a_time_counts_only_when_the_first_check_did_not_see_it() -> None:
    timeless = RegisteredMethod("auth-2", AUTHENTICATOR, None)
    assert new_strong_method(watch(), (timeless,)) is None, "no first check yet: it may be older than the pass"
    assert new_strong_method(watch(known_method_ids=frozenset({"auth-2"})), (timeless,)) is None
    assert new_strong_method(watch(known_method_ids=frozenset({"auth-1"})), (timeless,)) == timeless
    dated = RegisteredMethod("f", FIDO2, START + timedelta(hours=1))
    assert new_strong_method(watch(known_method_ids=frozenset({"auth-1"})), (timeless, dated)) == dated


def test_times_are_said_in_the_requesters_zone_with_the_day_when_it_is_not_today() -> None:
    now = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    assert local_time(datetime(2026, 11, 28, 8, 12, tzinfo=UTC), BERLIN, now) == "at 09:12"
    assert local_time(datetime(2026, 11, 27, 8, 12, tzinfo=UTC), BERLIN, now) == "on 27 Nov at 09:12"


def test_the_sentences_name_the_user_the_method_and_what_became_of_the_pass() -> None:
    now = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    method = RegisteredMethod("a", AUTHENTICATOR, datetime(2026, 11, 28, 8, 12, tzinfo=UTC))
    sentence = registered_sentence(watch(), method, at=now, zone=BERLIN, now=now, pass_outcome="Deleted.")
    assert sentence == "Lee Gu registered Microsoft Authenticator at 09:12. Deleted."
    timeless = RegisteredMethod("b", AUTHENTICATOR, None)
    assert "registered Microsoft Authenticator by 10:30." in registered_sentence(
        watch(), timeless, at=now, zone=BERLIN, now=now, pass_outcome=""
    )
    late = START + timedelta(hours=9)
    assert "one-time pass for Lee Gu expired at 17:00 without being used" in expired_unused_sentence(
        watch(one_time=True, expires_at=START + timedelta(hours=8)), zone=BERLIN, now=late
    )


async def test_a_kept_pass_says_until_when_with_the_day_when_it_is_not_today() -> None:
    """TAPBOT_REVOKE_AFTER_REGISTRATION=false: the sentence names the expiry, readable on another day too."""
    now = datetime(2026, 11, 28, 22, 30, tzinfo=UTC)
    pass_info = PassInfo(
        method_id="m1",
        created_at=now - timedelta(hours=1),
        start_at=now - timedelta(hours=1),
        lifetime_minutes=180,
        one_time=False,
        usable=True,
        usability_reason=UsabilityReason.ENABLED_BY_POLICY,
    )
    method = RegisteredMethod("f", FIDO2, now - timedelta(minutes=5))
    follow = FollowThrough(
        store=None,  # type: ignore[arg-type]  # check() reads no store
        methods=_Reads(UserMethods((method,), pass_info)),
        passes=None,  # type: ignore[arg-type]  # nothing is deleted with the setting off
        retirement=None,  # type: ignore[arg-type]
        clock=_At(now),
        holder="a",
        revoke_multi_use=False,
        zone_of=lambda name: BERLIN,
    )
    result = await follow.check(watch(start_at=now - timedelta(hours=1), expires_at=pass_info.expires_at))
    assert result.notice is not None
    assert "stays valid until 29 Nov at 01:30; revoke it" in result.notice


class _Reads:
    def __init__(self, answer: UserMethods) -> None:
        self._answer = answer

    async def methods_and_pass(self, user_id: str) -> UserMethods:
        return self._answer


class _At:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now
