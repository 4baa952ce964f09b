"""The Microsoft Entra Verified ID Request Service, emulated: app tokens, presentation requests, the wallet, callbacks.

Follows verified-id.md: a client-credentials token for the Request Service's scope with a role the app was
granted; createPresentationRequest validated as documented (errors in the Request Service's shape); a request goes
created -> retrieved -> verified | error, or expires silently. A test (or a person in `./dev run`) drives the wallet
through the control plane: scan, present as a given user with a given Face Check score (optionally from another
issuer, or revoked), decline, expire. Each event is POSTed to the request's callback.url with its callback.headers
copied verbatim; the receiver's status is recorded, never retried.

Guesses where the service's behaviour is unconfirmed are the constants marked UNCONFIRMED below.
"""

from __future__ import annotations

import enum
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from bot.sandbox.clock import SandboxClock, format_graph_datetime
from bot.sandbox.tenant import Tenant, TenantUser

REQUEST_SERVICE_APP_ID = "3db474b9-6a0c-4840-96ac-1fceb342124f"
REQUEST_SERVICE_SCOPE = f"{REQUEST_SERVICE_APP_ID}/.default"
PRESENT_ROLES = frozenset({"VerifiableCredential.Create.All", "VerifiableCredential.Create.PresentRequest"})
VERIFIED_EMPLOYEE = "VerifiedEmployee"
TOKEN_LIFETIME = timedelta(seconds=3599)
FACE_CHECK_MIN, FACE_CHECK_MAX, FACE_CHECK_DEFAULT = 50, 100, 70

# The bot's own app registration in the sandbox, granted VerifiableCredential.Create.PresentRequest. Not a secret:
# nothing real accepts it.
SANDBOX_CLIENT_ID = "5a0b7d3e-4c1f-4e8a-9d2b-7f6e5c4b3a21"
SANDBOX_CLIENT_SECRET = "sandbox-only-verified-id-client-secret"

# UNCONFIRMED: how long a presentation request lives (the service only returns `expiry`).
REQUEST_LIFETIME = timedelta(minutes=5)
# UNCONFIRMED: the presentation_error a revoked credential gives when allowRevoked is false.
REVOKED_ERROR_CODE = "credentialRevoked"
REVOKED_ERROR_MESSAGE = "The presented credential is revoked."
# Documented (using-facecheck): a score below the threshold, and no score is returned.
LOW_SCORE_ERROR_CODE = "claimValidationError"
LOW_SCORE_ERROR_MESSAGE = "Match confidence score failing to meet the threshold."


def sandbox_authority(tenant_id: str) -> str:
    """The sandbox tenant's Verified ID authority, in the quick setup's DID shape."""
    return f"did:web:verifiedid.entra.microsoft.com:{tenant_id}:{uuid.uuid5(uuid.NAMESPACE_URL, tenant_id)}"


class RequestStatus(enum.StrEnum):
    CREATED = "created"
    RETRIEVED = "retrieved"
    VERIFIED = "verified"
    ERROR = "error"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ServiceError(Exception):
    """An answer in the Request Service's error shape (error-codes)."""

    status: int
    inner_code: str
    message: str
    target: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


OUTER_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("badRequest", "The request is invalid."),
    401: ("unauthorized", "The requested resource requires authentication"),
    403: ("forbidden", "The permission required to fulfill this request is missing."),
    404: ("notFound", "The requested resource doesn't exist."),
    429: ("tooManyRequests", "Too many requests have been sent."),
    500: ("internalServerError", "An internal server error occurred."),
    503: ("serviceUnavailable", "The service is unavailable."),
}


def missing(target: str, problem: str) -> ServiceError:
    return ServiceError(400, "badOrMissingField", f"The request contains `{target}`, but {problem}.", target)


@dataclass(frozen=True)
class App:
    client_id: str
    secret: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Token:
    client_id: str
    tenant_id: str
    roles: frozenset[str]
    expires_at: datetime


@dataclass(frozen=True)
class Constraint:
    claim_name: str
    values: tuple[str, ...] = ()
    contains: str | None = None
    starts_with: str | None = None

    def holds(self, claims: Mapping[str, object]) -> bool:
        """Case-insensitive, as presentation-request-api documents."""
        value = claims.get(self.claim_name)
        if not isinstance(value, str):
            return False
        text = value.lower()
        if self.values:
            return text in {item.lower() for item in self.values}
        if self.contains is not None:
            return self.contains.lower() in text
        return self.starts_with is not None and text.startswith(self.starts_with.lower())


