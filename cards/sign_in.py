"""The sign-in cards of delegated writes (issue 14): Teams' OAuthCard, and the sandbox's link-and-code card.

The OAuthCard (`application/vnd.microsoft.card.oauth`) is not an Adaptive Card: Teams renders it itself, tries a
silent single sign-on with its `tokenExchangeResource` first (the bot then gets `signin/tokenExchange`), and shows
its Sign in button when that fails. The sandbox has no single sign-on; it adds an Adaptive Card that opens the sign-in
link and asks for the 6-digit code the sign-in page shows (the Agents Playground also draws the OAuthCard, whose
Redeem code posts that code into the chat).
"""

from __future__ import annotations

from typing import Any

from microsoft_teams.cards.core import OpenUrlAction

from cards.passes import CardJson, heading, render, sentence

OAUTH_CARD = "application/vnd.microsoft.card.oauth"
SIGN_IN_TITLE = "Sign in"
SIGN_IN_TEXT = "Sign in to tapbot with your work account"


def oauth_attachment_content(
    *,
    connection_name: str,
    sign_in_link: str,
    token_exchange_resource: dict[str, Any] | None,
    token_post_resource: dict[str, Any] | None,
    text: str = SIGN_IN_TEXT,
) -> dict[str, Any]:
    """The OAuthCard's content, keys as Teams reads them; the resources exactly as the token service gave them.

    Not an Adaptive Card (Teams draws it itself, the Playground too): tests/http/test_delegated.py checks it."""
    card: dict[str, Any] = {
        "text": text,
        "connectionName": connection_name,
        "buttons": [{"type": "signin", "title": SIGN_IN_TITLE, "value": sign_in_link}],
    }
    if token_exchange_resource:
        card["tokenExchangeResource"] = token_exchange_resource
    if token_post_resource:
        card["tokenPostResource"] = token_post_resource
    return card


def magic_code_card(sign_in_link: str) -> CardJson:
    """The sandbox's way in where no OAuthCard renders: open the sign-in page, then type its code in this chat."""
    card = render(
        heading(SIGN_IN_TEXT),
        sentence("Open the sign-in page, choose Continue, then type the 6-digit code here."),
        sentence("The code works once, for 5 minutes. Never type it anywhere else.", subtle=True),
    )
    card["actions"] = [
        OpenUrlAction(title=SIGN_IN_TITLE, url=sign_in_link).model_dump(mode="json", exclude_none=True, by_alias=True)
    ]
    return card
