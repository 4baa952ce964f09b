"""Putting a new pass on its private card in the requester's 1:1 chat, and nowhere else.

Used for passes issued by a command and for passes issued when an operator approves a request. If the 1:1
chat cannot be reached the pass is revoked at once: a live pass nobody has seen is pure risk.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from zoneinfo import ZoneInfo

from microsoft_agents.hosting.core import TurnContext

from bot.domain.model import Caller, IssuedPass, Recipient
from bot.domain.ports import Clock, PassCards
from bot.domain.records import PassCard, RedactionReason
from bot.domain.service import LeftLive, TapService
from bot.teams.activity import TurnFacts
from bot.teams.delivery import DeliveryFailed, PrivateDelivery, card_message, text_message
from bot.teams.redaction import CardRedactor
from cards.formatting import local_and_utc
from cards.passes import CardJson, pass_card

logger = logging.getLogger(__name__)

CARD_FAILED = "its card could not be shown"
CARD_NOT_RECORDED = "its card could not be recorded"
REVOKED_NOTE = "This pass was revoked right away: its card could not be recorded, so it could never be hidden."
TAKEN_BACK_NOTE = (
    "This pass was taken off this card: its card could not be recorded, so it could never be hidden. It could not be "
    "deleted either: see my message about it."
)


@dataclass(frozen=True)
class Undelivered:
    """The pass could not reach the requester and was revoked, or, when `left_live` says so, could not be deleted
    either (it is live). `reason` is safe to show."""

    reason: str
    left_live: LeftLive | None = None

    def outcome(self, tz: tzinfo, *, revoked: str = ", so I revoked it right away and nobody can use it.") -> str:
        """What became of the pass, to follow the sentence saying it was not delivered: `revoked`, or that it is
        live and how to remove it."""
        if self.left_live is None:
            return revoked
        return ". " + self.left_live.sentence(local_and_utc(self.left_live.info.expires_at, tz))


class PassDelivery:
    def __init__(
        self,
        *,
        delivery: PrivateDelivery,
        store: PassCards,
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
        acting_as: Caller | None = None,
    ) -> Undelivered | None:
        """Shows the new pass on its private card. Whatever fails before the card is shown and recorded, the pass
        is revoked: a pass is never left alive that no one was shown (or whose card could never be hidden).

        `acting_as`: who created it, when not the recipient (an approver): with delegated writes their rights, which
        just made the pass, delete it too."""
        card_id = str(uuid.uuid4())
        now = self._clock.now()
        requester = Caller(recipient.object_id, recipient.tenant_id, recipient.name, recipient)
        try:
            card = self._decorate(pass_card(issued, card_id=card_id, tz=tz, now=now))
            chat, activity_id = await self._delivery.send_to(
                recipient, card_message(card), context=context, current=current
            )
        except DeliveryFailed as failure:
            left = await self._service.revoke_undelivered(
                requester, issued, str(failure), acting_as=acting_as, timezone=tz.key
            )
            await self._hide_replaced(issued, recipient)
            return Undelivered(str(failure), left)
        except Exception:
            logger.exception("the card of a new pass for user %s could not be shown", issued.user.object_id)
            left = await self._service.revoke_undelivered(
                requester, issued, CARD_FAILED, acting_as=acting_as, timezone=tz.key
            )
            await self._hide_replaced(issued, recipient)
            return Undelivered(CARD_FAILED, left)
        try:
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
        except Exception:
            # Shown, but a card the bot cannot find again is never hidden: revoke the pass and take the card back.
            logger.exception("the card of a new pass for user %s could not be recorded", issued.user.object_id)
            left = await self._service.revoke_undelivered(
                requester, issued, CARD_NOT_RECORDED, acting_as=acting_as, timezone=tz.key, shown_to_requester=True
            )
            if activity_id:  # the card is taken back either way; it says revoked only when it was
                with contextlib.suppress(Exception):
                    note = REVOKED_NOTE if left is None else TAKEN_BACK_NOTE
                    await self._delivery.update(chat, activity_id, text_message(note))
            await self._hide_replaced(issued, recipient)
            return Undelivered(CARD_NOT_RECORDED, left)
        await self._hide_replaced(issued, recipient)
        try:
            # Another operator may have replaced this pass between its create and this card being recorded (their
            # redaction then found no card to hide): a card is never left showing a pass that no longer works.
            if not await self._service.still_current(issued):
                await self._redactor.redact_cards_of_pass(
                    issued.info.method_id, RedactionReason.REPLACED, recipient.object_id
                )
        except Exception:
            logger.warning("could not check whether a pass just delivered is still current", exc_info=True)
        return None

    async def _hide_replaced(self, issued: IssuedPass, recipient: Recipient) -> None:
        """The cards of the pass this one replaced: that pass ended with this one's create, whether this one's card
        could be shown or not."""
        if issued.replaced is None:
            return
        try:
            await self._redactor.redact_cards_of_pass(
                issued.replaced.method_id, RedactionReason.REPLACED, recipient.object_id
            )
        except Exception:
            logger.warning("could not hide the cards of the pass a new one replaced", exc_info=True)
