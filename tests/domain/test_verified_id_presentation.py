"""Which presentations provably are the target (bot/domain/verified_id.py), before the directory look-up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain.verified_id import VerifiedIdRequest, presentation_refusal, read_presentation, secret_hash

AUTHORITY = "did:web:verifiedid.entra.microsoft.com:tenant:issuer"
REQUEST = VerifiedIdRequest(
    verification_id="v",
    state="s",
    secret_hash=secret_hash("k"),
    requester_id="adele",
    target_id="lynne",
    target_upn="LynneR@contoso.onmicrosoft.com",
    authority=AUTHORITY,
    threshold=70,
    created_at=datetime(2026, 11, 28, tzinfo=UTC),
    expires_at=datetime(2026, 11, 28, 1, tzinfo=UTC),
)


def credential(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "issuer": AUTHORITY,
        "type": ["VerifiableCredential", "VerifiedEmployee"],
        "claims": {"revocationId": "LynneR@contoso.onmicrosoft.com", "displayName": "Lynne Robbins"},
        "credentialState": {"revocationStatus": "VALID"},
        "faceCheck": {"matchConfidenceScore": 86.314159, "sourcePhotoQuality": "HIGH"},
    }
    item.update(changes)
    return item


def refusal(*items: object) -> str | None:
    return presentation_refusal(read_presentation({"verifiedCredentialsData": list(items)}), REQUEST)


def test_a_valid_presentation_of_the_own_authority_passes() -> None:
    assert refusal(credential()) is None
    assert refusal(credential(faceCheck={"matchConfidenceScore": 70})) is None
    [read] = read_presentation({"verifiedCredentialsData": [credential()]}).credentials
    assert (read.revocation_id, read.score) == ("LynneR@contoso.onmicrosoft.com", 86.314159)


@pytest.mark.parametrize(
    ("items", "why"),
    [
        ((), "0 credentials"),
        ((credential(), credential()), "2 credentials"),
        ((credential(type=["VerifiableCredential", "EmployeeBadge"]),), "not a VerifiedEmployee"),
        ((credential(type="VerifiedEmployee"),), "not a VerifiedEmployee"),
        ((credential(issuer="did:web:fabrikam.example"),), "own Verified ID authority"),
        ((credential(issuer=None),), "own Verified ID authority"),
        ((credential(credentialState={"revocationStatus": "REVOKED"}),), "not valid"),
        ((credential(credentialState={}),), "not valid"),
        ((credential(faceCheck={"matchConfidenceScore": 69.99}),), "below the required 70"),
        ((credential(faceCheck={"matchConfidenceScore": "95"}),), "no Face Check score"),
        ((credential(faceCheck={"matchConfidenceScore": True}),), "no Face Check score"),
        ((credential(faceCheck=None),), "no Face Check score"),
        ((credential(claims={"displayName": "Lynne Robbins", "mail": "LynneR@contoso.com"}),), "no revocationId"),
        (("not an object",), "not a VerifiedEmployee"),
    ],
)
def test_everything_else_is_refused_with_why(items: tuple[object, ...], why: str) -> None:
    found = refusal(*items)
    assert found is not None and why in found


def test_a_body_without_credentials_reads_as_none() -> None:
    assert read_presentation({}).credentials == ()
    assert read_presentation({"verifiedCredentialsData": "x"}).credentials == ()
