"""Follow-through: what happens to a pass after it was handed over (issue 12 item 4).

For every live pass the bot issued, housekeeping reads the user's authentication methods now and then. Once the
user has registered a strong method of their own after the pass started, the requester is told once, and a
multi-use pass is deleted (when configured): it has done its job and is only a risk from then on. A pass that
expires without any sign of use is reported too.

What Graph can tell (and what it cannot):
- Every authenticationMethod type carries `createdDateTime` in v1.0, but Microsoft Authenticator's is null unless
  the app is registered for passwordless phone sign-in (microsoftAuthenticatorAuthenticationMethod resource type).
  A strong method without a time counts as new when it was not among the strong methods seen at the first check
  after the pass started; its time is then "by" the check that first saw it.
- Graph keeps no trace of a sign-in with a multi-use pass on the pass itself (only sign-in logs do, which this bot
  does not read). "Unused" therefore means: a one-time pass never seen as OneTimeUsed, or a multi-use pass during
  whose life no new strong method appeared. The notice says exactly that.

Graph's budget: only users with a live pass the bot issued are read, at most CHECKS_PER_ROUND per round, each at
most once per RECHECK_AFTER, the longest-unchecked first; one list request per check (the list holds the pass).
Every watch is claimed with a lease in SQL, so replicas never check or notify the same pass twice at once.

With delegated writes the deletion is made with the rights of the pass's requester (who created it). When no token
of theirs can be had (`SignInRequired`) the pass stays and they are told once that it is still live and how to
revoke it; the watch keeps watching, so a later round deletes it once they have signed in again (the notice, already
delivered, is not sent again).

The same table keeps the passes nobody was shown that could not be deleted when their delivery failed
(`REVOKE_PENDING`, written by TapService.revoke_undelivered): each round tries to delete them again, with the rights
of whoever created them, until they are gone or expired. Nothing reports them revoked before Graph deleted them.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from bot.domain.errors import SignInRequired, TapError
from bot.domain.model import Caller, PassInfo, UsabilityReason
from bot.domain.pacer import Lane, lane
from bot.domain.ports import Clock, PassMethods

logger = logging.getLogger(__name__)

CHECKS_PER_ROUND = 20
"""Users read per housekeeping round (one Graph request each, two when the list lacks the pass)."""
RECHECK_AFTER = timedelta(minutes=5)
"""How long a user's methods are not read again after a check."""
LEASE = timedelta(minutes=2)
"""How long a replica holds a watch it claimed (a check or a notice); then another may take it over."""
NOTICES_PER_ROUND = 50
REVOKE_RETRY_AFTER = timedelta(minutes=1)
"""How soon a pass nobody was shown, whose delete failed, is tried again (it is live: sooner than a check)."""

# The strong methods a user registers for themselves (the reason a pass is handed out), by Graph's @odata.type.
STRONG_METHODS: dict[str, str] = {
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": "Microsoft Authenticator",
    "#microsoft.graph.passwordlessMicrosoftAuthenticatorAuthenticationMethod": "Microsoft Authenticator",
    "#microsoft.graph.fido2AuthenticationMethod": "a passkey (FIDO2)",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "Windows Hello for Business",
    "#microsoft.graph.platformCredentialAuthenticationMethod": "a platform credential (Platform SSO)",
}

ACTOR = "tapbot"


class WatchState(enum.StrEnum):
    WATCHING = "watching"
    REGISTERED = "registered"  # the user registered a strong method: requester told (and a multi-use pass deleted)
    EXPIRED_UNUSED = "expired_unused"
    USED = "used"  # a one-time pass seen as used, then expired: nothing to report
    ENDED = "ended"  # revoked or replaced before its expiry, by someone: nothing to report
    REVOKE_PENDING = "revoke_pending"  # nobody was shown it and its delete failed: deleted again each round


@dataclass(frozen=True)
class RegisteredMethod:
    id: str
    odata_type: str
    created_at: datetime | None

    @property
    def label(self) -> str | None:
        return STRONG_METHODS.get(self.odata_type)


@dataclass(frozen=True)
class UserMethods:
    """One read of a user's methods: the methods, and the user's pass if they hold one."""

    methods: tuple[RegisteredMethod, ...]
    current_pass: PassInfo | None


class MethodReader(Protocol):
    async def methods_and_pass(self, user_id: str) -> UserMethods:
        """The user's authentication methods and their pass (GET /users/{id}/authentication/methods)."""
        ...


