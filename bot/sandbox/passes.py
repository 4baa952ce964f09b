"""The Temporary Access Passes that exist in the sandbox right now: at most one per user."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from bot.sandbox.tenant import SeededPass

UsabilityReason = Literal["EnabledByPolicy", "DisabledByPolicy", "Expired", "NotYetValid", "OneTimeUsed"]

# Real passes mix letters, digits and symbols.
PASS_ALPHABET = string.ascii_letters + string.digits + "!#$%&*+-=?@"


@dataclass
class IssuedPass:
    id: str
    user_id: str
    created: datetime
    start: datetime
    lifetime_in_minutes: int
    is_usable_once: bool
    used: bool = False
    # Only a digest is kept, so that no state dump or log line can ever contain the pass itself.
    secret_digest: bytes | None = field(default=None, repr=False)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.lifetime_in_minutes)

    def usability(self, now: datetime, allowed_by_policy: bool) -> UsabilityReason:
        if not allowed_by_policy:
            return "DisabledByPolicy"
        if self.used:
            return "OneTimeUsed"
        if now < self.start:
            return "NotYetValid"
        if now >= self.end:
            return "Expired"
        return "EnabledByPolicy"

    def matches_secret(self, candidate: str) -> bool:
        return self.secret_digest is not None and hmac.compare_digest(self.secret_digest, _digest(candidate))


def generate_pass_secret(length: int) -> str:
    return "".join(secrets.choice(PASS_ALPHABET) for _ in range(length))


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


class PassStore:
    def __init__(self, seeded: tuple[SeededPass, ...] = ()) -> None:
        self._by_user: dict[str, IssuedPass] = {
            item.user_id: IssuedPass(
                id=item.id,
                user_id=item.user_id,
                created=item.created,
                start=item.start,
                lifetime_in_minutes=item.lifetime_in_minutes,
                is_usable_once=item.is_usable_once,
                used=item.used,
            )
            for item in seeded
        }

    def of_user(self, user_id: str) -> IssuedPass | None:
        return self._by_user.get(user_id)

    def all(self) -> list[IssuedPass]:
        return list(self._by_user.values())

    def issue(
        self,
        user_id: str,
        *,
        now: datetime,
        start: datetime,
        lifetime_in_minutes: int,
        is_usable_once: bool,
        length: int,
    ) -> tuple[IssuedPass, str]:
        """Creates a pass, silently replacing any existing one (as Graph does); returns pass and secret."""
        secret = generate_pass_secret(length)
        issued = IssuedPass(
            id=str(uuid.uuid4()),
            user_id=user_id,
            created=now,
            start=start,
            lifetime_in_minutes=lifetime_in_minutes,
            is_usable_once=is_usable_once,
            secret_digest=_digest(secret),
        )
        self._by_user[user_id] = issued
        return issued, secret

    def remove(self, user_id: str, pass_id: str) -> bool:
        existing = self._by_user.get(user_id)
        if existing is None or existing.id != pass_id.lower():
            return False
        del self._by_user[user_id]
        return True
