"""The Verified ID Request Service over HTTP: an app token, then createPresentationRequest (verified-id.md §1).

The token is the bot's own client credential (the Graph app registration: certificate, managed identity or secret)
for the Request Service's scope; in the sandbox, the emulator's token endpoint with its test app. Neither the token
nor the callback secret is ever logged or put in an error: errors name the HTTP status and the service's own
sentence only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, cast

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError

from bot.domain.ports import Clock
from bot.domain.verified_id import (
    VERIFIED_EMPLOYEE,
    CreatedPresentation,
    PresentationSpec,
    VerifiedIdUnavailable,
)

logger = logging.getLogger(__name__)

REQUEST_SERVICE_SCOPE = "3db474b9-6a0c-4840-96ac-1fceb342124f/.default"
DEFAULT_SERVICE_URL = "https://verifiedid.did.msidentity.com/v1.0"
TOKEN_MARGIN = timedelta(minutes=2)  # a cached token is renewed this long before it runs out
TIMEOUT_SECONDS = 15.0


class TokenSource(Protocol):
    async def token(self) -> str:
        """A bearer token for the Request Service; raises VerifiedIdUnavailable with a sentence."""
        ...


class CredentialTokens:
    """The bot's azure-identity credential (which caches and renews its tokens itself)."""

    def __init__(self, credential: AsyncTokenCredential) -> None:
        self._credential = credential

    async def token(self) -> str:
        try:
            return (await self._credential.get_token(REQUEST_SERVICE_SCOPE)).token
        except AzureError as error:
            logger.warning("verified id: no token for the Request Service (%s)", type(error).__name__)
            raise VerifiedIdUnavailable(
                "The bot could not sign in to Microsoft Entra Verified ID with its app credential, so no "
                "verification was started. Ask IT to check the app's credential and its "
                "VerifiableCredential.Create.PresentRequest permission."
            ) from None


@dataclass
class ClientCredentialsTokens:
    """A client-credentials grant posted to a token endpoint (the sandbox's: it stands in for Entra's)."""

    http: httpx.AsyncClient
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    clock: Clock
    _cached: tuple[str, datetime] | None = field(default=None, repr=False)

    async def token(self) -> str:
        now = self.clock.now()
        if self._cached is not None and self._cached[1] - TOKEN_MARGIN > now:
            return self._cached[0]
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": REQUEST_SERVICE_SCOPE,
        }
        try:
            answer = await self.http.post(self.token_url, data=form, timeout=TIMEOUT_SECONDS)
        except httpx.HTTPError as error:
            raise _unreachable(error) from None
        body = _json(answer)
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if answer.status_code != 200 or not isinstance(token, str) or not isinstance(lifetime, int):
            logger.warning("verified id: token endpoint answered %s (%s)", answer.status_code, body.get("error"))
            raise VerifiedIdUnavailable(
                f"The bot could not sign in to Microsoft Entra Verified ID (HTTP {answer.status_code}), so no "
                "verification was started."
            )
        self._cached = (token, now + timedelta(seconds=lifetime))
        return token


class VerifiedIdGateway:
    """`PresentationRequests` over the Request Service's REST API."""

    def __init__(self, http: httpx.AsyncClient, service_url: str, tokens: TokenSource) -> None:
        self._http = http
        self._url = service_url.rstrip("/") + "/verifiableCredentials/createPresentationRequest"
        self._tokens = tokens

    async def create_presentation(self, spec: PresentationSpec) -> CreatedPresentation:
        headers = {"Authorization": f"Bearer {await self._tokens.token()}"}
        try:
            answer = await self._http.post(
                self._url, json=presentation_request_body(spec), headers=headers, timeout=TIMEOUT_SECONDS
            )
        except httpx.HTTPError as error:
            raise _unreachable(error) from None
        body = _json(answer)
        if answer.status_code != 201:
            raise _refusal(answer.status_code, body)
        request_id, url, expiry = body.get("requestId"), body.get("url"), body.get("expiry")
        if not isinstance(request_id, str) or not isinstance(url, str) or not isinstance(expiry, int | float):
            logger.warning("verified id: createPresentationRequest answered 201 without requestId, url or expiry")
            raise VerifiedIdUnavailable("Microsoft Entra Verified ID gave an answer the bot cannot read; try again.")
        if not url.startswith("openid-vc://"):
            raise VerifiedIdUnavailable("Microsoft Entra Verified ID gave a link the bot does not recognise.")
        qr_code = body.get("qrCode")
        logger.info("verified id: presentation request %s created", request_id)
        return CreatedPresentation(
            request_id=request_id,
            url=url,
            expires_at=datetime.fromtimestamp(expiry, UTC),
            qr_code=qr_code if isinstance(qr_code, str) and qr_code.startswith("data:image/png;base64,") else None,
        )


