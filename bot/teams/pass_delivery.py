"""Putting a new pass on its private card in the requester's 1:1 chat, and nowhere else.

Used for passes issued by a command and for passes issued when an operator approves a request. If the 1:1
chat cannot be reached the pass is revoked at once: a live pass nobody has seen is pure risk.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from microsoft_agents.hosting.core import TurnContext

from bot.adapters.store import PassCard, RedactionReason, SqlStore
from bot.domain.model import Caller, IssuedPass, Recipient
from bot.domain.ports import Clock
from bot.domain.service import TapService
from bot.teams.activity import TurnFacts
from bot.teams.delivery import DeliveryFailed, PrivateDelivery, card_message
from bot.teams.redaction import CardRedactor
from cards.passes import CardJson, pass_card


@dataclass(frozen=True)
class Undelivered:
    """The pass could not reach the requester and was revoked; `reason` is safe to show."""

    reason: str


class PassDelivery:
    def __init__(
        self,
        *,
        delivery: PrivateDelivery,
        store: SqlStore,
        redactor: CardRedactor,
        service: TapService,
        clock: Clock,
        decorate: Callable[[CardJson], CardJson],
    ) -> None:
        self._delivery = delivery
        self._store = store
        self._redactor = redactor
        self._service = service
        self._clock = clock
        self._decorate = decorate

    async def deliver(
        self,
        issued: IssuedPass,
        recipient: Recipient,
        tz: ZoneInfo,
        *,
        context: TurnContext | None = None,
        current: TurnFacts | None = None,
    ) -> Undelivered | None:
        card_id = str(uuid.uuid4())
        now = self._clock.now()
        card = self._decorate(pass_card(issued, card_id=card_id, tz=tz, now=now))
        requester = Caller(recipient.object_id, recipient.tenant_id, recipient.name, recipient)
        try:
            chat, activity_id = await self._delivery.send_to(
                recipient, card_message(card), context=context, current=current
            )
        except DeliveryFailed as failure:
            await self._service.revoke_undelivered(requester, issued, str(failure))
            return Undelivered(str(failure))
        await self._store.save_pass_card(
            PassCard(
                id=card_id,
                requester_id=recipient.object_id,
                target_id=issued.user.object_id,
                target_label=issued.user.label,
                pass_method_id=issued.info.method_id,
                start_at=issued.info.start_at,
                expires_at=issued.info.expires_at,
                one_time=issued.info.one_time,
                timezone=tz.key,
                service_url=chat.service_url,
                conversation_id=chat.conversation_id,
                activity_id=activity_id,
                created_at=now,
            )
        )
        if issued.replaced is not None:
            await self._redactor.redact_cards_of_pass(
                issued.replaced.method_id, RedactionReason.REPLACED, recipient.object_id
            )
        return None
