"""The Verified ID part of the technician's verification card: the QR code and link to give the user, then progress.

The tracking card (cards of the verification flow) includes these elements while a Verified ID verification is
pending. The link is the Request Service's `openid-vc://` URL: it is no secret (only the target's own credential
and face can answer it), yet it is only ever shown on the technician's private card.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from microsoft_teams.cards.core import CardElement, Image, RichTextBlock, TextRun

from bot.domain.verification import Verification, VerificationMethod
from cards.formatting import local_and_utc
from cards.passes import sentence
from cards.qr_code import qr_data_uri

SCANNED = "scanned"


def verified_id_elements(
    verification: Verification, *, valid_until: datetime | None = None, tz: tzinfo | None = None
) -> list[CardElement]:
    """While pending and not yet scanned: the QR code to show the caller and the link to send them (the tracking card
    says what to do with them, and that the caller opened the request once scanned), and until when the code works:
    the service's request can run out before the verification's own deadline."""
    if verification.method is not VerificationMethod.VERIFIED_ID or not verification.is_pending:
        return []
    url = verification.external_url
    if not url or verification.progress == SCANNED:
        return []
    return [
        Image(url=qr_data_uri(url), alt_text="QR code of the Verified ID request", width="200px", id="verifiedIdQr"),
        sentence(
            "The caller scans it with Microsoft Authenticator (or opens this link on their phone), shares their "
            "Verified Employee card and takes the Face Check:",
            subtle=True,
        ),
        RichTextBlock(id="verifiedIdLink", inlines=[TextRun(text=url, font_type="Monospace", size="Small")]),
        *(
            [sentence(f"The code works until {local_and_utc(valid_until, tz)}.", subtle=True)]
            if valid_until is not None and tz is not None
            else []
        ),
    ]
