"""The Verified ID adapter against the emulated Request Service: token, createPresentationRequest, refusals."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from bot.adapters.verified_id import (
    ClientCredentialsTokens,
    CredentialTokens,
    VerifiedIdGateway,
    presentation_request_body,
)
from bot.domain.verified_id import PresentationSpec, VerifiedIdUnavailable
from bot.sandbox import DEMO_TENANT_PATH, RunningSandbox, load_tenant, start_sandbox
from bot.sandbox.verified_id import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, sandbox_authority
from tests.harness.bot import LEE, TENANT_ID

AUTHORITY = sandbox_authority(TENANT_ID)
SECRET = "per-request-secret-value"


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with await start_sandbox(load_tenant(DEMO_TENANT_PATH)) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def tokens(
    sandbox: RunningSandbox, http: httpx.AsyncClient, secret: str = SANDBOX_CLIENT_SECRET
) -> ClientCredentialsTokens:
    return ClientCredentialsTokens(
        http=http,
        token_url=f"{sandbox.root_url}/{TENANT_ID}/oauth2/v2.0/token",
        client_id=SANDBOX_CLIENT_ID,
        client_secret=secret,
        clock=Clock(),
    )


def spec(authority: str = AUTHORITY, threshold: int = 75) -> PresentationSpec:
    return PresentationSpec(
        authority=authority,
        target_upn=LEE.upn,
        threshold=threshold,
        callback_url="https://tapbot.example/api/verifiedid/callback",
        state="the-state",
        callback_secret=SECRET,
    )


def test_the_body_is_the_documented_presentation_request() -> None:
    body = presentation_request_body(spec())
    assert body["authority"] == AUTHORITY
    assert (body["includeQRCode"], body["includeReceipt"]) == (False, False)
    assert body["callback"] == {
        "url": "https://tapbot.example/api/verifiedid/callback",
        "state": "the-state",
        "headers": {"api-key": SECRET},
    }
    [credential] = body["requestedCredentials"]  # type: ignore[misc]
    assert credential["type"] == "VerifiedEmployee"
    assert credential["acceptedIssuers"] == [AUTHORITY]
    assert credential["constraints"] == [{"claimName": "revocationId", "values": [LEE.upn]}]
    assert credential["configuration"] == {
        "validation": {
            "allowRevoked": False,
            "validateLinkedDomain": True,
            "faceCheck": {"sourcePhotoClaimName": "photo", "matchConfidenceThreshold": 75},
        }
    }
    assert SECRET not in repr(spec())


async def test_creates_a_request_the_service_accepts(
    sandbox: RunningSandbox, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = VerifiedIdGateway(http, sandbox.verified_id_url, tokens(sandbox, http))
    created = await gateway.create_presentation(spec())
    stored = sandbox.state.verified_id.requests[created.request_id]
    assert created.url.startswith("openid-vc://?request_uri=") and created.url.endswith(created.request_id)
    assert created.expires_at == stored.expires_at.replace(microsecond=0) and created.qr_code is None
    assert stored.callback_headers == {"api-key": SECRET} and stored.callback_state == "the-state"
    [requested] = stored.requested
    assert (requested.type, requested.accepted_issuers) == ("VerifiedEmployee", (AUTHORITY,))
    assert [(c.claim_name, c.values) for c in requested.constraints] == [("revocationId", (LEE.upn,))]
    assert (requested.allow_revoked, requested.validate_linked_domain, requested.face_check_threshold) == (
        False,
        True,
        75,
    )
    second = await gateway.create_presentation(spec())
    assert second.request_id != created.request_id
    issued_tokens = list(sandbox.state.verified_id._tokens)  # pyright: ignore[reportPrivateUsage]
    assert len(issued_tokens) == 1, "the token is reused until shortly before it expires"
    logged = caplog.text
    assert SECRET not in logged and issued_tokens[0] not in logged


async def test_a_wrong_client_secret_is_a_sentence(sandbox: RunningSandbox, http: httpx.AsyncClient) -> None:
    gateway = VerifiedIdGateway(http, sandbox.verified_id_url, tokens(sandbox, http, secret="wrong"))
    with pytest.raises(VerifiedIdUnavailable, match=r"could not sign in .* \(HTTP 401\)"):
        await gateway.create_presentation(spec())


async def test_an_app_without_the_permission_is_told_which(sandbox: RunningSandbox, http: httpx.AsyncClient) -> None:
    sandbox.state.verified_id.apps[SANDBOX_CLIENT_ID] = sandbox.state.verified_id.apps[SANDBOX_CLIENT_ID].__class__(
        SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, frozenset()
    )
    gateway = VerifiedIdGateway(http, sandbox.verified_id_url, tokens(sandbox, http))
    with pytest.raises(VerifiedIdUnavailable, match=r"HTTP 403.*VerifiableCredential\.Create\.PresentRequest"):
        await gateway.create_presentation(spec())


async def test_a_refused_field_and_an_unknown_authority(sandbox: RunningSandbox, http: httpx.AsyncClient) -> None:
    gateway = VerifiedIdGateway(http, sandbox.verified_id_url, tokens(sandbox, http))
    with pytest.raises(VerifiedIdUnavailable, match=r"HTTP 404, notFound") as refused:
        await gateway.create_presentation(spec(authority="did:web:fabrikam.example"))
    assert "TAPBOT_VERIFIED_ID_AUTHORITY" in str(refused.value)
    with pytest.raises(VerifiedIdUnavailable, match=r"HTTP 400, badOrMissingField: .*matchConfidenceThreshold"):
        await gateway.create_presentation(spec(threshold=101))


async def test_busy_and_unreachable_services(sandbox: RunningSandbox, http: httpx.AsyncClient) -> None:
    async with http.stream(
        "POST",
        f"{sandbox.control_url}/faults",
        json={"path_regex": "createPresentationRequest$", "status": 429, "retry_after_s": 2},
    ) as answer:
        assert answer.status_code == 201
    gateway = VerifiedIdGateway(http, sandbox.verified_id_url, tokens(sandbox, http))
    with pytest.raises(VerifiedIdUnavailable, match=r"busy or unavailable \(HTTP 429\)"):
        await gateway.create_presentation(spec())
    nowhere = VerifiedIdGateway(http, "http://127.0.0.1:9/verifiedid/v1.0", tokens(sandbox, http))
    with pytest.raises(VerifiedIdUnavailable, match="could not be reached"):
        await nowhere.create_presentation(spec())


class FakeCredential:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.scopes.append(scopes)
        if self.fail:
            raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided. secret=hunter2")
        return AccessToken("the-token", 4102444800)


async def test_the_bots_credential_asks_for_the_request_services_scope() -> None:
    credential = FakeCredential()
    assert await CredentialTokens(credential).token() == "the-token"  # type: ignore[arg-type]
    assert credential.scopes == [("3db474b9-6a0c-4840-96ac-1fceb342124f/.default",)]
    with pytest.raises(VerifiedIdUnavailable, match=r"VerifiableCredential\.Create\.PresentRequest") as refused:
        await CredentialTokens(FakeCredential(fail=True)).token()  # type: ignore[arg-type]
    assert "hunter2" not in str(refused.value) and "AADSTS" not in str(refused.value)
