"""The emulated Verified ID Request Service: tokens, createPresentationRequest, wallet, callbacks (verified-id.md)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientSession, web

from bot.sandbox import RunningSandbox, SandboxClock
from bot.sandbox.verified_id import (
    REQUEST_LIFETIME,
    REQUEST_SERVICE_SCOPE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    sandbox_authority,
)
from tests.harness.bot import ADELE, LEE, TENANT_ID

CREATE = "/verifiedid/v1.0/verifiableCredentials/createPresentationRequest"
CONTROL = "/_sandbox/verifiedid"
AUTHORITY = sandbox_authority(TENANT_ID)
LYNNE_UPN = "LynneR@contoso.onmicrosoft.com"


@dataclass
class Receiver:
    """The caller's callback endpoint: answers `status` and keeps what it got."""

    url: str = ""
    status: int = 200
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(
        default_factory=list[tuple[dict[str, str], dict[str, Any]]]
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()

    async def callback(request: web.Request) -> web.Response:
        got.received.append((dict(request.headers), await request.json()))
        return web.Response(status=got.status)

    app = web.Application()
    app.router.add_post("/callback", callback)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    got.url = f"http://127.0.0.1:{runner.addresses[0][1]}/callback"
    try:
        yield got
    finally:
        await runner.cleanup()


async def token(http: ClientSession, **overrides: str) -> dict[str, Any]:
    form = {
        "grant_type": "client_credentials",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "scope": REQUEST_SERVICE_SCOPE,
        **overrides,
    }
    tenant = form.pop("tenant", TENANT_ID)
    async with http.post(f"/{tenant}/oauth2/v2.0/token", data=form) as answer:
        return {"status": answer.status, **(await answer.json())}


def request_body(receiver: Receiver, upn: str = LEE.upn, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "authority": AUTHORITY,
        "includeQRCode": False,
        "includeReceipt": False,
        "registration": {"clientName": "tapbot", "purpose": "Prove who you are"},
        "callback": {"url": receiver.url, "state": "state-1", "headers": {"api-key": "the-secret"}},
        "requestedCredentials": [
            {
                "type": "VerifiedEmployee",
                "acceptedIssuers": [AUTHORITY],
                "constraints": [{"claimName": "revocationId", "values": [upn]}],
                "configuration": {
                    "validation": {
                        "allowRevoked": False,
                        "validateLinkedDomain": True,
                        "faceCheck": {"sourcePhotoClaimName": "photo", "matchConfidenceThreshold": 70},
                    }
                },
            }
        ],
    }
    body.update(changes)
    return body


async def create(http: ClientSession, body: object, bearer: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with http.post(CREATE, json=body, headers=headers) as answer:
        return answer.status, await answer.json()


@pytest.fixture
async def bearer(http: ClientSession) -> str:
    return str((await token(http))["access_token"])


async def drive(http: ClientSession, request_id: str, action: str, **body: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{CONTROL}/requests/{request_id}/{action}", json=body) as answer:
        return answer.status, await answer.json()


async def test_client_credentials_token_for_the_request_service(http: ClientSession) -> None:
    granted = await token(http)
    assert granted["status"] == 200 and granted["token_type"] == "Bearer" and granted["expires_in"] == 3599
    assert (await token(http, client_secret="wrong"))["error"] == "invalid_client"
    assert (await token(http, client_secret="wrong"))["status"] == 401
    refused_scope = await token(http, scope="https://graph.microsoft.com/.default")
    assert (refused_scope["status"], refused_scope["error"]) == (400, "invalid_scope")
    assert (await token(http, tenant="00000000-0000-0000-0000-000000000001"))["error"] == "invalid_request"
    assert (await token(http, grant_type="password"))["error"] == "unsupported_grant_type"
    assert (await token(http, client_id="6b1d2c3e-0000-4000-8000-000000000000"))["error"] == "unauthorized_client"
    by_domain = await token(http, tenant="contoso.onmicrosoft.com")
    assert by_domain["status"] == 200


async def test_create_needs_a_token_with_the_present_role(http: ClientSession, receiver: Receiver) -> None:
    status, body = await create(http, request_body(receiver), None)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert body["error"]["innererror"]["code"] == "tokenError" and body["requestId"] and body["date"]
    status, _ = await create(http, request_body(receiver), "not-a-token")
    assert status == 401
    async with http.post(
        f"{CONTROL}/apps", json={"client_id": "0a0a0a0a-1111-4222-8333-444444444444", "client_secret": "s"}
    ) as answer:
        assert answer.status == 200
    roleless = await token(http, client_id="0a0a0a0a-1111-4222-8333-444444444444", client_secret="s")
    status, body = await create(http, request_body(receiver), roleless["access_token"])
    assert status == 403 and body["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("change", "target"),
    [
        ({"callback": None}, "callback"),
        ({"callback": {"state": "s", "headers": {}}}, "callback.url"),
        ({"callback": {"url": "http://127.0.0.1:9/cb", "state": "s", "headers": {"x-other": "v"}}}, "callback.headers"),
        ({"callback": {"url": "http://127.0.0.1:9/cb", "headers": {}}}, "callback.state"),
        ({"requestedCredentials": []}, "requestedCredentials"),
        ({"authority": "not a did"}, "authority"),
        ({"registration": {}}, "registration.clientName"),
        ({"includeQRCode": "yes"}, "includeQRCode"),
        ({"includeReceipt": True}, "includeReceipt"),
    ],
)
async def test_create_refuses_bad_fields_naming_them(
    http: ClientSession, receiver: Receiver, bearer: str, change: dict[str, Any], target: str
) -> None:
    body = {key: value for key, value in request_body(receiver, **change).items() if value is not None}
    status, answer = await create(http, body, bearer)
    assert status == 400 and answer["error"]["code"] == "badRequest"
    assert answer["error"]["innererror"] == {
        "code": "badOrMissingField",
        "message": answer["error"]["innererror"]["message"],
        "target": target,
    }


@pytest.mark.parametrize("threshold", [49, 101, 70.5, True, "70"])
async def test_face_check_threshold_is_an_integer_from_50_to_100(
    http: ClientSession, receiver: Receiver, bearer: str, threshold: object
) -> None:
    body = request_body(receiver)
    body["requestedCredentials"][0]["configuration"]["validation"]["faceCheck"]["matchConfidenceThreshold"] = threshold
    status, answer = await create(http, body, bearer)
    assert status == 400
    assert answer["error"]["innererror"]["target"].endswith("faceCheck.matchConfidenceThreshold")


async def test_an_unknown_authority_is_not_found(http: ClientSession, receiver: Receiver, bearer: str) -> None:
    status, answer = await create(http, request_body(receiver, authority="did:web:other.example"), bearer)
    assert status == 404 and answer["error"]["innererror"]["code"] == "notFound"


async def test_created_request_answers_as_documented(
    http: ClientSession, receiver: Receiver, bearer: str, sandbox: RunningSandbox, clock: SandboxClock
) -> None:
    status, created = await create(http, request_body(receiver), bearer)
    assert status == 201 and set(created) == {"requestId", "url", "expiry"}
    assert created["url"] == (
        f"openid-vc://?request_uri={sandbox.root_url}/verifiedid/v1.0/{TENANT_ID}"
        f"/verifiableCredentials/presentationRequests/{created['requestId']}"
    )
    assert created["expiry"] == int((clock.now() + REQUEST_LIFETIME).timestamp())
    status, with_qr = await create(http, request_body(receiver, includeQRCode=True), bearer)
    assert status == 201 and with_qr["qrCode"].startswith("data:image/png;base64,")
    assert base64.b64decode(with_qr["qrCode"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    async with http.get(f"{CONTROL}/requests") as answer:
        listed = (await answer.json())["requests"]
    assert [item["request_id"] for item in listed] == [created["requestId"], with_qr["requestId"]]
    assert listed[0]["callback_header_names"] == ["api-key"] and "the-secret" not in str(listed)


async def test_scan_then_present_sends_callbacks_with_the_headers_copied(
    http: ClientSession, receiver: Receiver, bearer: str
) -> None:
    _, created = await create(http, request_body(receiver), bearer)
    request_id = created["requestId"]
    status, scanned = await drive(http, request_id, "scan")
    assert status == 200 and scanned["status"] == "retrieved" and scanned["callback"]["status"] == 200
    status, _ = await drive(http, request_id, "scan")
    assert status == 409
    status, presented = await drive(http, request_id, "present", user=LEE.upn, score=86.314159)
    assert status == 200 and presented["status"] == "verified"
    (first_headers, retrieved), (headers, verified) = receiver.received
    assert first_headers["api-key"] == headers["api-key"] == "the-secret"
    assert retrieved == {"requestId": request_id, "requestStatus": "request_retrieved", "state": "state-1"}
    assert verified["requestStatus"] == "presentation_verified" and verified["state"] == "state-1"
    [credential] = verified["verifiedCredentialsData"]
    assert credential["issuer"] == AUTHORITY and credential["type"] == ["VerifiableCredential", "VerifiedEmployee"]
    assert credential["claims"]["revocationId"] == LEE.upn and "objectId" not in credential["claims"]
    assert credential["credentialState"] == {"revocationStatus": "VALID"}
    assert credential["faceCheck"] == {"matchConfidenceScore": 86.314159, "sourcePhotoQuality": "HIGH"}
    status, _ = await drive(http, request_id, "present", user=LEE.upn, score=90)
    assert status == 409, "one terminal event: later driving is refused"
    assert len(receiver.received) == 2


async def test_a_low_score_is_a_claim_validation_error_without_the_score(
    http: ClientSession, receiver: Receiver, bearer: str
) -> None:
    _, created = await create(http, request_body(receiver), bearer)
    status, answer = await drive(http, created["requestId"], "present", user=LEE.upn, score=69.9)
    assert status == 200 and answer["status"] == "error"
    [(_, body)] = receiver.received
    assert body == {
        "requestId": created["requestId"],
        "requestStatus": "presentation_error",
        "state": "state-1",
        "error": {"code": "claimValidationError", "message": "Match confidence score failing to meet the threshold."},
    }


async def test_a_revoked_credential_fails_unless_revoked_ones_are_allowed(
    http: ClientSession, receiver: Receiver, bearer: str
) -> None:
    _, created = await create(http, request_body(receiver), bearer)
    await drive(http, created["requestId"], "present", user=LEE.upn, score=95, revoked=True)
    assert receiver.received[-1][1]["requestStatus"] == "presentation_error"
    allowing = request_body(receiver)
    allowing["requestedCredentials"][0]["configuration"]["validation"]["allowRevoked"] = True
    _, created = await create(http, allowing, bearer)
    await drive(http, created["requestId"], "present", user=LEE.upn, score=95, revoked=True)
    [credential] = receiver.received[-1][1]["verifiedCredentialsData"]
    assert credential["credentialState"] == {"revocationStatus": "REVOKED"}


async def test_the_wallet_offers_only_a_credential_that_fits(
    http: ClientSession, receiver: Receiver, bearer: str
) -> None:
    _, created = await create(http, request_body(receiver), bearer)
    request_id = created["requestId"]
    for other in (
        {"user": ADELE.upn, "score": 95},  # the constraint names Lee's UPN
        {"user": LEE.upn, "score": 95, "issuer": "did:web:fabrikam.example"},  # not an accepted issuer
        {"user": LEE.upn, "score": 95, "type": "EmployeeBadge"},
    ):
        status, answer = await drive(http, request_id, "present", **other)
        assert status == 409 and answer["error"]["code"] == "NoMatchingCredential"
    assert receiver.received == []
    status, forced = await drive(http, request_id, "present", user=ADELE.upn, score=95, skip_wallet_rule=True)
    assert status == 200 and forced["status"] == "verified"
    assert receiver.received[0][1]["verifiedCredentialsData"][0]["claims"]["revocationId"] == ADELE.upn


async def test_constraints_are_case_insensitive(http: ClientSession, receiver: Receiver, bearer: str) -> None:
    _, created = await create(http, request_body(receiver, upn=LYNNE_UPN.upper()), bearer)
    status, _ = await drive(http, created["requestId"], "present", user=LYNNE_UPN, score=80)
    assert status == 200


async def test_decline_and_expiry_send_nothing(
    http: ClientSession, receiver: Receiver, bearer: str, clock: SandboxClock
) -> None:
    _, declined = await create(http, request_body(receiver), bearer)
    status, answer = await drive(http, declined["requestId"], "decline")
    assert status == 200 and answer["declined"] and answer["callback"] is None
    _, expired = await create(http, request_body(receiver), bearer)
    status, answer = await drive(http, expired["requestId"], "expire")
    assert status == 200 and answer["status"] == "expired"
    assert (await drive(http, expired["requestId"], "present", user=LEE.upn, score=90))[0] == 409
    _, timed_out = await create(http, request_body(receiver), bearer)
    clock.advance(REQUEST_LIFETIME.total_seconds())
    status, answer = await drive(http, timed_out["requestId"], "scan")
    assert status == 409 and "expired" in answer["error"]["message"]
    assert receiver.received == []


async def test_the_receivers_status_is_recorded_and_not_retried(
    http: ClientSession, receiver: Receiver, bearer: str
) -> None:
    receiver.status = 500
    _, created = await create(http, request_body(receiver), bearer)
    _, answer = await drive(http, created["requestId"], "scan")
    assert answer["callback"] == {"event": "request_retrieved", "status": 500, "error": None}
    assert len(receiver.received) == 1
    unreachable = request_body(receiver)
    unreachable["callback"]["url"] = "http://127.0.0.1:9/nowhere"
    _, created = await create(http, unreachable, bearer)
    _, answer = await drive(http, created["requestId"], "scan")
    assert answer["callback"]["status"] is None and answer["callback"]["error"]


async def test_create_faults_answer_in_the_services_shape(http: ClientSession, receiver: Receiver, bearer: str) -> None:
    rule = {"method": "POST", "path_regex": "createPresentationRequest$", "status": 429, "retry_after_s": 3}
    async with http.post("/_sandbox/faults", json=rule) as answer:
        assert answer.status == 201
    async with http.post(CREATE, json=request_body(receiver), headers={"Authorization": f"Bearer {bearer}"}) as answer:
        assert answer.status == 429 and answer.headers["Retry-After"] == "3"
        body = await answer.json()
    assert body["error"]["code"] == "tooManyRequests" and body["error"]["innererror"]["code"] == "transientError"
    assert (await create(http, request_body(receiver), bearer))[0] == 201


async def test_reset_forgets_requests_and_tokens(http: ClientSession, receiver: Receiver, bearer: str) -> None:
    await create(http, request_body(receiver), bearer)
    async with http.post("/_sandbox/reset") as answer:
        assert answer.status == 200
    async with http.get(f"{CONTROL}/requests") as answer:
        assert (await answer.json())["requests"] == []
    assert (await create(http, request_body(receiver), bearer))[0] == 401
