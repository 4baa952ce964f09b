"""Verified ID with Face Check as one of the verification flow's methods (bot/teams/verification_flow.py).

The flow starts a pending verification and asks this method to begin it (create the presentation request) before it
sends the technician's tracking card, and asks it what the card shows while pending: the QR code and the link.
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microsoft_teams.cards.core import CardElement

from bot.domain.errors import TapError
from bot.domain.verification import Verification
from bot.domain.verified_id import VerifiedIdRequests, VerifiedIdUnavailable
from bot.domain.verified_id_verifier import VerifiedIdVerifier
from cards.verified_id import verified_id_elements


class VerifiedIdMethod:
    def __init__(self, verifier: VerifiedIdVerifier, requests: VerifiedIdRequests, default_timezone: ZoneInfo) -> None:
        self._verifier = verifier
        self._requests = requests
        self._default_timezone = default_timezone

    async def begin(self, verification: Verification) -> None:
        try:
            await self._verifier.begin(verification)
        except VerifiedIdUnavailable as unavailable:
            raise TapError(str(unavailable)) from None

    async def card_extra(self, verification: Verification) -> Sequence[CardElement]:
        request = await self._requests.verified_id_request(verification.id)
        valid_until = request.expires_at if request is not None and request.request_id else None
        return verified_id_elements(verification, valid_until=valid_until, tz=self._zone(verification))

    def _zone(self, verification: Verification) -> ZoneInfo:
        try:
            return ZoneInfo(verification.timezone) if verification.timezone else self._default_timezone
        except (ZoneInfoNotFoundError, ValueError):
            return self._default_timezone
