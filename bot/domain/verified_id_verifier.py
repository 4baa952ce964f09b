"""Verified ID with Face Check as a verification method: starting a presentation request, and judging its callbacks.

`begin` asks the Request Service for the target's VerifiedEmployee credential (own authority only, revocationId =
their UPN, Face Check at the threshold) with a fresh callback state and a fresh api-key secret, of which only the hash
is kept. `on_callback` takes what the service POSTs back: the api-key must match in constant time (else 401), the
state must name a request (else 400); then

- request_retrieved: the verification shows "scanned";
- presentation_verified: accepted only when the state is an open request of a pending verification, exactly one
  credential, of type VerifiedEmployee, issued by the tenant's own authority, revocation status VALID, Face Check
  score at or above the threshold, and its revocationId resolves in the directory to the target's object id (never a
  name or mail comparison); then the verification is complete. Anything else fails it (with a security alert);
- presentation_error: the verification fails (with an alert);
- a callback for a request already finished, expired or cancelled (replayed, duplicate, late) is refused and audited,
  and nothing changes.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.auditing import Auditor
from bot.domain.errors import Refused, Rule, TapError
from bot.domain.model import Caller, Evidence
from bot.domain.ports import AuditLog, Clock, Directory
from bot.domain.verification import Verification, VerificationMethod, VerificationService
from bot.domain.verified_id import (
    PresentationRequests,
    PresentationSpec,
    VerifiedIdRequest,
    VerifiedIdRequests,
    VerifiedIdStatus,
    VerifiedIdUnavailable,
    new_callback_secret,
    new_state,
    presentation_refusal,
    read_presentation,
    secret_hash,
    secret_matches,
)

logger = logging.getLogger(__name__)

SERVICE_ACTOR = Caller("verified-id", "", "Microsoft Entra Verified ID")
SCANNED = "scanned"
MAX_STATE_LENGTH = 64


@dataclass(frozen=True)
class VerifiedIdConfig:
    authority: str  # the tenant's own Verified ID authority (DID): the only issuer accepted
    threshold: int  # Face Check's matchConfidenceThreshold, 50..100
    callback_url: Callable[[], str | None]  # the public address of POST /api/verifiedid/callback (None: not known yet)


class CallbackEffect(enum.Enum):
    NONE = "none"  # nothing changed (refused, or nothing to do)
    PROGRESSED = "progressed"  # the verification shows progress (scanned)
    SETTLED = "settled"  # the verification ended (confirmed or failed)


@dataclass(frozen=True)
class CallbackAnswer:
    status: int  # the HTTP status to answer the service with
    message: str  # for the log and the error body: never a secret
    effect: CallbackEffect = CallbackEffect.NONE
    verification: Verification | None = None


class VerifiedIdVerifier:
    def __init__(
        self,
        *,
        config: VerifiedIdConfig,
        service: PresentationRequests,
        requests: VerifiedIdRequests,
        verifications: VerificationService,
        directory: Directory,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._config = config
        self._service = service
        self._requests = requests
        self._verifications = verifications
        self._directory = directory
        self._clock = clock
        self._auditor = Auditor(audit, clock)

    # --- starting ------------------------------------------------------------------------------------------

    async def begin(self, verification: Verification) -> VerifiedIdRequest:
        """Creates the presentation request of a pending Verified ID verification. On a refusal the verification is
        failed (no alert: nobody presented anything) and VerifiedIdUnavailable says why."""
        if verification.method is not VerificationMethod.VERIFIED_ID or not verification.is_pending:
            raise Refused(Rule.VERIFICATION_NOT_USABLE, "This verification is not waiting for Verified ID.")
        try:
            return await self._begin(verification)
        except (VerifiedIdUnavailable, TapError) as error:
            why = str(error) if isinstance(error, VerifiedIdUnavailable) else error.user_message
            await self._verifications.fail(verification.id, f"Verified ID could not be started: {why}", alert=False)
            if isinstance(error, VerifiedIdUnavailable):
                raise
            raise VerifiedIdUnavailable(why) from None

    async def _begin(self, verification: Verification) -> VerifiedIdRequest:
        callback_url = self._config.callback_url()
        if not callback_url:
            raise VerifiedIdUnavailable(
                "The bot does not know its own public address for Verified ID's answer yet "
                "(TAPBOT_VERIFIED_ID_CALLBACK_URL); try again in a moment."
            )
        user = await self._directory.find_user(verification.target_id)
        if user is None or user.object_id.lower() != verification.target_id.lower():
            raise VerifiedIdUnavailable(f"{verification.target_label} is no longer in the directory.")
        secret = new_callback_secret()
        now = self._clock.now()
        record = VerifiedIdRequest(
            verification_id=verification.id,
            state=new_state(),
            secret_hash=secret_hash(secret),
            requester_id=verification.requester.object_id,
            target_id=verification.target_id,
            target_upn=user.user_principal_name,
            authority=self._config.authority,
            threshold=self._config.threshold,
            created_at=now,
            expires_at=verification.expires_at,
        )
        await self._requests.save_verified_id_request(record)  # before the service can call back
        try:
            created = await self._service.create_presentation(
                PresentationSpec(
                    authority=record.authority,
                    target_upn=record.target_upn,
                    threshold=record.threshold,
                    callback_url=callback_url,
                    state=record.state,
                    callback_secret=secret,
                )
            )
        except VerifiedIdUnavailable as error:
            await self._requests.finish_verified_id_request(
                verification.id, VerifiedIdStatus.FAILED, self._clock.now(), detail=str(error)
            )
            raise
        # The bot keeps the expiry itself (the service sends nothing when its request runs out).
        record = replace(
            record,
            request_id=created.request_id,
            url=created.url,
            expires_at=min(created.expires_at, verification.expires_at),
        )
        await self._requests.save_verified_id_request(record)
        await self._verifications.remember_external(verification.id, created.request_id, created.url)
        await self._auditor.record(
            AuditAction.VERIFICATION,
            AuditOutcome.NEEDS_CONFIRMATION,
            verification.requester_caller,
            target=verification.target_label,
            detail=f"verification {verification.id}: Verified ID presentation request {created.request_id} created "
            f"(Face Check threshold {record.threshold})",
            verification_id=verification.id,
        )
        return record

    # --- callbacks -----------------------------------------------------------------------------------------

    async def on_callback(self, api_key: str | None, body: Mapping[str, object]) -> CallbackAnswer:
        state = body.get("state")
        if not isinstance(state, str) or not state or len(state) > MAX_STATE_LENGTH:
            return CallbackAnswer(400, "The callback carries no state.")
        record = await self._requests.verified_id_request_by_state(state)
        if record is None:
            logger.warning("verified id: callback with an unknown state refused")
            return CallbackAnswer(400, "Unknown state.")
        verification = await self._verifications.get(record.verification_id)
        if not secret_matches(api_key, record.secret_hash):
            await self._refused(record, verification, "callback refused: missing or wrong api-key")
            return CallbackAnswer(401, "Missing or wrong api-key.")
        status = body.get("requestStatus")
        if status not in ("request_retrieved", "presentation_verified", "presentation_error"):
            await self._refused(record, verification, f"callback refused: unknown requestStatus {str(status)[:40]!r}")
            return CallbackAnswer(400, "Unknown requestStatus.")
        if record.request_id is not None and body.get("requestId") != record.request_id:
            await self._refused(record, verification, f"{status} refused: its requestId is not the request's")
            return CallbackAnswer(400, "The requestId does not match the state.")
        late = self._late(record, verification)
        if late is not None:
            await self._refused(record, verification, f"{status} refused: {late}")
            return CallbackAnswer(409, late[0].upper() + late[1:] + ".")
        assert verification is not None  # _late says so when it is missing
        if status == "request_retrieved":
            return await self._scanned(record, verification)
        if status == "presentation_error":
            return await self._service_error(record, body)
        return await self._presented(record, verification, body)

    def _late(self, record: VerifiedIdRequest, verification: Verification | None) -> str | None:
        if verification is None:
            return "the verification no longer exists"
        if not record.status.is_open:
            return f"the request is already {record.status.value}"
        if not verification.is_pending:
            return f"the verification is already {verification.state.value}"
        if self._clock.now() >= record.expires_at:
            return "the request has expired"
        return None

    async def _scanned(self, record: VerifiedIdRequest, verification: Verification) -> CallbackAnswer:
        if not await self._requests.mark_verified_id_scanned(record.verification_id, self._clock.now()):
            await self._refused(record, verification, "request_retrieved refused: the request was already scanned")
            return CallbackAnswer(409, "The request was already retrieved.")
        progressed = await self._verifications.mark_progress(record.verification_id, SCANNED)
        await self._auditor.record(
            AuditAction.VERIFICATION,
            AuditOutcome.NEEDS_CONFIRMATION,
            SERVICE_ACTOR,
            target=verification.target_label,
            detail=f"verification {verification.id}: the Verified ID request was opened (scanned)",
            verification_id=verification.id,
        )
        if progressed is None:
            return CallbackAnswer(200, "Scanned, but the verification is no longer pending.")
        return CallbackAnswer(200, "Scanned.", CallbackEffect.PROGRESSED, progressed)

    async def _service_error(self, record: VerifiedIdRequest, body: Mapping[str, object]) -> CallbackAnswer:
        error = body.get("error")
        error = error if isinstance(error, dict) else {}
        code, message = str(error.get("code") or "unknown")[:60], str(error.get("message") or "")[:300]
        if code == "claimValidationError":
            why = f"the Face Check did not match well enough (below {record.threshold})"
        else:
            why = f"Verified ID reported {code}" + (f": {message}" if message else "")
        return await self._fail(record, why)

    async def _presented(
        self, record: VerifiedIdRequest, verification: Verification, body: Mapping[str, object]
    ) -> CallbackAnswer:
        presentation = read_presentation(body)
        refusal = presentation_refusal(presentation, record)
        if refusal is None:
            refusal = await self._subject_refusal(presentation.credentials[0].revocation_id or "", record)
        if refusal is not None:
            return await self._fail(record, refusal)
        score = presentation.credentials[0].score
        now = self._clock.now()
        if not await self._requests.finish_verified_id_request(
            record.verification_id, VerifiedIdStatus.VERIFIED, now, detail="presentation accepted", score=score
        ):
            await self._refused(record, verification, "presentation_verified refused: the request was already finished")
            return CallbackAnswer(409, "The request was already finished.")
        label = f"Microsoft Entra Verified ID with Face Check (threshold {record.threshold})"
        completed = await self._verifications.complete(
            record.verification_id,
            Evidence(
                VerificationMethod.VERIFIED_ID.value, record.request_id or record.verification_id, label, now, score
            ),
        )
        if completed is None:
            await self._refused(record, verification, "presentation_verified came after the verification ended")
            return CallbackAnswer(409, "The verification had already ended.")
        return CallbackAnswer(200, "Verified.", CallbackEffect.SETTLED, completed)

    async def _subject_refusal(self, revocation_id: str, record: VerifiedIdRequest) -> str | None:
        """The credential's revocationId resolved through the directory: it must be the target's object id."""
        try:
            user = await self._directory.find_user(revocation_id)
        except TapError:  # Graph unavailable or refusing: nobody is accepted unseen
            return "the directory could not be read to check who presented the credential"
        if user is None:
            return "the presented credential names nobody in this directory"
        if user.object_id.lower() != record.target_id.lower():
            return f"the presented credential belongs to someone else ({user.label}), not the person asked for"
        return None

    async def _fail(self, record: VerifiedIdRequest, why: str) -> CallbackAnswer:
        if not await self._requests.finish_verified_id_request(
            record.verification_id, VerifiedIdStatus.FAILED, self._clock.now(), detail=why[:1000]
        ):
            verification = await self._verifications.get(record.verification_id)
            await self._refused(record, verification, "callback refused: the request was already finished")
            return CallbackAnswer(409, "The request was already finished.")
        failed = await self._verifications.fail(record.verification_id, f"Verified ID: {why}", alert=True)
        if failed is None:
            return CallbackAnswer(200, "Failed, but the verification had already ended.")
        return CallbackAnswer(200, "Failed.", CallbackEffect.SETTLED, failed)

    async def _refused(self, record: VerifiedIdRequest, verification: Verification | None, why: str) -> None:
        logger.warning("verified id: %s (verification %s)", why, record.verification_id)
        await self._auditor.record(
            AuditAction.VERIFICATION,
            AuditOutcome.REFUSED,
            SERVICE_ACTOR,
            target=verification.target_label if verification else record.target_upn,
            rule=Rule.VERIFICATION_NOT_USABLE,
            detail=f"verification {record.verification_id}: Verified ID {why}"[:2000],
            verification_id=record.verification_id,
        )

    # --- housekeeping ----------------------------------------------------------------------------------------

    async def expire_due(self) -> list[Verification]:
        """Open requests past their expiry: expired here, and their verification with them (the service sends no
        callback when a request runs out). Returns the verifications that ended now, for their cards."""
        ended: list[Verification] = []
        now = self._clock.now()
        for record in await self._requests.verified_id_requests_due(now):
            if not await self._requests.finish_verified_id_request(
                record.verification_id, VerifiedIdStatus.EXPIRED, now, detail="nobody presented a credential in time"
            ):
                continue
            expired = await self._verifications.expire(
                record.verification_id, "nobody presented a Verified ID credential in time"
            )
            if expired is not None:
                ended.append(expired)
        return ended
