"""Follow-through with delegated writes: the deletion after registration is made as the pass's requester; with no
token of theirs the pass stays, the notice says it is still live and how to revoke it, and the watch keeps watching
so a later round deletes it once they have signed in again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.errors import GraphUnavailable, SignInRequired
from bot.domain.follow_through import FollowThrough, PassWatch, RegisteredMethod, UserMethods, WatchState
from bot.domain.model import PassInfo, UsabilityReason
from tests.domain.test_follow_through import FIDO2, watch

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
PASS = PassInfo(
    method_id="m1",
    created_at=NOW - timedelta(hours=1),
    start_at=NOW - timedelta(hours=1),
    lifetime_minutes=480,
    one_time=False,
    usable=True,
    usability_reason=UsabilityReason.ENABLED_BY_POLICY,
)
WATCHED = watch(
    target_label="Lee Gu (LeeG@contoso.onmicrosoft.com)",
    start_at=PASS.start_at,
    expires_at=PASS.expires_at,
)


class Reads:
    async def methods_and_pass(self, user_id: str) -> UserMethods:
        return UserMethods((RegisteredMethod("f", FIDO2, NOW - timedelta(minutes=5)),), PASS)


class Passes:
    async def current_pass(self, user_id: str) -> PassInfo | None:
        return PASS


class Retirement:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.retired: list[str] = []

    async def retire(self, watch: PassWatch, current: PassInfo, detail: str) -> None:
        if self.error is not None:
            raise self.error
        self.retired.append(current.method_id)


class At:
    def now(self) -> datetime:
        return NOW


def follow(retirement: Retirement) -> FollowThrough:
    return FollowThrough(
        store=None,  # type: ignore[arg-type]  # check() reads no store
        methods=Reads(),
        passes=Passes(),  # type: ignore[arg-type]  # only current_pass is read
        retirement=retirement,
        clock=At(),
        holder="a",
        revoke_multi_use=True,
        zone_of=lambda name: BERLIN,
    )


async def test_without_the_requesters_sign_in_the_pass_stays_and_the_notice_says_how_to_revoke_it() -> None:
    retirement = Retirement(SignInRequired("adele"))
    result = await follow(retirement).check(WATCHED)
    assert retirement.retired == []
    assert result.state is WatchState.WATCHING, "tried again next round"
    assert result.notice == (
        "Lee Gu (LeeG@contoso.onmicrosoft.com) registered a passkey (FIDO2) at 10:25. Their multi-use pass is still "
        "valid until 17:30: I could not delete it, because passes are deleted with your own Entra rights and your "
        "sign-in to tapbot has lapsed. Revoke it with /tap revoke LeeG@contoso.onmicrosoft.com, or sign in to "
        "tapbot again and I will delete it at my next check."
    )


async def test_once_signed_in_again_a_later_round_deletes_it() -> None:
    retirement = Retirement(SignInRequired("adele"))
    first = await follow(retirement).check(WATCHED)
    retirement.error = None
    later = await follow(retirement).check(
        watch(**{**WATCHED.__dict__, "known_method_ids": first.known_method_ids, "notice": first.notice})
    )
    assert retirement.retired == ["m1"]
    assert later.state is WatchState.REGISTERED and "no longer needed, so I deleted it" in (later.notice or "")


async def test_another_failure_still_ends_the_watch_as_before() -> None:
    result = await follow(Retirement(GraphUnavailable("Graph is down."))).check(WATCHED)
    assert result.state is WatchState.REGISTERED
    assert "I could not delete their pass (Graph is down.)" in (result.notice or "")