@dataclass(frozen=True)
class RequestedCredential:
    type: str
    accepted_issuers: tuple[str, ...]
    constraints: tuple[Constraint, ...]
    allow_revoked: bool
    validate_linked_domain: bool
    face_check_threshold: int | None  # None: no Face Check asked
    source_photo_claim: str | None


@dataclass(frozen=True)
class Delivery:
    event: str
    status: int | None  # the receiver's HTTP status; None when it could not be reached
    error: str | None = None


@dataclass
class PresentationRequest:
    request_id: str
    tenant_id: str
    client_id: str
    authority: str
    callback_url: str
    callback_state: str
    callback_headers: dict[str, str]
    requested: tuple[RequestedCredential, ...]
    created_at: datetime
    expires_at: datetime
    status: RequestStatus = RequestStatus.CREATED
    declined: bool = False
    deliveries: list[Delivery] = field(default_factory=list[Delivery])

    def summary(self) -> dict[str, object]:
        """For the control plane: the header names only (their values are the receiver's secrets)."""
        return {
            "request_id": self.request_id,
            "status": self.status.value,
            "declined": self.declined,
            "authority": self.authority,
            "created": format_graph_datetime(self.created_at),
            "expiry": format_graph_datetime(self.expires_at),
            "callback_url": self.callback_url,
            "callback_header_names": sorted(self.callback_headers),
            "requested": [
                {
                    "type": credential.type,
                    "accepted_issuers": list(credential.accepted_issuers),
                    "constraints": [constraint.__dict__ for constraint in credential.constraints],
                    "allow_revoked": credential.allow_revoked,
                    "validate_linked_domain": credential.validate_linked_domain,
                    "face_check_threshold": credential.face_check_threshold,
                }
                for credential in self.requested
            ],
            "deliveries": [delivery.__dict__ for delivery in self.deliveries],
        }


@dataclass(frozen=True)
class WalletCredential:
    """What the user's Authenticator holds and offers: a credential about a user of the tenant."""

    user: TenantUser
    type: str
    issuer: str
    revoked: bool
    score: float


