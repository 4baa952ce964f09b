"""Verified ID with Face Check as one of the verification flow's methods (bot/teams/verification_flow.py).

The flow starts a pending verification and asks this method to begin it (create the presentation request) before it
sends the technician's tracking card, and asks it what the card shows while pending: the QR code and the link.
"""

from __future__ import annotations

from collections.abc import Sequence

from microsoft_teams.cards.core import CardElement

from bot.domain.errors import TapError
from bot.domain.verification import Verification
from bot.domain.verified_id import VerifiedIdUnavailable
from bot.domain.verified_id_verifier import VerifiedIdVerifier
from cards.verified_id import verified_id_elements


class VerifiedIdMethod:
    def __init__(self, verifier: VerifiedIdVerifier) -> None:
        self._verifier = verifier

    async def begin(self, verification: Verification) -> None:
        try:
            await self._verifier.begin(verification)
        except VerifiedIdUnavailable as unavailable:
            raise TapError(str(unavailable)) from None

    async def card_extra(self, verification: Verification) -> Sequence[CardElement]:
        return verified_id_elements(verification)
