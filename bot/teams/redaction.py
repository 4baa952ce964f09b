"""Hiding pass cards again: after hand-over, when the pass is revoked or replaced, and when it expires.

The schedule lives in SQL (the pass_cards table), so a restart loses nothing: the loop simply finds what
became due while the bot was down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.adapters.store import PassCard, RedactionReason, SqlStore
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.ports import Clock
from bot.teams.delivery import PrivateChat, PrivateDelivery, card_message
from cards.passes import CardJson, redacted_pass_card

logger = logging.getLogger(__name__)


class CardRedactor:
    def __init__(
        self,
        store: SqlStore,
        delivery: PrivateDelivery,
        clock: Clock,
        *,
        decorate: Callable[[CardJson], CardJson] = lambda card: card,
    ) -> None:
        self._store = store
        self._delivery = delivery
        self._clock = clock
        self._decorate = decorate

    def redacted_card(self, card: PassCard, reason: RedactionReason) -> CardJson:
        at = card.redacted_at or self._clock.now()
        return self._decorate(
            redacted_pass_card(
                target_label=card.target_label,
                start_at=card.start_at,
                expires_at=card.expires_at,
                one_time=card.one_time,
                reason=card.redaction_reason or reason.value,
                redacted_at=at,
                tz=_zone(card.timezone),
            )
        )

    async def claim(self, card: PassCard, reason: RedactionReason, actor_id: str) -> bool:
        """Marks the card redacted exactly once and audits it; False if someone got there first."""
        now = self._clock.now()
        if not await self._store.claim_redaction(card.id, reason, now):
            return False
        await self._store.record(
            AuditEvent(
                at=now,
                action=AuditAction.REDACT,
                outcome=AuditOutcome.SUCCEEDED,
                actor_id=actor_id,
                target_id=card.target_id,
                pass_method_id=card.pass_method_id,
                detail=f"card {card.id} hidden: {reason.value}",
            )
        )
        return True

    async def redact_sent_card(self, card: PassCard, reason: RedactionReason, actor_id: str) -> bool:
        """Replaces a card already in the chat by its redacted form; False if it was already redacted."""
        if not await self.claim(card, reason, actor_id):
            return False
        if card.activity_id is None:
            return True
        redacted = await self._store.pass_card(card.id)
        try:
            await self._delivery.update(
                PrivateChat(card.service_url, card.conversation_id),
                card.activity_id,
                card_message(self.redacted_card(redacted or card, reason)),
            )
        except Exception:
            # The pass is already expired, revoked or replaced, so a card left showing it cannot be used.
            logger.warning("could not update pass card %s in Teams", card.id, exc_info=True)
        return True

    async def redact_cards_of_pass(self, pass_method_id: str, reason: RedactionReason, actor_id: str) -> None:
        for card in await self._store.unredacted_cards_for_pass(pass_method_id):
            await self.redact_sent_card(card, reason, actor_id)

    async def redact_due(self) -> int:
        """Redacts every card whose pass has expired; returns how many this call redacted."""
        redacted = 0
        for card in await self._store.cards_due_for_redaction(self._clock.now()):
            redacted += await self.redact_sent_card(card, RedactionReason.EXPIRED, actor_id="tapbot")
        return redacted


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
