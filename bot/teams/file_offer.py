"""Sending a file to a user through Teams' file-consent flow, shared by everything that sends files.

1. `offer_activity(...)`: a FileConsentCard in the user's personal chat; its accept/decline context says which
   offer it is (`OFFER_KEY` names the kind, the rest is the offer's own data).
2. Teams answers with an invoke `fileConsent/invoke`; `consent_answer(activity)` reads it.
3. On accept, `upload_and_show(...)` PUTs the bytes to the upload URL Teams gave (allow-listed host) and posts the
   file-info card; then `acknowledge(...)` answers the invoke.

`route_consents(application, {kind: handler})` is the one route for `fileConsent/invoke`: each answer goes to the
handler of the kind of offer its context names, and an answer naming no offer the bot makes is refused (and
acknowledged, so Teams shows no error). The context travels through the client, so it is input: each handler
validates it, checks that the offer was made to the person answering, and checks that person's right again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from microsoft_agents.activity import Activity, ActivityTypes, Attachment, InvokeResponse
from microsoft_agents.hosting.core import AgentApplication, RouteRank, TurnContext, TurnState

from bot.domain.ports import FileTransfers
from bot.teams.activity import ConversationKind, conversation_kind

logger = logging.getLogger(__name__)

FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO = "application/vnd.microsoft.teams.card.file.info"
FILE_CONSENT_INVOKE = "fileConsent/invoke"
OFFER_KEY = "offer"  # the key in the accept/decline context that names the kind of offer


@dataclass(frozen=True)
class ConsentAnswer:
    """The user's answer to a FileConsentCard."""

    accepted: bool
    context: dict[str, Any]
    upload_url: str = ""
    content_url: str = ""
    name: str = ""
    unique_id: str | None = None
    file_type: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def offer_activity(*, name: str, description: str, size: int, context: dict[str, Any]) -> Activity:
    """The FileConsentCard message. `context` comes back with the answer (accept and decline alike)."""
    consent = Attachment(
        content_type=FILE_CONSENT,
        name=name,
        content={
            "description": description,
            "sizeInBytes": size,
            "acceptContext": context,
            "declineContext": context,
        },
    )
    return Activity(type=ActivityTypes.message, attachments=[consent])


def consent_answer(activity: Activity) -> ConsentAnswer:
    value = activity.value if isinstance(activity.value, dict) else {}
    context = value.get("context")
    upload = value.get("uploadInfo")
    upload = upload if isinstance(upload, dict) else {}
    unique_id = upload.get("uniqueId")
    return ConsentAnswer(
        accepted=value.get("action") == "accept",
        context=context if isinstance(context, dict) else {},
        upload_url=str(upload.get("uploadUrl") or ""),
        content_url=str(upload.get("contentUrl") or ""),
        name=str(upload.get("name") or ""),
        unique_id=str(unique_id) if unique_id is not None else None,
        file_type=str(upload.get("fileType") or ""),
        raw=value,
    )


async def upload_and_show(
    turn: TurnContext, transfers: FileTransfers, answer: ConsentAnswer, data: bytes, *, default_name: str
) -> None:
    """Uploads the accepted file and posts its file-info card. Raises TapError (TransferRefused) when it fails."""
    await transfers.upload(answer.upload_url, data)
    info = Attachment(
        content_type=FILE_INFO,
        content_url=answer.content_url,
        name=answer.name or default_name,
        content={"uniqueId": answer.unique_id, "fileType": answer.file_type or default_name.rsplit(".", 1)[-1]},
    )
    await turn.send_activity(Activity(type=ActivityTypes.message, attachments=[info]))


async def acknowledge(turn: TurnContext) -> None:
    """Answers the fileConsent/invoke with 200 (Teams shows an error on the card otherwise)."""
    await turn.send_activity(Activity(type="invokeResponse", value=InvokeResponse(status=200)))


def offer_kind(activity: Activity) -> str | None:
    if activity.type != ActivityTypes.invoke or activity.name != FILE_CONSENT_INVOKE:
        return None
    kind = consent_answer(activity).context.get(OFFER_KEY)
    return kind if isinstance(kind, str) else None


ConsentHandler = Callable[[TurnContext, TurnState], Awaitable[None]]
UNKNOWN_OFFER = "This file offer is not one I made, so I sent nothing. Ask for the file again."


def route_consents(application: AgentApplication[TurnState], handlers: dict[str, ConsentHandler]) -> None:
    """Every fileConsent/invoke goes to the handler of the kind of offer it answers; any other kind is refused."""

    def selector(turn: TurnContext) -> bool:
        return turn.activity.type == ActivityTypes.invoke and turn.activity.name == FILE_CONSENT_INVOKE

    async def dispatch(turn: TurnContext, state: TurnState) -> None:
        handler = handlers.get(offer_kind(turn.activity) or "")
        if handler is not None:
            await handler(turn, state)
            return
        logger.warning("refused a file-consent answer to an offer of unknown kind")
        await turn.send_activity(Activity(type=ActivityTypes.message, text=UNKNOWN_OFFER))
        await acknowledge(turn)

    application.add_route(selector, dispatch, is_invoke=True, rank=RouteRank.FIRST)


def is_personal(activity: Activity) -> bool:
    """A 1:1 chat with the bot. Teams names it "personal" (the Agents Playground leaves the type out); channels and
    group chats are never taken for one, by their type, their group flag or their "19:" thread id."""
    conversation = activity.conversation
    if conversation is None or conversation_kind(activity) is not ConversationKind.PERSONAL:
        return False
    return not conversation.is_group and not (conversation.id or "").startswith("19:")
