"""Undoing an approval that wrote nothing (delegated writes, issue 14), on both engines: only the very decision
that was stored is undone, and the request is pending again as if never decided."""

from __future__ import annotations

from bot.adapters.store import SqlStore
from bot.domain.approvals import ApprovalStatus
from tests.storage.test_store import NOW, approval


async def test_an_approval_is_reopened_only_while_it_is_still_that_decision(store: SqlStore) -> None:
    request = approval()
    await store.save_approval(request)
    approved = request.decided(ApprovalStatus.APPROVED, "alex", "Alex Wilber", NOW, "ok")
    assert await store.settle_approval(approved)

    someone_else = request.decided(ApprovalStatus.APPROVED, "adele", "Adele Vance", NOW, "ok")
    assert await store.reopen_approval(someone_else) is False
    assert await store.approval(request.id) == approved

    assert await store.reopen_approval(approved) is True
    assert await store.approval(request.id) == request  # pending, no decider, no note
    assert await store.reopen_approval(approved) is False  # nothing to undo any more

    denied = request.decided(ApprovalStatus.DENIED, "adele", "Adele Vance", NOW, "no")
    assert await store.settle_approval(denied)  # decided again, by another
    assert await store.reopen_approval(approved) is False
    assert await store.approval(request.id) == denied