@dataclass(frozen=True)
class PassWatch:
    """A live pass the bot issued, watched until it ends; where its requester's 1:1 chat is. Never the pass."""

    pass_method_id: str
    target_id: str
    target_label: str
    requester_id: str
    timezone: str
    service_url: str
    conversation_id: str
    one_time: bool
    start_at: datetime
    expires_at: datetime
    state: WatchState = WatchState.WATCHING
    checked_at: datetime | None = None
    known_method_ids: frozenset[str] | None = None  # strong methods seen at the first check (None: not checked yet)
    seen_used: bool = False
    notice: str | None = None
    notified_at: datetime | None = None


@dataclass(frozen=True)
class CheckResult:
    state: WatchState
    known_method_ids: frozenset[str]
    seen_used: bool
    notice: str | None = None


class PassWatchStore(Protocol):
    async def enroll_live_passes(self, now: datetime) -> int:
        """Starts watching every pass card's pass that is not expired, not revoked or replaced, not yet watched."""
        ...

    async def claim_due_watches(
        self, holder: str, now: datetime, *, checked_before: datetime, limit: int, lease_until: datetime
    ) -> list[PassWatch]:
        """Watches whose pass has started, unchecked since `checked_before`, longest-unchecked first; each claimed
        atomically (a conditional UPDATE per row), so another replica gets the others."""
        ...

    async def save_check(self, pass_method_id: str, holder: str, now: datetime, result: CheckResult) -> bool:
        """Writes a check's result and releases the lease; False when the lease was lost meanwhile."""
        ...

    async def release_watch(self, pass_method_id: str, holder: str) -> None: ...

    async def claim_notices(self, holder: str, now: datetime, *, limit: int, lease_until: datetime) -> list[PassWatch]:
        """Notices not yet delivered, each claimed atomically."""
        ...

    async def notice_delivered(self, pass_method_id: str, holder: str, now: datetime) -> bool: ...

    async def release_notice(self, pass_method_id: str, holder: str) -> None:
        """Lets the next round try the notice again (delivery failed)."""
        ...


class UndeliveredPasses(Protocol):
    async def watch_undelivered(self, watch: PassWatch, now: datetime) -> None:
        """Keeps a pass nobody was shown, whose delete failed, for housekeeping to delete (state REVOKE_PENDING).
        `requester_id` is whoever created it: their rights delete it when writes are delegated."""
        ...


class PendingRevokes(UndeliveredPasses, Protocol):
    async def claim_due_revokes(
        self, holder: str, now: datetime, *, tried_before: datetime, limit: int, lease_until: datetime
    ) -> list[PassWatch]:
        """REVOKE_PENDING watches not tried since `tried_before`, each claimed atomically like a check."""
        ...

    async def save_revoke_attempt(self, pass_method_id: str, holder: str, now: datetime, state: WatchState) -> bool:
        """Writes the attempt's outcome (REVOKE_PENDING again, or ENDED) and releases the lease."""
        ...


class PassRetirement(Protocol):
    async def retire(self, watch: PassWatch, current: PassInfo, detail: str) -> None:
        """Deletes the pass through the revoke path (audited) and hides its cards with the reason."""
        ...


def new_strong_method(watch: PassWatch, methods: tuple[RegisteredMethod, ...]) -> RegisteredMethod | None:
    """The earliest strong method registered after the pass started (see the module's note on null times)."""
    candidates: list[RegisteredMethod] = []
    for method in methods:
        if method.label is None:
            continue
        if method.created_at is not None:
            if method.created_at >= watch.start_at:
                candidates.append(method)
        elif watch.known_method_ids is not None and method.id not in watch.known_method_ids:
            candidates.append(method)
    if not candidates:
        return None
    far = watch.expires_at + timedelta(days=365)
    return min(candidates, key=lambda method: method.created_at or far)


def local_time(at: datetime, zone: tzinfo, now: datetime) -> str:
    """09:12, or 'on 28 Nov at 09:12' when it is not the same local day as now."""
    local = at.astimezone(zone)
    clock = local.strftime("%H:%M")
    if local.date() != now.astimezone(zone).date():
        return f"on {local.day} {local.strftime('%b')} at {clock}"
    return f"at {clock}"


