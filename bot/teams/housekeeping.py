"""The periodic work of a running bot: hiding expired pass cards and closing overdue approval requests.

Both schedules live in SQL, so a restart loses nothing: a round finds whatever became due meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.teams.approval_flow import ApprovalFlow
from bot.teams.redaction import CardRedactor

logger = logging.getLogger(__name__)


class Housekeeping:
    def __init__(self, redactor: CardRedactor, approvals: ApprovalFlow) -> None:
        self.redactor = redactor
        self.approvals = approvals

    async def round(self) -> None:
        for name, work in (
            ("expiry redaction", self.redactor.redact_due),
            ("request expiry", self.approvals.expire_overdue),
        ):
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