class VerifiedIdEmulator:
    def __init__(self, tenant: Tenant, clock: SandboxClock) -> None:
        self._clock = clock
        self.reset(tenant)

    def reset(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.authority = sandbox_authority(tenant.tenant_id)
        self.apps: dict[str, App] = {
            SANDBOX_CLIENT_ID: App(
                SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, frozenset({"VerifiableCredential.Create.PresentRequest"})
            )
        }
        self._tokens: dict[str, Token] = {}
        self.requests: dict[str, PresentationRequest] = {}

    # --- tokens ---------------------------------------------------------------------------------------------

    def knows_tenant(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant.tenant_id.lower(), self.tenant.domain.lower())

    def issue_token(self, app: App) -> tuple[str, Token]:
        value = secrets.token_urlsafe(32)
        token = Token(app.client_id, self.tenant.tenant_id, app.roles, self._clock.now() + TOKEN_LIFETIME)
        self._tokens[value] = token
        return value, token

    def token(self, authorization: str | None) -> Token:
        match = re.fullmatch(r"Bearer\s+(\S+)", authorization or "", re.IGNORECASE)
        token = self._tokens.get(match.group(1)) if match else None
        if token is None or token.expires_at <= self._clock.now():
            raise ServiceError(401, "tokenError", "The access token is missing, invalid or expired.")
        if not token.roles & PRESENT_ROLES:
            raise ServiceError(
                403,
                "tokenError",
                "The app has no VerifiableCredential.Create.PresentRequest permission on the Verifiable "
                "Credentials Service Request.",
            )
        return token

    # --- createPresentationRequest ------------------------------------------------------------------------

    def create(self, token: Token, body: object) -> PresentationRequest:
        if not isinstance(body, dict):
            raise ServiceError(400, "badOrMissingField", "The request body is not a JSON object.", "body")
        data = cast(dict[str, object], body)
        authority = data.get("authority")
        if not isinstance(authority, str) or not authority.startswith("did:"):
            raise missing("authority", "it is not a DID")
        if authority != self.authority:
            raise ServiceError(404, "notFound", f"The authority '{authority}' is not a verifier of this tenant.")
        for name in ("includeQRCode", "includeReceipt"):
            if name in data and not isinstance(data[name], bool):
                raise missing(name, "it is not boolean")
        registration = _object(data, "registration")
        if not isinstance(registration.get("clientName"), str) or not registration.get("clientName"):
            raise missing("registration.clientName", "it is missing or empty")
        callback = _object(data, "callback")
        url = callback.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
            raise missing("callback.url", "it is missing or not an absolute URL")
        state = callback.get("state")
        if not isinstance(state, str) or not state:
            raise missing("callback.state", "it is missing or empty")
        headers = callback.get("headers", {})
        if not isinstance(headers, dict):
            raise missing("callback.headers", "it is not an object")
        for name, value in cast(dict[str, object], headers).items():
            if name.lower() not in ("api-key", "authorization") or not isinstance(value, str):
                raise missing("callback.headers", "only api-key or Authorization, with string values, are allowed")
        requested = _requested_credentials(data.get("requestedCredentials"))
        if data.get("includeReceipt") is True and any(item.face_check_threshold is not None for item in requested):
            raise missing("includeReceipt", "it must be false when Face Check is requested")
        now = self._clock.now()
        request = PresentationRequest(
            request_id=str(uuid.uuid4()),
            tenant_id=token.tenant_id,
            client_id=token.client_id,
            authority=authority,
            callback_url=url,
            callback_state=state,
            callback_headers=dict(cast(dict[str, str], headers)),
            requested=requested,
            created_at=now,
            expires_at=now + REQUEST_LIFETIME,
        )
        self.requests[request.request_id] = request
        return request

    def request(self, request_id: str) -> PresentationRequest | None:
        request = self.requests.get(request_id)
        open_statuses = (RequestStatus.CREATED, RequestStatus.RETRIEVED)
        if request is not None and request.status in open_statuses and self._clock.now() >= request.expires_at:
            request.status = RequestStatus.EXPIRED  # silent: the service sends no callback
        return request

    # --- the wallet -------------------------------------------------------------------------------------------

    def wallet_credential(
        self, user: TenantUser, *, score: float, issuer: str | None, revoked: bool, kind: str | None
    ) -> WalletCredential:
        return WalletCredential(user, kind or VERIFIED_EMPLOYEE, issuer or self.authority, revoked, score)

    def offered(self, request: PresentationRequest, credential: WalletCredential) -> RequestedCredential | None:
        """The requested credential the wallet can answer with this credential (type, issuer, constraints)."""
        claims = self.claims(credential.user)
        for wanted in request.requested:
            if wanted.type != credential.type:
                continue
            if wanted.accepted_issuers and credential.issuer not in wanted.accepted_issuers:
                continue
            if all(constraint.holds(claims) for constraint in wanted.constraints):
                return wanted
        return None

    def claims(self, user: TenantUser) -> dict[str, object]:
        """VerifiedEmployee's claims (how-to-use-quickstart-verifiedemployee); absent when empty."""
        claims: dict[str, object] = {
            "revocationId": user.user_principal_name,
            "displayName": user.display_name,
            "givenName": user.given_name or "",
            "surname": user.surname or "",
            "jobTitle": user.job_title,
            "preferredLanguage": "en-US",
            "mail": user.mail,
            "photo": _PHOTO,
        }
        return {name: value for name, value in claims.items() if value not in (None, "")}

    def outcome(
        self, request: PresentationRequest, wanted: RequestedCredential, credential: WalletCredential
    ) -> dict[str, object]:
        """The service's verdict on a presented credential, as the callback body."""
        common = {"requestId": request.request_id, "state": request.callback_state}
        if credential.revoked and not wanted.allow_revoked:
            request.status = RequestStatus.ERROR
            return {
                **common,
                "requestStatus": "presentation_error",
                "error": {"code": REVOKED_ERROR_CODE, "message": REVOKED_ERROR_MESSAGE},
            }
        threshold = wanted.face_check_threshold
        if threshold is not None and credential.score < threshold:
            request.status = RequestStatus.ERROR
            return {
                **common,
                "requestStatus": "presentation_error",
                "error": {"code": LOW_SCORE_ERROR_CODE, "message": LOW_SCORE_ERROR_MESSAGE},
            }
        request.status = RequestStatus.VERIFIED
        issued = self._clock.now() - timedelta(days=30)
        verified: dict[str, object] = {
            "issuer": credential.issuer,
            "type": ["VerifiableCredential", credential.type],
            "claims": self.claims(credential.user),
            "credentialState": {"revocationStatus": "REVOKED" if credential.revoked else "VALID"},
            "domainValidation": {"url": f"https://{self.tenant.domain}/"},
            "issuanceDate": format_graph_datetime(issued),
            "expirationDate": format_graph_datetime(issued + timedelta(days=180)),
        }
        if threshold is not None:
            verified["faceCheck"] = {"matchConfidenceScore": credential.score, "sourcePhotoQuality": "HIGH"}
        return {
            **common,
            "requestStatus": "presentation_verified",
            "subject": f"did:ion:sandbox-wallet-{uuid.uuid5(uuid.NAMESPACE_URL, credential.user.id).hex}",
            "verifiedCredentialsData": [verified],
        }


def _object(data: Mapping[str, object], name: str) -> dict[str, object]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise missing(name, "it is missing or not an object")
    return cast(dict[str, object], value)


def _requested_credentials(raw: object) -> tuple[RequestedCredential, ...]:
    if not isinstance(raw, list) or not raw:
        raise missing("requestedCredentials", "it is missing or empty")
    credentials: list[RequestedCredential] = []
    for index, item in enumerate(cast(list[object], raw)):
        where = f"requestedCredentials[{index}]"
        if not isinstance(item, dict):
            raise missing(where, "it is not an object")
        data = cast(dict[str, object], item)
        kind = data.get("type")
        if not isinstance(kind, str) or not kind:
            raise missing(f"{where}.type", "it is missing or empty")
        issuers = data.get("acceptedIssuers", [])
        if not isinstance(issuers, list) or not all(isinstance(issuer, str) for issuer in issuers):
            raise missing(f"{where}.acceptedIssuers", "it is not a list of DIDs")
        configuration = data.get("configuration", {})
        validation = configuration.get("validation", {}) if isinstance(configuration, dict) else None
        if not isinstance(validation, dict):
            raise missing(f"{where}.configuration.validation", "it is not an object")
        validation = cast(dict[str, object], validation)
        flags: dict[str, bool] = {}
        for flag in ("allowRevoked", "validateLinkedDomain"):
            value = validation.get(flag, False)
            if not isinstance(value, bool):
                raise missing(f"{where}.configuration.validation.{flag}", "it is not boolean")
            flags[flag] = value
        threshold, photo_claim = _face_check(validation.get("faceCheck"), f"{where}.configuration.validation.faceCheck")
        credentials.append(
            RequestedCredential(
                type=kind,
                accepted_issuers=tuple(cast(list[str], issuers)),
                constraints=_constraints(data.get("constraints", []), f"{where}.constraints"),
                allow_revoked=flags["allowRevoked"],
                validate_linked_domain=flags["validateLinkedDomain"],
                face_check_threshold=threshold,
                source_photo_claim=photo_claim,
            )
        )
    return tuple(credentials)


def _face_check(raw: object, where: str) -> tuple[int | None, str | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise missing(where, "it is not an object")
    data = cast(dict[str, object], raw)
    claim = data.get("sourcePhotoClaimName")
    if not isinstance(claim, str) or not claim:
        raise missing(f"{where}.sourcePhotoClaimName", "it is missing or empty")
    threshold = data.get("matchConfidenceThreshold", FACE_CHECK_DEFAULT)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int)
        or not FACE_CHECK_MIN <= threshold <= FACE_CHECK_MAX
    ):
        raise missing(
            f"{where}.matchConfidenceThreshold", f"it is not an integer from {FACE_CHECK_MIN} to {FACE_CHECK_MAX}"
        )
    return threshold, claim