def registered_sentence(
    watch: PassWatch, method: RegisteredMethod, *, at: datetime, zone: tzinfo, now: datetime, pass_outcome: str
) -> str:
    when = local_time(method.created_at or at, zone, now)
    if method.created_at is None:
        when = "by " + when.removeprefix("at ")
    label = method.label or "a sign-in method"
    return f"{watch.target_label} registered {label} {when}. {pass_outcome}".strip()


def expired_unused_sentence(watch: PassWatch, *, zone: tzinfo, now: datetime) -> str:
    when = local_time(watch.expires_at, zone, now)
    if watch.one_time:
        return (
            f"The one-time pass for {watch.target_label} expired {when} without being used "
            "(Microsoft Graph never showed it as used). If they still need to sign in, issue a new one."
        )
    return (
        f"The pass for {watch.target_label} expired {when} and no new sign-in method was registered while it was "
        "valid (Graph does not say whether it was used to sign in). If they still need one, issue a new pass."
    )


class FollowThrough:
    def __init__(
        self,
        *,
        store: PassWatchStore,
        methods: MethodReader,
        pending_revokes: PendingRevokes | None = None,
        passes: PassMethods,
        retirement: PassRetirement,
        clock: Clock,
        holder: str,
        revoke_multi_use: bool,
        zone_of: ZoneLookup,
        checks_per_round: int = CHECKS_PER_ROUND,
        recheck_after: timedelta = RECHECK_AFTER,
    ) -> None:
        self._store = store
        self._pending_revokes = pending_revokes
        self._methods = methods
        self._passes = passes
        self._retirement = retirement
        self._clock = clock
        self._holder = holder
        self._revoke_multi_use = revoke_multi_use
        self._zone_of = zone_of
        self._checks_per_round = checks_per_round
        self._recheck_after = recheck_after

    async def check_round(self) -> int:
        """Enrols new passes, then checks at most `checks_per_round` users; returns how many were checked."""
        now = self._clock.now()
        await self._store.enroll_live_passes(now)
        watches = await self._store.claim_due_watches(
            self._holder,
            now,
            checked_before=now - self._recheck_after,
            limit=self._checks_per_round,
            lease_until=now + LEASE,
        )
        checked = 0
        for watch in watches:
            try:
                with lane(Lane.BULK):  # background reads: low priority, never ahead of a technician's command
                    result = await self.check(watch)
            except TapError as error:
                # Graph refused or was unreachable: the watch is checked again next round.
                logger.warning("follow-through could not read the methods of %s: %s", watch.target_id, error)
                await self._store.release_watch(watch.pass_method_id, self._holder)
                continue
            if await self._store.save_check(watch.pass_method_id, self._holder, self._clock.now(), result):
                checked += 1
        return checked

    async def revoke_round(self) -> int:
        """Tries again to delete each pass nobody was shown whose delete failed (TapService.revoke_undelivered);
        returns how many are now gone (deleted here or by someone) or expired."""
        if self._pending_revokes is None:
            return 0
        now = self._clock.now()
        watches = await self._pending_revokes.claim_due_revokes(
            self._holder,
            now,
            tried_before=now - REVOKE_RETRY_AFTER,
            limit=self._checks_per_round,
            lease_until=now + LEASE,
        )
        ended = 0
        for watch in watches:
            state = await self._revoke_again(watch)
            saved = await self._pending_revokes.save_revoke_attempt(
                watch.pass_method_id, self._holder, self._clock.now(), state
            )
            ended += saved and state is WatchState.ENDED
        return ended

    async def _revoke_again(self, watch: PassWatch) -> WatchState:
        try:
            with lane(Lane.BULK):
                current = await self._passes.current_pass(watch.target_id)
        except TapError as error:
            logger.warning(
                "could not read the pass of %s to delete it again: %s", watch.target_id, type(error).__name__
            )
            return WatchState.REVOKE_PENDING
        if current is None or current.method_id != watch.pass_method_id or not current.is_live(self._clock.now()):
            return WatchState.ENDED  # deleted or replaced by someone (audited there), or expired
        try:
            with lane(Lane.BULK):
                await self._retirement.retire(
                    watch, current, f"deleted by housekeeping: nobody was shown this pass (pass {current.method_id})"
                )
        except TapError as error:
            logger.warning(
                "the pass of %s that nobody was shown is still live: its delete failed again (%s); retrying later",
                watch.target_id,
                type(error).__name__,
            )
            return WatchState.REVOKE_PENDING
        logger.info("deleted the pass of %s that nobody was shown", watch.target_id)
        return WatchState.ENDED

    async def check(self, watch: PassWatch) -> CheckResult:
        read = await self._methods.methods_and_pass(watch.target_id)
        now = self._clock.now()
        strong_ids = frozenset(method.id for method in read.methods if method.label is not None)
        known = watch.known_method_ids if watch.known_method_ids is not None else strong_ids
        ours = read.current_pass if read.current_pass and read.current_pass.method_id == watch.pass_method_id else None
        seen_used = watch.seen_used or (ours is not None and ours.usability_reason is UsabilityReason.ONE_TIME_USED)
        found = new_strong_method(watch, read.methods)
        zone = self._zone_of(watch.timezone)
        if found is not None:
            try:
                outcome = await self._after_registration(watch, ours, now, zone)
                state = WatchState.REGISTERED
            except SignInRequired:
                outcome = _still_live(watch, ours, now, zone)
                state = WatchState.WATCHING  # the deletion is tried again next round; the notice goes once
            sentence = registered_sentence(watch, found, at=now, zone=zone, now=now, pass_outcome=outcome)
            return CheckResult(state, known | strong_ids, seen_used, sentence)
        if ours is None:
            # Deleted or replaced by someone (Graph keeps an expired pass listed until it is deleted): whoever did
            # it knows; a one-time pass seen used before it went is simply done.
            return CheckResult(WatchState.USED if seen_used else WatchState.ENDED, known, seen_used)
        if now >= watch.expires_at:
            if watch.one_time and seen_used:
                return CheckResult(WatchState.USED, known, seen_used)
            return CheckResult(
                WatchState.EXPIRED_UNUSED, known, seen_used, expired_unused_sentence(watch, zone=zone, now=now)
            )
        return CheckResult(WatchState.WATCHING, known, seen_used)

    async def _after_registration(self, watch: PassWatch, ours: PassInfo | None, now: datetime, zone: tzinfo) -> str:
        if ours is None or not ours.is_live(now):
            return ""
        until = local_time(ours.expires_at, zone, now).removeprefix("at ").removeprefix("on ")
        if watch.one_time:
            return ""
        if not self._revoke_multi_use:
            return f"Their multi-use pass stays valid until {until}; revoke it if it is no longer needed."
        # Re-read right before deleting: only the very pass the bot issued is deleted, never one issued since.
        try:
            current = await self._passes.current_pass(watch.target_id)
        except TapError as error:
            return f"I could not delete their pass ({error.user_message}); revoke it if it is no longer needed."
        if current is None or current.method_id != watch.pass_method_id:
            return ""
        try:
            await self._retirement.retire(
                watch, current, f"deleted after the user registered their own sign-in method (pass {current.method_id})"
            )
        except SignInRequired:
            raise
        except TapError as error:
            return f"I could not delete their pass ({error.user_message}); revoke it if it is no longer needed."
        return "Their multi-use pass is no longer needed, so I deleted it."


