"""Mentions are users: `@tapbot issue @Megan Bowen 2h` in a channel or group chat names Megan by the mention entity,
never by the text inside `<at>…</at>`, which is whatever the sender's client wrote.

Teams sends each mention as an entity `{"type": "mention", "mentioned": {"id": "29:…", "name": …}, "text":
"<at>Megan Bowen</at>"}`. The person is the entity's `mentioned.aadObjectId` when it carries one, its `mentioned.id`
when that is itself an object id, and otherwise (a Teams `29:` id) the `aadObjectId` the connector's
conversation-member lookup (`GET {serviceUrl}/v3/conversations/{id}/members/{memberId}`, what TeamsInfo does)
answers for it. The text handed to the parser names that object id in place of the `<at>…</at>`; the bot's own
mention is removed as before (bot/teams/activity.py). A mention that cannot be resolved stops the command with a
sentence: nothing is done for a person the bot could not identify.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.core.connector import ConnectorClientBase
from pydantic import ValidationError

from bot.domain.errors import TapError
from bot.teams.activity import clean_text, object_id_of, tenant_id_of
from bot.teams.turn import Turn

logger = logging.getLogger(__name__)

# Only a whole `<at …>name</at>` is a mention's place in the text; anything else an entity claims is ignored, so an
# entity can never rewrite other words of the command.
_MENTION_MARKUP = re.compile(r"<at\b[^<>]*>[^<>]*</at>", re.IGNORECASE)
_TAGS = re.compile(r"<[^<>]*>")
MAX_MENTIONS = 10

NOT_RESOLVED = (
    "I couldn't tell who {name} is: Teams did not confirm that mention as a person of your organisation, so I did "
    "nothing. Mention them again, or give their user principal name (name@domain)."
)
TOO_MANY = "That message mentions too many people. Name one person per command."


class MentionNotResolved(TapError):
    """A mention in the command whose person Teams did not confirm. Nothing was done."""


@dataclass(frozen=True)
class UserMention:
    markup: str  # the `<at>…</at>` text the entity claims
    member_id: str  # mentioned.id (a Teams `29:` id, or an object id)
    object_id: str  # mentioned.aadObjectId, when the entity carries a valid one

    @property
    def shown_name(self) -> str:
        """What the mention reads as, quoted: only ever shown back to its own sender."""
        name = clean_text(_TAGS.sub(" ", self.markup))
        return f"'{name}'" if name else "that mention"


def user_mentions(activity: Activity) -> list[UserMention]:
    """The mention entities of other people than the bot, in the order Teams lists them."""
    bot_id = activity.recipient.id if activity.recipient else None
    found: list[UserMention] = []
    for entity in activity.entities or []:
        if getattr(entity, "type", None) != "mention":
            continue
        data: dict[str, Any] = entity.model_dump(mode="json", by_alias=True, exclude_none=True)
        mentioned = data.get("mentioned")
        text = data.get("text")
        if not isinstance(mentioned, dict) or not isinstance(text, str):
            continue
        member_id = mentioned.get("id")
        if not isinstance(member_id, str) or not member_id or member_id == bot_id:
            continue
        if not _MENTION_MARKUP.fullmatch(text.strip()):
            continue
        found.append(UserMention(text.strip(), member_id, object_id_of(mentioned.get("aadObjectId"))))
    return found


async def text_with_mentions(turn: Turn) -> str:
    """The typed text as the parser reads it: each person's mention replaced by their object id, the bot's own
    mention and any other markup removed. Raises MentionNotResolved when a mentioned person cannot be confirmed."""
    activity = turn.context.activity
    raw = activity.text or ""
    mentions = [mention for mention in user_mentions(activity) if mention.markup in raw]
    if not mentions:
        return turn.facts.text
    if len(mentions) > MAX_MENTIONS:
        raise MentionNotResolved(TOO_MANY)
    places: list[tuple[int, int, str]] = []
    for mention in mentions:
        span = _free_place(raw, mention.markup, places)
        if span is None:
            continue
        object_id = await resolve_member(turn.context, mention.member_id, known=mention.object_id)
        if not object_id:
            raise MentionNotResolved(NOT_RESOLVED.format(name=mention.shown_name))
        places.append((*span, object_id))
    pieces: list[str] = []
    position = 0
    for start, end, object_id in sorted(places):
        pieces.extend((raw[position:start], f" {object_id} "))
        position = end
    pieces.append(raw[position:])
    return clean_text("".join(pieces))


def _free_place(raw: str, markup: str, taken: list[tuple[int, int, str]]) -> tuple[int, int] | None:
    """The first occurrence of `markup` not already taken by an earlier mention (two mentions may read alike)."""
    start = raw.find(markup)
    while start != -1:
        end = start + len(markup)
        if all(end <= begin or start >= finish for begin, finish, _ in taken):
            return start, end
        start = raw.find(markup, start + 1)
    return None


async def resolve_member(context: TurnContext, member_id: str, *, known: str = "") -> str:
    """The Entra object id of a Teams member of this turn's conversation: `known` (an aadObjectId the activity
    carried), `member_id` itself when it is an object id, else the connector's member lookup; "" when Teams does not
    confirm a person of the caller's tenant."""
    if known:
        return known
    direct = object_id_of(member_id)
    if direct:
        return direct
    client = context.services.get(ConnectorClientBase)
    activity = context.activity
    conversation_id = _roster_of(activity)
    if client is None or not conversation_id:
        return ""
    try:
        member = await client.conversations.get_conversation_member(conversation_id, member_id)
    except (aiohttp.ClientError, TimeoutError, ValueError, ValidationError) as error:
        logger.info("mention lookup: Teams did not confirm a member (%s)", type(error).__name__)
        return ""
    tenant = getattr(member, "tenant_id", None)
    caller_tenant = tenant_id_of(activity)
    if tenant and caller_tenant and str(tenant).lower() != caller_tenant.lower():
        return ""
    return object_id_of(getattr(member, "aad_object_id", None))


def _roster_of(activity: Activity) -> str:
    """Where to look a member up: the team for a channel message (as TeamsInfo does), else the conversation."""
    channel_data: Any = activity.channel_data
    team: Any = None
    if isinstance(channel_data, dict):
        team = channel_data.get("team")
    elif channel_data is not None:
        team = getattr(channel_data, "team", None)
    team_id = team.get("id") if isinstance(team, dict) else getattr(team, "id", None)
    if isinstance(team_id, str) and team_id:
        return team_id
    return activity.conversation.id if activity.conversation and activity.conversation.id else ""
