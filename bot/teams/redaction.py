"""Hiding pass cards again: after hand-over, when the pass is revoked or replaced, and when it expires.

The schedule lives in SQL (the pass_cards table), so a restart loses nothing: the loop simply finds what
became due while the bot was down.

A bulk results page shows up to 50 passes. Besides its own row (the page: hand-over and expiry), each pass on it
has an entry row (`entry_card_id`) under that pass's method id, so revoking or replacing one pass finds its page
the way a single revoke finds its card. The page is then shown again with that pass marked and its value
removed; this needs the other values, which exist only in this replica's memory (`ResultPages`). Without them
(after a restart, or on another replica) the whole page is hidden instead: a revoked pass is never left on show.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.bulk import BulkJob, IssuedRow
from bot.domain.ports import AuditLog, Clock, PassCards, Transactions
from bot.domain.records import PassCard, RedactionReason
from bot.teams.delivery import PrivateChat, PrivateDelivery, card_message
from cards.bulk import results_page_card
from cards.passes import CardJson, redacted_pass_card

logger = logging.getLogger(__name__)

ENTRY_PREFIX = "e:"
MAX_DUE_BATCHES = 100  # at most 5,000 cards per round: a store that keeps failing to claim cannot loop forever
MAX_PAGES_KEPT = 400  # 20,000 passes at most; older pages fall back to being hidden whole
WITHDRAWN_WORDS = {RedactionReason.REVOKED: "revoked", RedactionReason.REPLACED: "replaced"}


def entry_card_id(page_card_id: str, index: int) -> str:
    """The pass_cards id of the index-th pass on a results page (36 characters, like the page's own id)."""
    return f"{ENTRY_PREFIX}{uuid.UUID(page_card_id).hex}{index:02d}"


def page_of_entry(card_id: str) -> str | None:
    """The results page an entry row belongs to, or None for any other card."""
    if not card_id.startswith(ENTRY_PREFIX) or len(card_id) != 36:
        return None
    try:
        return str(uuid.UUID(hex=card_id[2:34]))
    except ValueError:
        return None


@dataclass
class ShownPage:
    """A results page as sent, with its pass values: in memory only, to show it again without some of them."""

    card_id: str
    job: BulkJob
    number: int
    timezone: ZoneInfo
    entries: list[IssuedRow]
    withdrawn: dict[str, str] = field(default_factory=dict)  # pass method id → "revoked" / "replaced"


class ResultPages:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._pages: dict[str, ShownPage] = {}

    def add(self, page: ShownPage) -> None:
        self._pages[page.card_id] = page
        now = self._clock.now()
        for card_id in [key for key, shown in self._pages.items() if not _live(shown, now)]:
            self._pages.pop(card_id, None)
        while len(self._pages) > MAX_PAGES_KEPT:
            self._pages.pop(next(iter(self._pages)))

    def get(self, card_id: str) -> ShownPage | None:
        return self._pages.get(card_id)

    def forget(self, card_id: str) -> None:
        self._pages.pop(card_id, None)


def _live(page: ShownPage, now: datetime) -> bool:
    return any(entry.issued.info.expires_at > now for entry in page.entries)


class CardRedactor:
    def __init__(
        self,
        *,
        cards: PassCards,
        audit: AuditLog,
        delivery: PrivateDelivery,
        clock: Clock,
        decorate: Callable[[CardJson], CardJson] = lambda card: card,
        transactions: Transactions | None = None,
    ) -> None:
        self._transactions = transactions  # None: the claim and its audit row in two transactions
        self._store = cards
        self._audit = audit
        self._delivery = delivery
        self._clock = clock
        self._decorate = decorate
        self.pages = ResultPages(clock)

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
                tz=zone_or_utc(card.timezone),
            )
        )

    async def claim(self, card: PassCard, reason: RedactionReason, actor_id: str) -> bool:
        """Marks the card redacted exactly once and audits it; False if someone got there first."""
        now = self._clock.now()
        # One transaction: a card is never marked redacted without its audit row (nor kept from a later retry).
        async with self._transactions.together() if self._transactions is not None else nullcontext():
            if not await self._store.claim_redaction(card.id, reason, now):
                return False
            await self._audit.record(
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
        self.pages.forget(card.id)
        return True

    async def redact_sent_card(self, card: PassCard, reason: RedactionReason, actor_id: str) -> bool:
        """Replaces a card already in the chat by its redacted form; False if it was already redacted."""
        if page_of_entry(card.id) is not None:
            return await self._withdraw_entries([card], reason, actor_id) > 0
        if not await self.claim(card, reason, actor_id):
            return False
        if card.activity_id is None:
            return True
        try:  # the card as just claimed: redacted now, for this reason (no need to read it back)
            await self._delivery.update(
                PrivateChat(card.service_url, card.conversation_id),
                card.activity_id,
                card_message(self.redacted_card(card, reason)),
            )
        except Exception:
            # The pass is already expired, revoked or replaced, so a card left showing it cannot be used.
            logger.warning("could not update pass card %s in Teams", card.id, exc_info=True)
        return True

    async def redact_cards_of_pass(self, pass_method_id: str, reason: RedactionReason, actor_id: str) -> None:
        await self.redact_cards_of_passes([pass_method_id], reason, actor_id)

    async def redact_cards_of_passes(
        self, pass_method_ids: Iterable[str], reason: RedactionReason, actor_id: str
    ) -> int:
        """Hides every card showing one of these passes; a results page is shown again once, without them."""
        entries: list[PassCard] = []
        hidden = 0
        for method_id in dict.fromkeys(pass_method_ids):
            for card in await self._store.unredacted_cards_for_pass(method_id):
                if page_of_entry(card.id) is not None:
                    entries.append(card)
                else:
                    hidden += await self.redact_sent_card(card, reason, actor_id)
        return hidden + await self._withdraw_entries(entries, reason, actor_id)

    async def _withdraw_entries(self, entries: list[PassCard], reason: RedactionReason, actor_id: str) -> int:
        """Takes passes off their results pages: each page is shown again once, or hidden whole."""
        by_page: dict[str, list[PassCard]] = {}
        for entry in entries:
            page_id = page_of_entry(entry.id)
            if page_id is not None:
                by_page.setdefault(page_id, []).append(entry)
        withdrawn = 0
        for page_id, page_entries in by_page.items():
            page = await self._store.pass_card(page_id)
            word = WITHDRAWN_WORDS.get(reason)
            if page is None or page.redacted_at is not None or word is None:
                # The page is already hidden (or the pass merely expired, with its page): nothing on show.
                for entry in page_entries:
                    await self._store.claim_redaction(entry.id, reason, self._clock.now())
                if page is not None and page.redacted_at is None:
                    withdrawn += await self.redact_sent_card(page, reason, actor_id)
                continue
            claimed = [entry for entry in page_entries if await self.claim(entry, reason, actor_id)]
            withdrawn += len(claimed)
            shown = self.pages.get(page_id)
            if shown is None:
                await self.redact_sent_card(page, reason, actor_id)
                continue
            for entry in claimed:
                shown.withdrawn[entry.pass_method_id] = word
            if all(entry.issued.info.method_id in shown.withdrawn for entry in shown.entries):
                await self.redact_sent_card(page, reason, actor_id)
            else:
                await self._show_again(page, shown)
        return withdrawn

    async def _show_again(self, page: PassCard, shown: ShownPage) -> None:
        if page.activity_id is None:
            return
        card = results_page_card(
            shown.job,
            shown.entries,
            card_id=shown.card_id,
            page_number=shown.number,
            tz=shown.timezone,
            withdrawn=shown.withdrawn,
        )
        try:
            await self._delivery.update(
                PrivateChat(page.service_url, page.conversation_id),
                page.activity_id,
                card_message(self._decorate(card)),
            )
        except Exception:
            logger.warning("could not show results page %s again in Teams", page.id, exc_info=True)

    async def redact_due(self) -> int:
        """Redacts every card whose pass has expired; returns how many this call redacted."""
        redacted = 0
        # Batches until none is due: a results page brings up to 50 entry rows due with it.
        for _ in range(MAX_DUE_BATCHES):
            due = await self._store.cards_due_for_redaction(self._clock.now())
            for card in due:
                redacted += await self.redact_sent_card(card, RedactionReason.EXPIRED, actor_id="tapbot")
            if not due:
                break
        return redacted


def zone_or_utc(name: str) -> ZoneInfo:
    """The zone a card or job was shown in; UTC when its name is unknown here."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
