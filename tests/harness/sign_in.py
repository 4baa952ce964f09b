"""Teams' side of delegated writes' sign-in, for HTTP tests: the OAuthCard the bot sends, the `signin/*` invokes a
Teams client sends back (with a Teams SSO token the sandbox's Entra mints for the person), the sign-in page's code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.sandbox.identity import SandboxIdentity
from bot.sandbox.tokens import UserClaims
from tests.harness.bot import Person, RunningBot
from tests.harness.connector import Sent

OAUTH_CARD = "application/vnd.microsoft.card.oauth"
CONNECTION = "tapbot-graph"


def delegated_env(**overrides: str) -> dict[str, str]:
    """The settings of a bot that writes passes with the technician's own rights."""
    return {"TAPBOT_GRAPH_WRITES": "delegated", "TAPBOT_OAUTH_CONNECTION": CONNECTION, **overrides}


def identity(bot: RunningBot) -> SandboxIdentity:
    sandbox = bot.components.sandbox
    assert sandbox is not None
    return sandbox.state.identity


def graph_callers(bot: RunningBot) -> list[str]:
    """Records whose delegated token each Graph request the sandbox checks carries (its own check, unchanged)."""
    ids = identity(bot)
    seen: list[str] = []
    check = ids.graph_caller

    def recording(header: str | None) -> UserClaims | None:
        claims = check(header)
        if claims is not None:
            seen.append(claims.object_id)
        return claims

    ids.graph_caller = recording  # type: ignore[method-assign]
    return seen


@dataclass(frozen=True)
class SignInCard:
    sent: Sent
    content: dict[str, Any]

    @property
    def exchange_id(self) -> str:
        return self.content["tokenExchangeResource"]["id"]

    @property
    def link(self) -> str:
        return self.content["buttons"][0]["value"]


def oauth_cards(sent: list[Sent]) -> list[SignInCard]:
    return [
        SignInCard(item, attachment["content"])
        for item in sent
        for attachment in item.activity.get("attachments") or []
        if attachment.get("contentType") == OAUTH_CARD
    ]


def sign_in_invoke(bot: RunningBot, person: Person, name: str, value: dict[str, Any], **options: Any) -> dict[str, Any]:
    activity = bot.activity(person, **options)
    activity.update({"type": "invoke", "name": name, "value": value})
    return activity


async def invoke(bot: RunningBot, activity: dict[str, Any]) -> tuple[int, Any]:
    async with bot.session.post(f"{bot.url}/api/messages", json=activity) as response:
        text = await response.text()
        body = await response.json() if text else None
        return response.status, body


async def token_exchange(
    bot: RunningBot,
    person: Person,
    exchange_id: str,
    *,
    token: str | None = None,
    connection: str = CONNECTION,
    **options: Any,
) -> tuple[int, Any]:
    """What Teams sends after an OAuthCard with a tokenExchangeResource: the person's Teams SSO token for the bot."""
    sso = token if token is not None else identity(bot).teams_sso_token(person.object_id)
    value = {"id": exchange_id, "connectionName": connection, "token": sso}
    return await invoke(bot, sign_in_invoke(bot, person, "signin/tokenExchange", value, **options))


async def verify_state(bot: RunningBot, person: Person, code: str, **options: Any) -> tuple[int, Any]:
    """What Teams sends after the person signed in with the card's button."""
    return await invoke(bot, sign_in_invoke(bot, person, "signin/verifyState", {"state": code}, **options))


def sign_in_page_code(bot: RunningBot, card: SignInCard) -> str:
    """The person opens the card's sign-in link and presses Continue: the page's 6-digit code."""
    return identity(bot).sign_in_code(card.link)
