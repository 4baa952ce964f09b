"""Microsoft Entra Verified ID with Face Check: what the bot asks the Request Service for, and what it keeps.

The bot asks for a `VerifiedEmployee` credential issued by the tenant's own authority, constrained to the target's
user principal name (`revocationId`), with Face Check at a threshold. The service calls back with what the wallet
presented; `presentation_refusal` decides whether that presentation provably is the target (the directory look-up of
`revocationId` to an object id is the last step and happens in the caller, which has the directory).

No token, no callback secret (only its hash) and no pass value is ever held in these records.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

VERIFIED_EMPLOYEE = "VerifiedEmployee"
MIN_THRESHOLD = 50
MAX_THRESHOLD = 100
DEFAULT_THRESHOLD = 70


class VerifiedIdStatus(enum.StrEnum):
    CREATED = "created"  # the request exists; nobody has opened its link or QR code yet
    SCANNED = "scanned"  # the wallet retrieved the request (request_retrieved)
    VERIFIED = "verified"  # an accepted presentation of the target
    FAILED = "failed"  # a refused presentation or a presentation_error
    EXPIRED = "expired"  # the bot's own expiry passed first (the service sends nothing when it expires)
    CANCELLED = "cancelled"  # the verification it served ended some other way (cancelled, expired by the core)

    @property
    def is_open(self) -> bool:
        return self in (VerifiedIdStatus.CREATED, VerifiedIdStatus.SCANNED)


OPEN_STATUSES = (VerifiedIdStatus.CREATED, VerifiedIdStatus.SCANNED)


@dataclass(frozen=True)
class VerifiedIdRequest:
    """One presentation request the bot created for a verification (one at most per verification)."""

    verification_id: str
    state: str  # the callback's correlation id: random, and useless without the api-key secret
    secret_hash: str  # SHA-256 of the per-request api-key secret, hex
    requester_id: str
    target_id: str
    target_upn: str  # the constraint on revocationId; the callback's claim is resolved to an object id all the same
    authority: str
    threshold: int
    created_at: datetime
    expires_at: datetime
    request_id: str | None = None  # the Request Service's requestId
    url: str | None = None  # openid-vc://… : what the QR code and the link carry
    status: VerifiedIdStatus = VerifiedIdStatus.CREATED
    scanned_at: datetime | None = None
    finished_at: datetime | None = None
    detail: str = ""  # why it failed, as a sentence
    score: float | None = None  # Face Check's matchConfidenceScore of an accepted presentation


def new_state() -> str:
    return secrets.token_urlsafe(24)


def new_callback_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(offered: str | None, stored_hash: str) -> bool:
    """Constant-time comparison of the offered api-key (hashed) with the stored hash."""
    offered_hash = secret_hash(offered or "")
    return hmac.compare_digest(offered_hash.encode("ascii"), stored_hash.encode("ascii")) and bool(offered)


@dataclass(frozen=True)
class PresentationSpec:
    """What the bot asks the Request Service for (createPresentationRequest)."""

    authority: str  # the tenant's own verifier/issuer DID: also the only accepted issuer
    target_upn: str
    threshold: int
    callback_url: str
    state: str
    callback_secret: str
    client_name: str = "tapbot"
    purpose: str = "Prove to the help desk that you are the person asking for a Temporary Access Pass."

    def __repr__(self) -> str:
        return f"PresentationSpec(authority={self.authority!r}, state=…, threshold={self.threshold})"


@dataclass(frozen=True)
class CreatedPresentation:
    request_id: str
    url: str
    expires_at: datetime
    qr_code: str | None = None  # a PNG data URI, only when the service drew it


class PresentationRequests(Protocol):
    """The Verified ID Request Service."""

    async def create_presentation(self, spec: PresentationSpec) -> CreatedPresentation:
        """Creates a presentation request; raises VerifiedIdUnavailable with a sentence when the service refuses."""
        ...


class VerifiedIdUnavailable(Exception):
    """The Request Service refused or could not be reached; the message is a sentence for the technician."""


class VerifiedIdRequests(Protocol):
    """Where the bot keeps its presentation requests (SQL: survives a restart)."""

    async def save_verified_id_request(self, request: VerifiedIdRequest) -> None: ...

    async def verified_id_request(self, verification_id: str) -> VerifiedIdRequest | None: ...

    async def verified_id_request_by_state(self, state: str) -> VerifiedIdRequest | None: ...

    async def mark_verified_id_scanned(self, verification_id: str, at: datetime) -> bool:
        """created -> scanned; False when it was not `created` any more."""
        ...

    async def finish_verified_id_request(
        self,
        verification_id: str,
        status: VerifiedIdStatus,
        at: datetime,
        *,
        detail: str = "",
        score: float | None = None,
    ) -> bool:
        """An open request (created or scanned) -> `status`; False when it was already finished (exactly one wins)."""
        ...

    async def verified_id_requests_due(self, now: datetime, limit: int = 50) -> list[VerifiedIdRequest]:
        """Open requests whose expiry has passed."""
        ...


# --- the presentation as the callback carries it ---------------------------------------------------------------


@dataclass(frozen=True)
class PresentedCredential:
    issuer: str | None
    types: tuple[str, ...]
    revocation_id: str | None  # claims.revocationId: the user principal name at issuance
    revocation_status: str | None  # credentialState.revocationStatus
    score: float | None  # faceCheck.matchConfidenceScore


@dataclass(frozen=True)
class Presentation:
    credentials: tuple[PresentedCredential, ...]


def read_presentation(body: Mapping[str, object]) -> Presentation:
    """The credentials of a presentation_verified callback; anything missing or of the wrong type reads as None."""
    raw = body.get("verifiedCredentialsData")
    items = raw if isinstance(raw, list) else []
    credentials: list[PresentedCredential] = []
    for item in items:
        data: Mapping[str, object] = item if isinstance(item, dict) else {}
        types = data.get("type")
        claims = data.get("claims")
        claims = claims if isinstance(claims, dict) else {}
        state = data.get("credentialState")
        state = state if isinstance(state, dict) else {}
        face = data.get("faceCheck")
        face = face if isinstance(face, dict) else {}
        score = face.get("matchConfidenceScore")
        credentials.append(
            PresentedCredential(
                issuer=_text(data.get("issuer")),
                types=tuple(kind for kind in types if isinstance(kind, str)) if isinstance(types, list) else (),
                revocation_id=_text(claims.get("revocationId")),
                revocation_status=_text(state.get("revocationStatus")),
                score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
            )
        )
    return Presentation(tuple(credentials))


def presentation_refusal(presentation: Presentation, request: VerifiedIdRequest) -> str | None:
    """Why the presentation is not acceptable (a sentence), or None when every check the callback can make holds.

    The caller still resolves `revocation_id` through the directory and requires the target's object id.
    """
    if len(presentation.credentials) != 1:
        return f"The presentation held {len(presentation.credentials)} credentials instead of exactly one."
    credential = presentation.credentials[0]
    if VERIFIED_EMPLOYEE not in credential.types:
        return "The presented credential is not a VerifiedEmployee credential."
    if credential.issuer != request.authority:
        return "The presented credential was not issued by this organisation's own Verified ID authority."
    if credential.revocation_status != "VALID":
        return "The presented credential is not valid (it was revoked, or its state is unknown)."
    if credential.score is None:
        return "The presentation carried no Face Check score."
    if credential.score < request.threshold:
        return f"The Face Check score was below the required {request.threshold}."
    if not credential.revocation_id:
        return "The presented credential names no user (no revocationId claim)."
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