def _still_live(watch: PassWatch, ours: PassInfo | None, now: datetime, zone: tzinfo) -> str:
    """The notice when the requester's token is gone: the pass is still live, and how to end it."""
    until = (
        local_time(ours.expires_at, zone, now).removeprefix("at ").removeprefix("on ")
        if ours is not None
        else local_time(watch.expires_at, zone, now).removeprefix("at ").removeprefix("on ")
    )
    return (
        f"Their multi-use pass is still valid until {until}: I could not delete it, because passes are deleted with "
        f"your own Entra rights and your sign-in to tapbot has lapsed. Revoke it with /tap revoke {_upn(watch)}, or "
        "sign in to tapbot again and I will delete it at my next check."
    )


def _upn(watch: PassWatch) -> str:
    """The user's principal name from the label people read ('Megan Bowen (megan@contoso.com)'), else their id."""
    label = watch.target_label
    if label.endswith(")") and "(" in label:
        return label[label.rindex("(") + 1 : -1]
    return label if "@" in label and " " not in label else watch.target_id


class ZoneLookup(Protocol):
    def __call__(self, name: str) -> tzinfo: ...


def follow_through_caller() -> Caller:
    """The actor of a deletion the bot decides itself (audit rows name it)."""
    return Caller(ACTOR, "", ACTOR)
