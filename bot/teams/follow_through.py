"""Follow-through's Teams side: deleting a pass the user no longer needs (the revoke path, its cards hidden with the
reason) and telling requesters what became of their passes in their 1:1 chat.

A notice is written to SQL before anyone is told, claimed by one replica at a time, marked delivered only after
Teams accepted it, and released for the next round when Teams refused: never lost, never sent by two replicas (a
process dying between Teams' acceptance and that write would send it once more, when its 2-minute lease ends).
"""

from __future__ import annotations

import logging
from datetime import tzinfo

from bot.domain.follow_through import (
    LEASE,
    NOTICES_PER_ROUND,
    FollowThrough,
    PassWatch,
    PassWatchStore,
    follow_through_caller,
)
from bot.domain.model import Caller, PassInfo
from bot.domain.ports import Clock
from bot.domain.records import RedactionReason
from bot.domain.service import TapService
from bot.teams.delivery import DeliveryFailed, PrivateChat, PrivateDelivery, text_message
from bot.teams.presentation import Presentation
from bot.teams.redaction import CardRedactor, zone_or_utc

logger = logging.getLogger(__name__)


class RevokeAndHide:
    """`PassRetirement`: the same delete as a revoke (audited by TapService), then every card of the pass hidden.

    The audit row names tapbot, which decided it; with delegated writes the delete is made with the rights of the
    pass's requester (who created it), and raises SignInRequired when no token of theirs can be had."""

    def __init__(self, *, service: TapService, redactor: CardRedactor) -> None:
        self._service = service
        self._redactor = redactor

    async def retire(self, watch: PassWatch, current: PassInfo, detail: str) -> None:
        await self._service.revoke_checked_pass(
            follow_through_caller(),
            watch.target_id,
            current,
            detail=detail,
            acting_as=Caller(watch.requester_id, "", ""),
        )
        await self._redactor.redact_cards_of_pass(watch.pass_method_id, RedactionReason.REGISTERED, actor_id="tapbot")


def zone_of(name: str) -> tzinfo:
    return zone_or_utc(name)


class FollowThroughFlow:
    def __init__(
        self,
        *,
        follow: FollowThrough,
        store: PassWatchStore,
        delivery: PrivateDelivery,
        presentation: Presentation,
        clock: Clock,
        holder: str,
    ) -> None:
        self._follow = follow
        self._store = store
        self._delivery = delivery
        self._presentation = presentation
        self._clock = clock
        self._holder = holder

    async def round(self) -> int:
        """Housekeeping: deletes again the passes nobody was shown whose delete failed (first: they are live), checks
        the due watches, then delivers every notice not yet delivered (this round's and those Teams refused before)."""
        await self._follow.revoke_round()
        await self._follow.check_round()
        return await self.deliver_notices()

    async def deliver_notices(self) -> int:
        now = self._clock.now()
        watches = await self._store.claim_notices(self._holder, now, limit=NOTICES_PER_ROUND, lease_until=now + LEASE)
        delivered = 0
        for watch in watches:
            if watch.notice is None:
                continue
            chat = PrivateChat(watch.service_url, watch.conversation_id)
            try:
                await self._delivery.send(chat, text_message(self._presentation.text_prefix + watch.notice))
            except DeliveryFailed as failure:
                logger.warning(
                    "could not tell %s about the pass of %s (%s); trying again next round",
                    watch.requester_id,
                    watch.target_id,
                    failure,
                )
                await self._store.release_notice(watch.pass_method_id, self._holder)
                continue
            delivered += await self._store.notice_delivered(watch.pass_method_id, self._holder, self._clock.now())
        return delivered
