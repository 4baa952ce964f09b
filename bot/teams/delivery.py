"""Private delivery: everything sensitive goes to the requester's 1:1 chat with the bot, never elsewhere."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    Attachment,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
)
from microsoft_agents.hosting.core import ChannelServiceClientFactoryBase, TurnContext
from microsoft_agents.hosting.core.authorization import AuthenticationConstants, ClaimsIdentity
from microsoft_agents.hosting.core.connector import ConnectorClientBase

from bot.domain.model import Recipient
from bot.domain.ports import Clock, PersonalConversations
from bot.domain.records import PersonalConversation
from bot.teams.activity import TurnFacts

logger = logging.getLogger(__name__)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
INSTALL_ADVICE = (
    "Open Teams, search Apps for tapbot and choose Add (for me), then run the command again. "
    "Until then I can't send you anything privately."
)
# How long this process trusts that the store already holds a person's 1:1 chat, without reading it again on
# every turn; bounded so that a chat another replica saved in between is taken up again within minutes.
KNOWN_CHAT_TRUST = timedelta(minutes=10)
KNOWN_CHATS_KEPT = 10_000


class DeliveryFailed(Exception):
    """The 1:1 chat could not be reached. The reason is safe to show and log: it never holds a pass."""


@dataclass(frozen=True)
class PrivateChat:
    service_url: str
    conversation_id: str


def card_message(card: dict[str, Any]) -> Activity:
    """A card alone: Teams splits text plus card into two messages, and the card's id is needed to redact it."""
    return _Outgoing(
        type=ActivityTypes.message, attachments=[Attachment(content_type=ADAPTIVE_CARD, content=_SentCard(card))]
    )


class _SentCard(dict[str, Any]):
    """A card on its way out, which nothing changes once it is built. The SDK deep-copies every activity it sends
    (TurnContext.send_activities), and copying the card was two thirds of that: the copy shares this one instead."""

    def __deepcopy__(self, memo: dict[int, object]) -> _SentCard:
        return self


class _Outgoing(Activity):
    """An activity the bot sends. The SDK deep-copies each before filling in its addresses (TurnContext.
    send_activities), so that the caller's activity stays as it was; what the SDK then does to its copy only
    replaces top-level fields (the conversation reference, id, type, input hint), and the connector client only
    reads it. A shallow copy keeps the caller's activity just as unchanged, without copying every field and
    sub-model (about 25 us a message)."""

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> _Outgoing:
        return self.model_copy()


def text_message(text: str) -> Activity:
    return _Outgoing(type=ActivityTypes.message, text=text)


class Outbound:
    """Connector calls outside the current turn: creating a 1:1, sending to it, updating a card later."""

    def __init__(self, factory: ChannelServiceClientFactoryBase, *, app_id: str | None) -> None:
        self._factory = factory
        self._app_id = app_id or ""

    @asynccontextmanager
    async def _client(self, service_url: str) -> AsyncIterator[ConnectorClientBase]:
        anonymous = not self._app_id
        identity = ClaimsIdentity(
            {}
            if anonymous
            else {
                AuthenticationConstants.AUDIENCE_CLAIM: self._app_id,
                AuthenticationConstants.APP_ID_CLAIM: self._app_id,
            },
            authentication_type=None if anonymous else "Bearer",
        )
        client = await self._factory.create_connector_client(
            None, identity, service_url, AuthenticationConstants.AGENTS_SDK_SCOPE, use_anonymous=anonymous
        )
        try:
            yield client
        finally:
            await client.close()

    async def create_personal_chat(self, *, service_url: str, tenant_id: str, bot_id: str, user_id: str) -> str:
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=bot_id),
            members=[ChannelAccount(id=user_id)],
            tenant_id=tenant_id,
            channel_data={"tenant": {"id": tenant_id}},
        )
        async with self._client(service_url) as client:
            created = await client.conversations.create_conversation(parameters)
        if not created.id:
            raise DeliveryFailed("Teams did not return a personal chat.")
        return created.id

    async def send(self, chat: PrivateChat, activity: Activity) -> str | None:
        activity.conversation = ConversationAccount(id=chat.conversation_id)
        async with self._client(chat.service_url) as client:
            response = await client.conversations.send_to_conversation(chat.conversation_id, activity)
        return response.id

    async def update(self, chat: PrivateChat, activity_id: str, activity: Activity) -> None:
        activity.id = activity_id
        activity.conversation = ConversationAccount(id=chat.conversation_id)
        async with self._client(chat.service_url) as client:
            await client.conversations.update_activity(chat.conversation_id, activity_id, activity)


