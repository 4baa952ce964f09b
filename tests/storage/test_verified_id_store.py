"""The Verified ID presentation requests in SQL: one winner per transition, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.adapters.store import SqlStore
from bot.domain.verified_id import VerifiedIdRequest, VerifiedIdStatus, secret_hash, secret_matches

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def request(verification_id: str = "v-1", state: str = "state-1") -> VerifiedIdRequest:
    return VerifiedIdRequest(
        verification_id=verification_id,
        state=state,
        secret_hash=secret_hash("the-secret"),
        requester_id="adele",
        target_id="lee",
        target_upn="LeeG@contoso.onmicrosoft.com",
        authority="did:web:example",
        threshold=70,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=5),
    )


async def test_saved_found_by_state_and_updated(store: SqlStore) -> None:
    await store.save_verified_id_request(request())
    found = await store.verified_id_request_by_state("state-1")
    assert found is not None and found == request()
    assert await store.verified_id_request_by_state("other") is None
    assert secret_matches("the-secret", found.secret_hash) and not secret_matches("the-secre", found.secret_hash)
    assert not secret_matches(None, found.secret_hash) and not secret_matches("", found.secret_hash)
    created = replace(request(), request_id="r-1", url="openid-vc://?request_uri=x")
    await store.save_verified_id_request(created)
    assert await store.verified_id_request("v-1") == created


async def test_scanned_once_and_finished_once(store: SqlStore) -> None:
    await store.save_verified_id_request(request())
    assert await store.mark_verified_id_scanned("v-1", NOW)
    assert not await store.mark_verified_id_scanned("v-1", NOW)
    assert await store.finish_verified_id_request("v-1", VerifiedIdStatus.VERIFIED, NOW, detail="ok", score=88.5)
    assert not await store.finish_verified_id_request("v-1", VerifiedIdStatus.FAILED, NOW)
    finished = await store.verified_id_request("v-1")
    assert finished is not None and (finished.status, finished.score, finished.scanned_at) == (
        VerifiedIdStatus.VERIFIED,
        88.5,
        NOW,
    )


async def test_due_lists_only_open_requests_past_their_expiry(store: SqlStore) -> None:
    await store.save_verified_id_request(request("v-1", "s-1"))
    await store.save_verified_id_request(replace(request("v-2", "s-2"), expires_at=NOW + timedelta(hours=1)))
    await store.save_verified_id_request(request("v-3", "s-3"))
    await store.finish_verified_id_request("v-3", VerifiedIdStatus.FAILED, NOW)
    due = await store.verified_id_requests_due(NOW + timedelta(minutes=5))
    assert [item.verification_id for item in due] == ["v-1"]
