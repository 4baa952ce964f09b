"""The periodic work of a running bot: hiding expired pass cards, closing overdue approval requests, and
running bulk jobs whose replica died, expiring verifications nobody answered in time, and following live passes
through (bot/teams/follow_through.py).

Every schedule lives in SQL and every item is claimed atomically (a card is redacted once, a request closed
once, a job leased to one replica), so several replicas can run these rounds side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot.teams.approval_flow import ApprovalFlow
from bot.teams.bulk_flow import BulkFlow
from bot.teams.redaction import CardRedactor
from bot.teams.verification_flow import VerificationFlow

logger = logging.getLogger(__name__)


class Housekeeping:
    def __init__(
        self,
        *,
        redactor: CardRedactor,
        approvals: ApprovalFlow,
        bulk: BulkFlow,
        verifications: VerificationFlow | None = None,
        verified_id_expiry: Callable[[], Awaitable[int]] | None = None,
        follow_through: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.redactor = redactor
        self.approvals = approvals
        self.bulk = bulk
        self.verifications = verifications
        self.verified_id_expiry = verified_id_expiry  # Verified ID requests past their expiry (the service is silent)
        self.follow_through = follow_through  # live passes: the user's own new method, or expired unused

    async def round(self) -> None:
        rounds: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("expiry redaction", self.redactor.redact_due),
            ("request expiry", self.approvals.expire_overdue),
            ("bulk jobs without a runner", self.bulk.adopt),
        ]
        if self.verified_id_expiry is not None:
            rounds.append(("verified id expiry", self.verified_id_expiry))
        if self.verifications is not None:
            rounds.append(("verification expiry", self.verifications.expire_overdue))
        if self.follow_through is not None:
            rounds.append(("follow-through", self.follow_through))
        for name, work in rounds:
            try:
                await work()
            except Exception:
                logger.exception("%s round failed; retrying next round", name)

    async def run(self, interval_seconds: float, stop: asyncio.Event) -> None:
        """Runs rounds until `stop` is set; stopping between rounds lets a round finish its SQL work cleanly."""
        while not stop.is_set():
            await self.round()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_seconds)