class PrivateDelivery:
    def __init__(self, *, outbound: Outbound, conversations: PersonalConversations, clock: Clock) -> None:
        self._outbound = outbound
        self._store = conversations
        self._clock = clock
        # object id -> (the chat the store holds, when this process last read or wrote it there)
        self._known: dict[str, tuple[PersonalConversation, datetime]] = {}

    async def remember_personal_chat(self, facts: TurnFacts) -> None:
        if not facts.is_personal or not facts.caller.object_id or not facts.service_url:
            return
        now = self._clock.now()
        remembered = self._known.get(facts.caller.object_id)
        if remembered and _same_chat(remembered[0], facts) and now - remembered[1] < KNOWN_CHAT_TRUST:
            return  # one SQL transaction less per turn: the store held this very chat moments ago
        known = await self._store.personal_conversation(facts.caller.object_id)
        if known and _same_chat(known, facts):
            self._remember(known, now)
            return
        conversation = PersonalConversation(
            facts.caller.object_id, facts.caller.tenant_id, facts.service_url, facts.conversation_id
        )
        await self._store.save_personal_conversation(conversation, now)
        self._remember(conversation, now)

    def _remember(self, conversation: PersonalConversation, at: datetime) -> None:
        self._known.pop(conversation.user_id, None)
        self._known[conversation.user_id] = (conversation, at)
        if len(self._known) > KNOWN_CHATS_KEPT:
            del self._known[next(iter(self._known))]  # the one remembered longest ago

    async def private_chat(
        self, recipient: Recipient, *, current: TurnFacts | None = None, fresh: bool = False
    ) -> PrivateChat:
        """The person's 1:1 chat: this turn's if it is theirs, else the remembered one, else a new one."""
        if current is not None and current.is_personal and current.caller.object_id == recipient.object_id:
            return PrivateChat(current.service_url, current.conversation_id)
        if not fresh:
            known = await self._store.personal_conversation(recipient.object_id)
            if known and known.service_url == recipient.service_url:
                return PrivateChat(known.service_url, known.conversation_id)
        try:
            conversation_id = await self._outbound.create_personal_chat(
                service_url=recipient.service_url,
                tenant_id=recipient.tenant_id,
                bot_id=recipient.bot_id,
                user_id=recipient.channel_account_id,
            )
        except aiohttp.ClientResponseError as error:
            raise DeliveryFailed(_refusal_reason(error.status)) from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise DeliveryFailed(f"Teams could not be reached ({type(error).__name__}).") from None
        conversation = PersonalConversation(
            recipient.object_id, recipient.tenant_id, recipient.service_url, conversation_id
        )
        await self._store.save_personal_conversation(conversation, self._clock.now())
        self._remember(conversation, self._clock.now())
        return PrivateChat(recipient.service_url, conversation_id)

    async def send(
        self,
        chat: PrivateChat,
        activity: Activity,
        *,
        context: TurnContext | None = None,
        current: TurnFacts | None = None,
    ) -> str | None:
        """Sends into the chat (in-turn when it is the current one); returns the message id for later updates."""
        try:
            if context is not None and current is not None and chat.conversation_id == current.conversation_id:
                response = await context.send_activity(activity)
                return response.id if response else None
            return await self._outbound.send(chat, activity)
        except aiohttp.ClientResponseError as error:
            raise DeliveryFailed(_refusal_reason(error.status)) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"Teams could not be reached ({type(error).__name__}).") from None

    async def send_to(
        self,
        recipient: Recipient,
        activity: Activity,
        *,
        context: TurnContext | None = None,
        current: TurnFacts | None = None,
    ) -> tuple[PrivateChat, str | None]:
        """Sends into the person's 1:1 chat, retrying once with a new 1:1 if the remembered one fails.

        Returns the chat and the message id, which a later redaction needs.
        """
        chat = await self.private_chat(recipient, current=current)
        try:
            return chat, await self.send(chat, activity, context=context, current=current)
        except DeliveryFailed:
            if current is not None and chat.conversation_id == current.conversation_id:
                raise
            chat = await self.private_chat(recipient, current=current, fresh=True)
            return chat, await self.send(chat, activity, context=context, current=current)

    async def send_privately(
        self, context: TurnContext, facts: TurnFacts, activity: Activity
    ) -> tuple[PrivateChat, str | None]:
        """Sends to the author of the current turn, in their 1:1 chat."""
        return await self.send_to(facts.recipient, activity, context=context, current=facts)

    async def post(self, chat: PrivateChat, activity: Activity) -> str | None:
        """Posts into a shared conversation (the approvals channel): never anything private."""
        try:
            return await self._outbound.send(chat, activity)
        except aiohttp.ClientResponseError as error:
            raise DeliveryFailed(f"Teams answered {error.status} when I posted to the channel.") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"Teams could not be reached ({type(error).__name__}).") from None

    async def update(self, chat: PrivateChat, activity_id: str, activity: Activity) -> None:
        await self._outbound.update(chat, activity_id, activity)


def _refusal_reason(status: int) -> str:
    if status in (401, 403):
        return "Teams refused to open a personal chat with you: the app is not installed for you."
    if status == 404:
        return "Teams no longer knows our personal chat."
    if status == 429:
        return "Teams is rate-limiting messages right now."
    return f"Teams answered {status} when I tried to write to you privately."


def _same_chat(known: PersonalConversation, facts: TurnFacts) -> bool:
    return known.conversation_id == facts.conversation_id and known.service_url == facts.service_url
