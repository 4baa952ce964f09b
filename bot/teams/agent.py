"""The Microsoft 365 Agents SDK runtime: adapter, application, incoming authentication, handler table."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    RoleTypes,
    SignInResource,
    TokenExchangeRequest,
    TokenOrSignInResourceResponse,
    TokenResponse,
    TokenStatus,
    load_configuration_from_env,
)
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import (
    AgentApplication,
    ApplicationOptions,
    MemoryStorage,
    RestChannelServiceClientFactory,
    RouteRank,
    Storage,
    TurnContext,
    TurnState,
)
from microsoft_agents.hosting.core.app.state import TempState
from microsoft_agents.hosting.core.authorization import AccessTokenProviderBase, AgentAuthConfiguration, ClaimsIdentity
from microsoft_agents.hosting.core.connector import ConnectorClientBase, UserTokenClientBase
from microsoft_agents.hosting.core.connector.agent_sign_in_base import AgentSignInBase
from microsoft_agents.hosting.core.connector.client import UserTokenClient
from microsoft_agents.hosting.core.connector.teams import TeamsConnectorClient
from microsoft_agents.hosting.core.connector.user_token_base import UserTokenBase

from bot.settings import DEFAULT_CONNECTOR_HOSTS, DEFAULT_TOKEN_SERVICE_URL, Settings
from bot.teams.approval_flow import ApprovalFlow
from bot.teams.audit_export import AUDIT_EXPORT_OFFER, AuditExportFlow
from bot.teams.bulk_flow import BULK_RESULTS_OFFER, BulkFlow
from bot.teams.commands import TypedCommands
from bot.teams.file_offer import route_consents
from bot.teams.forms import FormFlow, FormSubmissions, is_people_search
from bot.teams.handlers import TapHandlers, is_unhandled_card_action
from bot.teams.message_action import MessageAction, is_message_action
from bot.teams.people_flow import PersonChoices
from bot.teams.sdk_spans import skip_unrecorded_sdk_spans
from bot.teams.sign_in import SignIns, is_sign_in_invoke, sign_in_off
from bot.teams.trust import ConnectorHosts, KeyEndorsements, UntrustedServiceUrl, channel_issuers
from bot.teams.turn import Turns
from bot.teams.verification_flow import VerificationFlow, verification_off
from cards import verbs

# Connector clients kept at once (KeptConnectorClient): one per connector address and bot token in use; a token is
# renewed about hourly and Teams has a few regional addresses, so more than this means the oldest is no longer used.
KEPT_CONNECTOR_CLIENTS = 16
# How long the bot's outbound token is used after MSAL handed it out (TrustedClientFactory._bot_token): MSAL hands
# out only tokens still valid at least 5 more minutes (it renews those closer to expiry), so this one still is.
BOT_TOKEN_KEPT = 240.0
BOT_TOKENS_KEPT = 16


class TrustedClientFactory(RestChannelServiceClientFactory):
    """The one place outgoing connector clients are made (replies, new chats, proactive sends, card updates):
    none is made for an address that is not an allowed connector host, whatever stored reference asked for it.

    `anonymous`: outbound calls carry no token (SandboxClientFactory).
    """

    def __init__(
        self,
        connections: MsalConnectionManager,
        hosts: ConnectorHosts,
        *,
        anonymous: bool = False,
        token_service_url: str = DEFAULT_TOKEN_SERVICE_URL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(connections, token_service_endpoint=token_service_url)
        self._hosts = hosts
        self._anonymous = anonymous
        self._clock = clock
        self._tokens: dict[tuple[AccessTokenProviderBase, str, tuple[str, ...]], tuple[str, float]] = {}
        self._pool: aiohttp.TCPConnector | None = None
        self._kept: dict[tuple[str, str], KeptConnectorClient] = {}  # by address and token, oldest first
        self._retired: set[KeptConnectorClient] = set()  # out of `_kept`, still lent to a turn or a send

    async def create_connector_client(
        self,
        context: TurnContext | None,
        claims_identity: ClaimsIdentity,
        service_url: str,
        audience: str,
        scopes: list[str] | None = None,
        use_anonymous: bool = False,
    ) -> ConnectorClientBase:
        if not self._hosts.allows(service_url):
            raise UntrustedServiceUrl("refusing to send to a service URL that is not an allowed connector host")
        anonymous = use_anonymous or self._anonymous
        if not service_url or not audience or (context is not None and _not_a_teams_connector(context)):
            return await super().create_connector_client(
                context, claims_identity, service_url, audience, scopes, use_anonymous=anonymous
            )
        # The SDK's own method gives every client a session with its own connections, closed after each turn or
        # send: a TCP (and in production TLS) handshake per message, and a client built anew (its headers, the
        # SDK's version looked up in the installed packages) each time. Instead one client per connector address
        # and token, on one shared pool, is lent to every turn and send (KeptConnectorClient).
        scopes = scopes or claims_identity.get_token_scope()
        if anonymous:
            token = await self._ANONYMOUS_TOKEN_PROVIDER.get_access_token(audience, scopes)
        else:
            provider = self._connection_manager.get_token_provider(claims_identity, service_url)
            token = await self._bot_token(provider, audience, scopes)
        endpoint = service_url if service_url.endswith("/") else f"{service_url}/"
        client = self._kept.get((endpoint, token))
        if client is None:
            client = KeptConnectorClient(endpoint, token, self._connections(), self._closed_after_lending)
            self._kept[(endpoint, token)] = client
            if len(self._kept) > KEPT_CONNECTOR_CLIENTS:  # a token renewed, or many addresses: the oldest goes
                oldest = self._kept.pop(next(iter(self._kept)))
                self._retired.add(oldest)
                await oldest.retire()
        client.lend()
        return client

    async def _bot_token(self, provider: AccessTokenProviderBase, audience: str, scopes: list[str]) -> str:
        """The bot's outbound token, asked of MSAL once per BOT_TOKEN_KEPT instead of at every turn and send: each
        ask was a trip to a worker thread and a search of MSAL's token cache (~0.15 ms of CPU), for the same
        token until MSAL renews it."""
        place = (provider, audience, tuple(scopes))
        now = self._clock()
        kept = self._tokens.get(place)
        if kept is not None and 0 <= now - kept[1] < BOT_TOKEN_KEPT:
            return kept[0]
        token = await provider.get_access_token(audience, scopes)
        self._tokens.pop(place, None)
        self._tokens[place] = (token, now)
        if len(self._tokens) > BOT_TOKENS_KEPT:
            del self._tokens[next(iter(self._tokens))]  # the one asked for longest ago
        return token

    def _closed_after_lending(self, client: KeptConnectorClient) -> None:
        self._retired.discard(client)

    def _connections(self) -> aiohttp.TCPConnector:
        if self._pool is None or self._pool.closed:
            self._pool = aiohttp.TCPConnector()  # certificates verified, as the SDK's own sessions do
        return self._pool

    async def close(self) -> None:
        """Closes the clients kept and the connections to connector hosts (at app cleanup)."""
        kept, self._kept = [*self._kept.values(), *self._retired], {}
        self._retired = set()
        for client in kept:
            await client.close_session()
        if self._pool is not None:
            await self._pool.close()

    async def create_user_token_client(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, context: TurnContext | None, claims_identity: ClaimsIdentity, use_anonymous: bool = False
    ) -> UserTokenClientBase:  # all the SDK's adapter takes (ChannelServiceClientFactoryBase's own signature)
        """What the SDK asks for at every turn and proactive call, used or not (only its own OAuth flows use it, which
        this bot does not register): made, with its token, only when a call needs it. Building one per turn cost a
        session of its own and, with a registration, a token lookup for the token service on every message."""
        return TokenClientOnDemand(lambda: self.user_token_client(context, claims_identity, use_anonymous))

    async def user_token_client(
        self, context: TurnContext | None, claims_identity: ClaimsIdentity, use_anonymous: bool = False
    ) -> UserTokenClient:
        """A token service client (delegated writes' sign-in, bot/teams/sign_in.py); `context` None outside a turn
        (a bulk run asking its requester to sign in again), where the SDK's own method cannot go."""
        anonymous = use_anonymous or self._anonymous
        if context is not None or anonymous:
            return await super().create_user_token_client(
                context,  # type: ignore[arg-type]  # not read when anonymous
                claims_identity,
                use_anonymous=anonymous,
            )
        provider = self._connection_manager.get_token_provider(claims_identity, self._token_service_endpoint)
        token = await provider.get_access_token(self._token_service_audience, claims_identity.get_token_scope())
        return UserTokenClient(
            app_id=claims_identity.get_app_id() or "", endpoint=self._token_service_endpoint, token=token
        )


class TokenClientOnDemand(UserTokenClientBase):
    """A token service client made on its first call (`make`), and closed only if it was made."""

    def __init__(self, make: Callable[[], Awaitable[UserTokenClient]]) -> None:
        self._make = make
        self._client: UserTokenClient | None = None

    async def _made(self) -> UserTokenClient:
        if self._client is None:
            client = await self._make()
            if self._client is None:
                self._client = client
            else:  # two first calls at once: one client is kept
                await client.close()
        return self._client

    def _made_already(self) -> UserTokenClient:
        if self._client is None:
            raise RuntimeError("the token service client is made by its first call: call one of its methods first")
        return self._client

    @property
    def agent_sign_in(self) -> AgentSignInBase:
        return self._made_already().agent_sign_in

    @property
    def user_token(self) -> UserTokenBase:
        return self._made_already().user_token

    async def get_user_token(
        self, user_id: str, connection_name: str, channel_id: str, magic_code: str | None = None
    ) -> TokenResponse:
        return await (await self._made()).get_user_token(user_id, connection_name, channel_id, magic_code)

    async def get_sign_in_resource(
        self, connection_name: str, activity: Activity, final_redirect: str | None = None
    ) -> SignInResource:
        return await (await self._made()).get_sign_in_resource(connection_name, activity, final_redirect)

    async def sign_out_user(self, user_id: str, connection_name: str, channel_id: str) -> None:
        await (await self._made()).sign_out_user(user_id, connection_name, channel_id)

    async def get_token_status(self, user_id: str, channel_id: str, include: str | None = None) -> list[TokenStatus]:
        return await (await self._made()).get_token_status(user_id, channel_id, include)

    async def get_aad_tokens(
        self, user_id: str, connection_name: str, resource_urls: list[str], channel_id: str
    ) -> dict[str, TokenResponse]:
        return await (await self._made()).get_aad_tokens(user_id, connection_name, resource_urls, channel_id)

    async def exchange_token(
        self, user_id: str, connection_name: str, channel_id: str, exchange_request: TokenExchangeRequest
    ) -> TokenResponse:
        return await (await self._made()).exchange_token(user_id, connection_name, channel_id, exchange_request)

    async def get_token_or_sign_in_resource(
        self,
        connection_name: str,
        activity: Activity,
        code: str | None = None,
        final_redirect: str | None = None,
        fwd_url: str | None = None,
    ) -> TokenOrSignInResourceResponse:
        return await (await self._made()).get_token_or_sign_in_resource(
            connection_name, activity, code, final_redirect, fwd_url
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


class KeptConnectorClient(TeamsConnectorClient):
    """A connector client for one address and token, kept across turns and lent to each (the SDK closes the client
    of a turn or a send when done: here that gives the loan back). Its session holds only the address and the token
    (no cookies: nothing of one turn's answers goes into another's requests); it is closed once it is retired (its
    token renewed) and no longer lent, or when the factory closes."""

    def __init__(
        self,
        endpoint: str,
        token: str,
        connections: aiohttp.TCPConnector,
        on_closed: Callable[[KeptConnectorClient], None],
    ) -> None:
        session = aiohttp.ClientSession(
            base_url=endpoint, connector=connections, connector_owner=False, cookie_jar=aiohttp.DummyCookieJar()
        )
        super().__init__(endpoint=endpoint, token=token, session=session)
        self._lent = 0
        self._retired = False
        self._on_closed = on_closed

    def lend(self) -> None:
        self._lent += 1

    async def close(self) -> None:
        """The end of one loan (what the SDK calls after each turn or send)."""
        self._lent = max(0, self._lent - 1)
        if self._retired and self._lent == 0:
            await self.close_session()

    async def retire(self) -> None:
        """No new loans; closed when the last one ends."""
        self._retired = True
        if self._lent == 0:
            await self.close_session()

    async def close_session(self) -> None:
        await super().close()
        self._on_closed(self)


class TurnScratch(TurnState):
    """The SDK's turn state as tapbot uses it: the turn's temp scope only. The SDK loads a conversation and a user
    state from its storage at every turn and saves them after (three tasks gathered), for handlers that keep
    something there; tapbot's handlers keep nothing there (what lasts is in its database), so neither is loaded or
    saved (~40 us a turn). A handler asking for either scope gets the SDK's error that it has none."""

    async def load(self, context: TurnContext, storage: Storage) -> TurnScratch:
        self._scopes[TempState.SCOPE_NAME] = TempState()
        return self

    async def save(self, turn_context: TurnContext, force: bool = False) -> None:
        return None


def _verb_of(context: TurnContext) -> str:
    value = context.activity.value
    action = cast(dict[str, object], value).get("action") if isinstance(value, dict) else None
    verb = cast(dict[str, object], action).get("verb") if isinstance(action, dict) else None
    return verb if isinstance(verb, str) else ""


def _not_a_teams_connector(context: TurnContext) -> bool:
    """The SDK's agentic and Copilot Studio paths, which need its own clients (Teams never takes them)."""
    activity = context.activity
    return activity.is_agentic_request() or (
        activity.recipient is not None and activity.recipient.role == RoleTypes.connector_user
    )


class SandboxClientFactory(TrustedClientFactory):
    """For the unauthenticated sandbox only: outbound calls carry no token, because no registration exists.

    Without this the SDK builds authenticated claims for proactive calls and fails for lack of a tenant.
    """

    def __init__(
        self,
        connections: MsalConnectionManager,
        hosts: ConnectorHosts | None = None,
        *,
        token_service_url: str = DEFAULT_TOKEN_SERVICE_URL,
    ) -> None:
        loopback = ConnectorHosts(DEFAULT_CONNECTOR_HOSTS, any_loopback=True)
        super().__init__(connections, hosts or loopback, anonymous=True, token_service_url=token_service_url)


@dataclass(frozen=True)
class TeamsRuntime:
    adapter: CloudAdapter
    application: AgentApplication[TurnState]
    auth_configuration: AgentAuthConfiguration
    client_factory: TrustedClientFactory
    connector_hosts: ConnectorHosts
    channel_issuers: frozenset[str]
    token_service_url: str = DEFAULT_TOKEN_SERVICE_URL  # the Bot Framework token service (delegated writes)
    key_endorsements: KeyEndorsements = field(default_factory=KeyEndorsements)  # the channel's keys, per app


def build_runtime(settings: Settings, *, token_service_url: str | None = None) -> TeamsRuntime:
    """`token_service_url`: the Bot Framework token service delegated writes sign in through (the sandbox's own
    when it runs); default the setting TAPBOT_TOKEN_SERVICE_URL."""
    skip_unrecorded_sdk_spans()
    # In the sandbox, the Playground and the test connectors answer on loopback ports chosen at start.
    hosts = ConnectorHosts(settings.connector_hosts, any_loopback=settings.anonymous)
    token_service = token_service_url or settings.token_service_url
    if settings.anonymous:
        auth = AgentAuthConfiguration(anonymous_allowed=True)
        connections = MsalConnectionManager(connections_configurations={"SERVICE_CONNECTION": auth})
        factory: TrustedClientFactory = SandboxClientFactory(connections, hosts, token_service_url=token_service)
    else:
        sdk_config: dict[str, Any] = load_configuration_from_env(dict(settings.bot_connection_env))
        connections = MsalConnectionManager(**sdk_config)
        auth = connections.get_default_connection_configuration()
        # The SDK leaves issuer validation off by default; a token from a foreign issuer must not pass.
        # bot/teams/trust.py narrows it further to the channel's own issuer, keys and claims.
        auth.VALIDATE_ISSUER = True
        auth.ANONYMOUS_ALLOWED = False
        factory = TrustedClientFactory(connections, hosts, token_service_url=token_service)
    adapter = CloudAdapter(connection_manager=connections, channel_service_client_factory=factory)
    application = AgentApplication[TurnState](
        ApplicationOptions(
            storage=MemoryStorage(),
            turn_state_factory=TurnScratch,
            bot_app_id=settings.bot_client_id or "",
            start_typing_timer=False,
            remove_recipient_mention=False,
        ),
        connection_manager=connections,
    )
    return TeamsRuntime(adapter, application, auth, factory, hosts, channel_issuers(auth.AUTHORITY), token_service)


def register_handlers(
    runtime: TeamsRuntime,
    *,
    turns: Turns,
    messages: TypedCommands,
    choices: PersonChoices,
    forms: FormFlow,
    form_submissions: FormSubmissions,
    handlers: TapHandlers,
    approvals: ApprovalFlow,
    bulk: BulkFlow,
    audit_export: AuditExportFlow,
    verifications: VerificationFlow | None = None,
    message_action: MessageAction | None = None,
    sign_ins: SignIns | None = None,
) -> None:
    """The whole routing table: every activity the bot reacts to, and the card buttons. `turns` gives each of the
    bot's own handlers its `Turn` and answers their refusals."""
    application = runtime.application
    application.conversation_update("membersAdded")(turns.activity(handlers.on_members_added))
    application.activity(ActivityTypes.message)(turns.activity(messages.on_message))
    buttons = {
        verbs.HANDED_OVER: turns.button(handlers.on_handed_over),
        verbs.CONFIRM_REPLACE: turns.button(handlers.on_confirm_replace),
        verbs.KEEP_EXISTING: turns.button(handlers.on_keep_existing),
        verbs.CHOOSE_PERSON: turns.button(choices.on_choose_person),
        verbs.SUBMIT_FORM: turns.button(form_submissions.on_submit),
        verbs.APPROVE: turns.button(approvals.on_approve),
        verbs.DENY: turns.button(approvals.on_deny),
        verbs.BULK_CONFIRM: turns.button(bulk.on_confirm),
        verbs.BULK_CANCEL: turns.button(bulk.on_cancel),
        verbs.BULK_RETRY: turns.button(bulk.on_retry),
        verbs.BULK_REPLACE_HELD: turns.button(bulk.on_replace_held),
        verbs.BULK_EXPORT: turns.button(bulk.on_export),
        verbs.BULK_RESUME: turns.button(bulk.on_resume),
    }
    if verifications is not None:
        buttons[verbs.VERIFY_CONFIRM] = turns.button(verifications.on_confirm)
        buttons[verbs.VERIFY_NOT_THEM] = turns.button(verifications.on_not_them)
        buttons[verbs.VERIFY_CANCEL] = turns.button(verifications.on_cancel)
    else:  # a card sent before verification was turned off still gets a sentence
        for verb in (verbs.VERIFY_CONFIRM, verbs.VERIFY_NOT_THEM, verbs.VERIFY_CANCEL):
            buttons[verb] = turns.button(verification_off)
    # One route for all the verbs, the handler found by the verb: a route per verb made the SDK validate a pressed
    # button's invoke once per verb route until one matched, and sort every route (and ask each invoke route's
    # selector) at every turn, a typed message too. is_unhandled_card_action (rank FIRST) takes an action whose
    # verb is not one of the bot's, or whose value is not an object, before this route is asked.
    verb_route = re.compile("^(?:" + "|".join(re.escape(verb) for verb in buttons) + r")\Z")

    async def on_button(context: TurnContext, state: TurnState, data: object) -> AdaptiveCardInvokeResponse:
        return await buttons[_verb_of(context)](context, state, data)  # the verb this route's selector matched

    application.adaptive_card.action_execute(verb_route)(on_button)
    # File-consent answers go to the kind of offer their context names; an answer to any other kind is refused.
    route_consents(
        application,
        {
            AUDIT_EXPORT_OFFER: turns.activity(audit_export.on_file_consent),
            BULK_RESULTS_OFFER: turns.activity(bulk.on_file_consent),
        },
    )
    # The forms' people picker: Teams' typeahead asks through the `application/search` invoke.
    application.add_route(is_people_search, turns.activity(forms.on_search), is_invoke=True)
    # The message action "Issue a Temporary Access Pass": its dialog's fetch and submit invokes.
    if message_action is not None:
        application.add_route(is_message_action, turns.activity(message_action.on_invoke), is_invoke=True)
    # Delegated writes' sign-in (bot/teams/sign_in.py): Teams' single sign-on exchange, the sign-in page's verifyState
    # and the client's failure. With application writes there is nothing to sign in to: a 400 and no token service.
    if sign_ins is not None:
        application.add_route(is_sign_in_invoke, turns.activity(sign_ins.on_invoke), is_invoke=True)
    else:
        application.add_route(is_sign_in_invoke, sign_in_off, is_invoke=True)
    # A card action no verb above can take (unknown verb, malformed value) gets a sentence, not a 400/501.
    application.add_route(is_unhandled_card_action, handlers.on_unknown_action, is_invoke=True, rank=RouteRank.FIRST)
    application.error(handlers.on_turn_error)
    runtime.adapter.on_turn_error = handlers.on_turn_error