def presentation_request_body(spec: PresentationSpec) -> dict[str, object]:
    """createPresentationRequest's body (presentation-request-api, using-facecheck): a VerifiedEmployee credential
    from the tenant's own authority only, about the target's UPN (revocationId), not revoked, from a linked domain,
    with Face Check against the credential's photo. No receipt (it must be false with Face Check) and no QR code
    (the bot draws it from the url, as Microsoft's samples do)."""
    return {
        "authority": spec.authority,
        "includeQRCode": False,
        "includeReceipt": False,
        "registration": {"clientName": spec.client_name, "purpose": spec.purpose},
        "callback": {"url": spec.callback_url, "state": spec.state, "headers": {"api-key": spec.callback_secret}},
        "requestedCredentials": [
            {
                "type": VERIFIED_EMPLOYEE,
                "purpose": spec.purpose,
                "acceptedIssuers": [spec.authority],
                "constraints": [{"claimName": "revocationId", "values": [spec.target_upn]}],
                "configuration": {
                    "validation": {
                        "allowRevoked": False,
                        "validateLinkedDomain": True,
                        "faceCheck": {"sourcePhotoClaimName": "photo", "matchConfidenceThreshold": spec.threshold},
                    }
                },
            }
        ],
    }


def _json(answer: httpx.Response) -> dict[str, object]:
    try:
        body: object = answer.json()
    except ValueError:
        return {}
    return cast(dict[str, object], body) if isinstance(body, dict) else {}


def _unreachable(error: httpx.HTTPError) -> VerifiedIdUnavailable:
    logger.warning("verified id: request failed (%s)", type(error).__name__)
    return VerifiedIdUnavailable(
        "Microsoft Entra Verified ID could not be reached, so no verification was started; try again in a moment."
    )


def _refusal(status: int, body: dict[str, object]) -> VerifiedIdUnavailable:
    error = body.get("error")
    error = cast(dict[str, object], error) if isinstance(error, dict) else {}
    inner = error.get("innererror")
    inner = cast(dict[str, object], inner) if isinstance(inner, dict) else {}
    code, detail = str(inner.get("code") or error.get("code") or ""), str(inner.get("message") or "")[:300]
    logger.warning(
        "verified id: createPresentationRequest refused: HTTP %s %s (request %s)", status, code, body.get("requestId")
    )
    if status in (401, 403):
        return VerifiedIdUnavailable(
            f"Microsoft Entra Verified ID refused the bot (HTTP {status}): its app needs the "
            "VerifiableCredential.Create.PresentRequest permission on the Verifiable Credentials Service Request, "
            "with admin consent."
        )
    if status == 429 or status >= 500:
        return VerifiedIdUnavailable(
            f"Microsoft Entra Verified ID is busy or unavailable (HTTP {status}); try again in a moment."
        )
    return VerifiedIdUnavailable(
        f"Microsoft Entra Verified ID refused the request (HTTP {status}{', ' + code if code else ''}"
        f"{': ' + detail if detail else ''}). Ask IT to check TAPBOT_VERIFIED_ID_AUTHORITY and the callback address."
    )
