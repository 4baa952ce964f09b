"""The small interfaces through which the domain reaches the outside world."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.audit import AuditEvent
from bot.domain.model import Caller, DirectoryUser, IssuedPass, PassInfo, TapPolicy
from bot.domain.records import AuditEntry, PassCard, PersonalConversation, RedactionReason, SignInWait, SignInWaitKind


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class Directory(Protocol):
    """Reads about users, groups, roles and the TAP policy."""

    async def find_user(self, reference: str) -> DirectoryUser | None:
        """A user by object id or user principal name; None when the tenant has no such user."""
        ...

    async def find_users(self, references: Sequence[str]) -> dict[str, DirectoryUser]:
        """Users by object id or user principal name, many per Graph request (up to 15 per request). Keyed by the
        reference lower-cased; references no user has are left out."""
        ...

    async def role_holders(self) -> dict[str, tuple[str, ...]]:
        """Tenant-wide: every user (object id, lower case) who holds or could activate a directory role by any path
        (`directory_roles`' rule), with the same role names `directory_roles` gives that user."""
        ...

    async def group_members(self, group_id: str) -> frozenset[str] | None:
        """Object ids (lower case) of the group's users, nested groups included; None when the group is too large
        to read whole (check its membership user by user with `member_groups`)."""
        ...

    async def search_users(self, text: str, *, limit: int) -> list[DirectoryUser]:
        """At most `limit` users a typed name fits: display name words starting with the text's words, or a given
        name, surname, mail address or user principal name starting with the text. Empty when none."""
        ...

    async def direct_reports(self, manager_id: str) -> list[DirectoryUser]:
        """The users whose manager in the directory is `manager_id`."""
        ...

    async def member_groups(self, user_id: str, group_ids: Iterable[str]) -> frozenset[str]:
        """Which of `group_ids` the user belongs to, nested membership included."""
        ...

    async def directory_roles(self, user_id: str) -> tuple[str, ...]:
        """Names of the directory roles assigned to the user (empty when none)."""
        ...

    async def tap_policy(self) -> TapPolicy: ...

    async def group_name(self, group_id: str) -> str | None:
        """The group's display name; None when it cannot be read."""
        ...


@dataclass(frozen=True)
class TargetReading:
    """What the rules about a target read besides the user: its directory roles (each saying how it is held), which
    of the asked groups it is in, and its current pass."""

    role_names: tuple[str, ...]
    member_group_ids: frozenset[str]
    current_pass: PassInfo | None
    sign_in_methods: tuple[str, ...] | None = None
    """As `Directory.sign_in_methods` gives them, when asked for (`with_methods`); None when not read."""


class TargetReads(Protocol):
    """The target's independent reads together, in as few round trips as the directory allows (Graph: one `$batch`)."""

    async def target_reading(
        self, user_id: str, group_ids: Iterable[str], *, with_methods: bool = False
    ) -> TargetReading:
        """The same facts as `Directory.directory_roles`, `Directory.member_groups` and `PassMethods.current_pass`
        (and with `with_methods`, `Directory.sign_in_methods`, read with the pass), with the same errors."""
        ...


class PassMethods(Protocol):
    """The user's Temporary Access Pass method: at most one per user."""

    async def current_pass(self, user_id: str) -> PassInfo | None: ...

    async def create_pass(
        self,
        user: DirectoryUser,
        *,
        lifetime_minutes: int,
        one_time: bool,
        start_at: datetime | None,
        replacing: PassInfo | None = None,
        max_throttle_wait: timedelta | None = None,
        acting_as: Caller | None = None,
    ) -> IssuedPass:
        """Creates a pass, replacing `replacing` (the user's current pass, if any). Never retried blindly.

        `acting_as`: whose rights make the write when writes are delegated (ignored in application mode). Raises
        SignInRequired before sending anything when no token of theirs is available, EntraRefused on Entra's 403."""
        ...

    async def delete_pass(self, user_id: str, method_id: str, *, acting_as: Caller | None = None) -> str | None:
        """Deletes the pass; returns Graph's request id. Deleting a pass that is already gone is not an error.

        `acting_as` as for `create_pass`."""
        ...


@dataclass(frozen=True)
class DelegatedToken:
    """A person's delegated Graph token, held in memory only; `repr` and `str` never show the value."""

    user_id: str
    value: str = field(repr=False)
    expires_at: datetime


class DelegatedTokens(Protocol):
    """Delegated Graph tokens for the people on whose behalf passes are written (TAPBOT_GRAPH_WRITES=delegated).

    Tokens live in memory only, keyed by the person's object id; the database keeps only how to ask the token service
    for one (their channel account id), never a token."""

    async def token_for(self, actor: Caller) -> DelegatedToken:
        """A token for `actor` that is not about to expire. Raises SignInRequired when none can be had."""
        ...

    async def remember(
        self, actor: Caller, channel_user_id: str, channel_id: str, token: str, expiration: str | None
    ) -> bool:
        """After a sign-in (exchange or verifyState): keeps the token in memory and saves how to get the next one.
        `expiration` is the token service's, as it answered (the implementation reads it, or the token's own).
        False when the token is someone else's (they signed in at a link of the actor's): not kept, and nothing may
        run as if the actor had signed in."""
        ...

    def forget(self, user_id: str) -> None:
        """Drops the cached token of `user_id` (Graph answered 401, or they signed out)."""
        ...


class SignInWaits(Protocol):
    """Actions paused until a person signs in, and how the token service knows each person (no token ever)."""

    async def save_sign_in_wait(self, wait: SignInWait) -> None:
        """Saves the wait, or renews it (created_at, expires_at) when the same (user, kind, ref) already waits."""
        ...

    async def take_sign_in_waits(self, user_id: str, now: datetime) -> list[SignInWait]:
        """The user's unexpired, unconsumed waits, oldest first, each consumed by this call: two replicas never both
        get one."""
        ...

    async def drop_sign_in_waits(self, user_id: str, kind: SignInWaitKind, ref: str) -> None:
        """Forgets the wait (the action was cancelled or done another way); nothing happens when there is none."""
        ...

    async def save_sign_in_user(self, user_id: str, channel_user_id: str, channel_id: str, at: datetime) -> None:
        """How the token service knows `user_id` (their channel account id, e.g. 29:…, and the channel)."""
        ...

    async def sign_in_user(self, user_id: str) -> tuple[str, str] | None:
        """(channel_user_id, channel_id) saved for `user_id`, or None."""
        ...

    async def forget_sign_in_user(self, user_id: str) -> None:
        """`/tap signout`: drops what `save_sign_in_user` saved, so that every replica drops its cached token."""
        ...


class AuditLog(Protocol):
    async def record(self, event: AuditEvent) -> None: ...


class PassWritesSince(Protocol):
    """What the audit log says happened to a user's pass since the bot created it."""

    async def may_have_ended(self, user_id: str, pass_method_id: str) -> bool:
        """Whether the log records a write of the bot that may have ended this pass since its creation: an issue,
        onboarding or revoke for the same user recorded after it (any outcome), or a revoke naming it."""
        ...


class TargetLocks(Protocol):
    """One check-and-create per user at a time, across replicas: a lock that runs out by itself after `ttl`."""

    async def lock_target(self, target_id: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Takes the lock (or one whose time ran out); False while someone else holds it."""
        ...

    async def unlock_target(self, target_id: str, holder: str) -> bool:
        """Gives the lock back; whether `holder` still held it (False: it ran out and another took it, or it is gone,
        and nothing happened)."""
        ...


class Transactions(Protocol):
    """Several store calls as one transaction, where the store can (SQL): fewer commits per command, and writes that
    must stand or fall together do."""

    def together(self) -> AbstractAsyncContextManager[None]:
        """The store calls made inside the block, one after another by the task that opened it, share one
        transaction, committed (durable) when the block ends and rolled back when it raises. Nothing but store calls
        inside: no Graph request, no message to Teams."""
        ...


class AuditTrail(AuditLog, Protocol):
    """The audit log, read back as well (the export reads it; nothing ever changes or deletes an entry)."""

    async def audit_rows(self, since: datetime | None = None) -> Sequence[AuditEntry]:
        """Every entry at or after `since` (all when None), oldest first."""
        ...


class PassCards(Protocol):
    """Where each pass was shown, so the card can be redacted when the pass is handed over, expires or goes."""

    async def save_pass_card(self, card: PassCard) -> None: ...

    async def save_pass_cards(self, cards: Sequence[PassCard]) -> None:
        """Several cards in one transaction."""
        ...

    async def set_card_activity(self, card_id: str, activity_id: str) -> None: ...

    async def pass_card(self, card_id: str) -> PassCard | None: ...

    async def claim_redaction(self, card_id: str, reason: RedactionReason, at: datetime) -> bool:
        """Marks the card redacted; False when it already was (a second click, or another replica)."""
        ...

    async def cards_due_for_redaction(self, now: datetime, limit: int = 50) -> list[PassCard]: ...

    async def unredacted_cards_for_pass(self, pass_method_id: str) -> list[PassCard]: ...

    async def unredacted_cards_for_user(self, target_id: str) -> list[PassCard]: ...


class PersonalConversations(Protocol):
    """The 1:1 chat with each user, remembered so a private message need not create it again."""

    async def save_personal_conversation(self, conversation: PersonalConversation, at: datetime) -> None: ...

    async def personal_conversation(self, user_id: str) -> PersonalConversation | None: ...


class ProcessedActivities(Protocol):
    """Activities already handled: Teams retries a delivery it thinks failed, with the same activity id."""

    async def first_delivery(self, key: str, now: datetime, keep: timedelta) -> bool:
        """Records the activity; False when it was seen before (a retried delivery)."""
        ...


class FileTransfers(Protocol):
    """Fetching a file a user attached and uploading one they accepted (only to allowed hosts, size-capped).

    Both raise TapError with a sentence for the user when the transfer cannot be done.
    """

    async def fetch(self, url: str) -> bytes: ...

    async def upload(self, url: str, data: bytes) -> None: ...