def _constraints(raw: object, where: str) -> tuple[Constraint, ...]:
    if not isinstance(raw, list):
        raise missing(where, "it is not a list")
    constraints: list[Constraint] = []
    for index, item in enumerate(cast(list[object], raw)):
        data = cast(dict[str, object], item) if isinstance(item, dict) else {}
        name = data.get("claimName")
        values, contains, starts = data.get("values"), data.get("contains"), data.get("startsWith")
        ways = [value for value in (values, contains, starts) if value is not None]
        valid_values = values is None or (isinstance(values, list) and all(isinstance(v, str) for v in values))
        if not isinstance(name, str) or not name or len(ways) != 1 or not valid_values:
            raise missing(f"{where}[{index}]", "a constraint needs a claimName and one of values, contains, startsWith")
        if any(way is not None and not isinstance(way, str) for way in (contains, starts)):
            raise missing(f"{where}[{index}]", "contains and startsWith take a string")
        constraints.append(
            Constraint(
                claim_name=name,
                values=tuple(cast(list[str], values or [])),
                contains=cast(str | None, contains),
                starts_with=cast(str | None, starts),
            )
        )
    return tuple(constraints)


# A 1x1 JPEG stands in for the employee photo (the real claim is the issuing tenant's profile photo).
_PHOTO = (
    "%2F9j%2F4AAQSkZJRgABAQAAAQABAAD%2F2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwS"
    "ExIQEw8QEBD%2FyQALCAABAAEBAREA%2F8wABgAQEAX%2F2gAIAQEAAD8A0s8g%2F9k%3D"
)
