"""The emulated Bot Framework token service and Entra's on-behalf-of grant (issue 14, sso-obo.md §3–4), driven over
HTTP with the Agents SDK's own `UserTokenClient`, as the bot calls them."""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientResponseError, ClientSession
from microsoft_agents.activity import (
    Activity,
    ChannelAccount,
    ChannelId,
    ConversationAccount,
    TokenExchangeRequest,
    TokenResponse,
)
from microsoft_agents.hosting.core.connector.client import UserTokenClient

from bot.sandbox import RunningSandbox, SandboxOptions
from bot.sandbox.__main__ import build_options, parse_arguments
from bot.sandbox.clock import SandboxClock
from bot.sandbox.identity import (
    JWT_BEARER_GRANT,
    MAGIC_CODE_LIFETIME,
    SANDBOX_BOT_APP_ID,
    SandboxIdentity,
)
from bot.sandbox.tokens import GRAPH_AUDIENCE, WRITE_SCOPES, InvalidToken, TokenKeys
from tests.sandbox.conftest import StartSandbox
from tests.sandbox.support import ADELE_ID, ALEX_ID, call

CONNECTION = "tapbot-graph"
CHANNEL = "msteams"
ADELE_CHANNEL_ID = "29:1adele-channel-id"
ALEX_CHANNEL_ID = "29:1alex-channel-id"
NESTOR_DISABLED_ID = "0074c33f-115c-42b7-a836-41b82ced43ea"
TENANT_ID = "e0eeef39-44a5-4e21-9fc8-bc6e2ac99ce8"
APP_ID_URI = f"api://botid-{SANDBOX_BOT_APP_ID}"
CONSENT_REQUIRED = {"error": {"code": "ServiceError", "message": "Consent Required"}}
IDENTITY = "/_sandbox/identity"


@pytest.fixture
async def tokens(sandbox: RunningSandbox) -> AsyncIterator[UserTokenClient]:
    """The SDK's token service client pointed at the sandbox's root, as the bot builds it (no bot token: the
    sandbox runs anonymous)."""
    client = UserTokenClient(sandbox.root_url, "", app_id=SANDBOX_BOT_APP_ID)
    yield client
    await client.close()


def identity_of(sandbox: RunningSandbox) -> SandboxIdentity:
    return sandbox.state.identity


def activity_from(channel_user_id: str, object_id: str | None) -> Activity:
    return Activity(
        type="message",
        id="activity-1",
        channel_id=ChannelId(CHANNEL),
        service_url="https://smba.trafficmanager.net/emea/",
        from_property=ChannelAccount(id=channel_user_id, aad_object_id=object_id, name="someone"),
        recipient=ChannelAccount(id=f"28:{SANDBOX_BOT_APP_ID}", name="tapbot"),
        conversation=ConversationAccount(id="a:personal-chat", tenant_id=TENANT_ID, conversation_type="personal"),
    )


async def exchange(tokens: UserTokenClient, user_id: str, sso_token: str) -> TokenResponse:
    return await tokens.exchange_token(user_id, CONNECTION, CHANNEL, TokenExchangeRequest(token=sso_token))


async def exchange_refusal(tokens: UserTokenClient, user_id: str, sso_token: str) -> tuple[int, Any]:
    with pytest.raises(ClientResponseError) as refused:
        await exchange(tokens, user_id, sso_token)
    return refused.value.status, json.loads(refused.value.message)


# --- exchange ----------------------------------------------------------------------------------------------------


async def test_exchange_gives_the_bot_a_graph_token_for_the_signed_in_user_and_keeps_a_session(
    sandbox: RunningSandbox, tokens: UserTokenClient
) -> None:
    identity = identity_of(sandbox)
    assert not await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)  # 404 before any sign-in

    answer = await exchange(tokens, ADELE_CHANNEL_ID, identity.teams_sso_token(ADELE_ID))

    assert answer.connection_name == CONNECTION and answer.channel_id == CHANNEL and answer.expiration
    assert answer.token is not None
    claims = identity.graph_caller(f"Bearer {answer.token}")
    assert claims is not None
    assert claims.object_id == ADELE_ID and claims.tenant_id == TENANT_ID and claims.audience == GRAPH_AUDIENCE
    assert claims.has_any_scope(WRITE_SCOPES) and claims.app_id == SANDBOX_BOT_APP_ID
    again = await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)
    assert again.token == answer.token
    # The session belongs to the channel user who exchanged, nobody else.
    assert not await tokens.get_user_token(ALEX_CHANNEL_ID, CONNECTION, CHANNEL)
    counters = (await call(sandbox_http(sandbox), "GET", f"{IDENTITY}/counters")).body
    assert counters["exchanges"] == 1 and counters["obo_calls"] == 1 and counters["get_token_calls"] == 3


def sandbox_http(sandbox: RunningSandbox) -> ClientSession:
    session = ClientSession(base_url=sandbox.root_url)
    _sessions.append(session)
    return session


_sessions: list[ClientSession] = []


@pytest.fixture(autouse=True)
async def _close_sessions() -> AsyncIterator[None]:
    yield
    while _sessions:
        await _sessions.pop().close()


async def test_the_exchange_answers_consent_required_while_the_user_has_not_consented(
    sandbox: RunningSandbox, tokens: UserTokenClient
) -> None:
    http = sandbox_http(sandbox)
    switched = await call(http, "POST", f"{IDENTITY}/users/{ADELE_ID}/consent", json={"required": True})
    assert switched.status == 200 and switched.body == {"object_id": ADELE_ID, "consent_required": True}

    status, body = await exchange_refusal(tokens, ADELE_CHANNEL_ID, identity_of(sandbox).teams_sso_token(ADELE_ID))

    assert (status, body) == (400, CONSENT_REQUIRED)
    assert not await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)
    assert (await call(http, "POST", f"{IDENTITY}/users/{ADELE_ID}/consent", json={"required": False})).status == 200
    assert await exchange(tokens, ADELE_CHANNEL_ID, identity_of(sandbox).teams_sso_token(ADELE_ID))


async def test_the_exchange_is_refused_the_same_way_when_entra_requires_interaction(
    sandbox: RunningSandbox, tokens: UserTokenClient
) -> None:
    http = sandbox_http(sandbox)
    assert (await call(http, "POST", f"{IDENTITY}/users/{ADELE_ID}/interaction", json={"required": True})).status == 200

    status, body = await exchange_refusal(tokens, ADELE_CHANNEL_ID, identity_of(sandbox).teams_sso_token(ADELE_ID))

    assert (status, body) == (400, CONSENT_REQUIRED)
    counters = identity_of(sandbox).counters
    assert counters.obo_failures == 1 and counters.exchanges_failed == 1


@pytest.mark.parametrize(
    "case",
    [
        "another audience",
        "the bare app id of another bot",
        "another tenant",
        "expired",
        "another signing key",
        "not a token",
        "unknown user",
        "disabled user",
    ],
)
async def test_the_exchange_refuses_a_teams_token_that_is_not_for_this_bot_tenant_and_an_enabled_user(
    sandbox: RunningSandbox, tokens: UserTokenClient, case: str
) -> None:
    identity = identity_of(sandbox)
    sso_token = {
        "another audience": lambda: identity.teams_sso_token(ADELE_ID, audience="api://botid-someone-else"),
        "the bare app id of another bot": lambda: identity.teams_sso_token(ADELE_ID, audience=str(uuid.uuid4())),
        "another tenant": lambda: identity.teams_sso_token(ADELE_ID, tenant_id=str(uuid.uuid4())),
        "expired": lambda: identity.teams_sso_token(ADELE_ID, expired=True),
        "another signing key": lambda: forged_sso_token(sandbox),
        "not a token": lambda: "not-a-jwt",
        "unknown user": lambda: identity.teams_sso_token(str(uuid.uuid4())),
        "disabled user": lambda: identity.teams_sso_token(NESTOR_DISABLED_ID),
    }[case]()

    status, body = await exchange_refusal(tokens, ADELE_CHANNEL_ID, sso_token)

    assert (status, body) == (400, CONSENT_REQUIRED)
    assert not identity.sessions and identity.counters.graph_tokens_issued == 0


async def test_the_exchange_accepts_a_teams_token_issued_for_the_bare_app_id(
    sandbox: RunningSandbox, tokens: UserTokenClient
) -> None:
    sso_token = identity_of(sandbox).teams_sso_token(ADELE_ID, audience=SANDBOX_BOT_APP_ID)
    assert (await exchange(tokens, ADELE_CHANNEL_ID, sso_token)).token


def forged_sso_token(sandbox: RunningSandbox) -> str:
    now = sandbox.state.clock.now()
    return TokenKeys().mint(
        object_id=ADELE_ID,
        tenant_id=TENANT_ID,
        audience=APP_ID_URI,
        scopes=("access_as_user",),
        app_id="1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        now=now,
        lifetime=timedelta(hours=1),
    )


@pytest.mark.parametrize(
    ("query", "body", "status"),
    [
        ("userId=29:x&connectionName=unknown&channelId=msteams", {"token": "x"}, 400),
        ("connectionName=tapbot-graph&channelId=msteams", {"token": "x"}, 400),
        ("userId=29:x&connectionName=tapbot-graph&channelId=msteams", {}, 400),
        ("userId=29:x&connectionName=tapbot-graph&channelId=msteams", {"uri": APP_ID_URI}, 400),
        ("userId=29:x&connectionName=tapbot-graph&channelId=msteams", [1, 2], 400),
    ],
)
async def test_malformed_exchanges_get_a_clear_400(
    sandbox: RunningSandbox, query: str, body: object, status: int
) -> None:
    answer = await call(sandbox_http(sandbox), "POST", f"/api/usertoken/exchange?{query}", json=body)
    assert answer.status == status
    assert isinstance(answer.body["error"]["message"], str) and answer.body["error"]["code"]


# --- sign-in link and magic code -----------------------------------------------------------------------------------


async def test_sign_in_through_the_link_gives_a_magic_code_that_opens_a_session_once(
    sandbox: RunningSandbox, tokens: UserTokenClient
) -> None:
    answer = await tokens.get_token_or_sign_in_resource(CONNECTION, activity_from(ADELE_CHANNEL_ID, ADELE_ID))
    assert answer.token_response is None
    resource = answer.sign_in_resource
    assert resource is not None and resource.sign_in_link is not None
    assert resource.token_exchange_resource is not None
    assert resource.token_exchange_resource.uri == APP_ID_URI and resource.token_exchange_resource.id
    link = resource.sign_in_link
    assert link.startswith(f"{sandbox.root_url}/api/oauth/signin?signin=")

    http = sandbox_http(sandbox)
    async with http.get(link) as page:
        text = await page.text()
        assert page.status == 200 and page.content_type == "text/html"
    assert "Adele Vance" in text and "Contoso (sandbox)" in text and "Continue" in text
    async with http.post(link) as continued:
        code_page = await continued.text()
        assert continued.status == 200
    code = re.search(r'id="magic-code"[^>]*>(\d{6})<', code_page)
    assert code is not None
    async with http.post(link) as reused:
        assert reused.status == 404  # the link works once

    signed_in = await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL, magic_code=code.group(1))

    assert signed_in.token is not None
    claims = identity_of(sandbox).graph_caller(f"Bearer {signed_in.token}")
    assert claims is not None and claims.object_id == ADELE_ID
    assert (await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)).token == signed_in.token
    identity_of(sandbox).sign_out(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)
    assert not await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL, magic_code=code.group(1))


async def test_a_magic_code_works_only_for_its_user_connection_and_channel_and_for_five_minutes(
    sandbox: RunningSandbox, tokens: UserTokenClient, clock: SandboxClock
) -> None:
    identity = identity_of(sandbox)

    async def fresh_code() -> str:
        answer = await tokens.get_token_or_sign_in_resource(CONNECTION, activity_from(ADELE_CHANNEL_ID, ADELE_ID))
        assert answer.sign_in_resource is not None and answer.sign_in_resource.sign_in_link is not None
        return identity.sign_in_code(answer.sign_in_resource.sign_in_link)

    code = await fresh_code()
    assert not await tokens.get_user_token(ALEX_CHANNEL_ID, CONNECTION, CHANNEL, magic_code=code)
    assert not await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, "webchat", magic_code=code)
    assert await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL, magic_code=code)

    identity.sign_out(ADELE_CHANNEL_ID, None, None)
    late = await fresh_code()
    clock.advance(MAGIC_CODE_LIFETIME.total_seconds() + 1)
    assert not await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL, magic_code=late)


async def test_wrong_codes_drop_the_outstanding_code_after_five_tries(
    sandbox: RunningSandbox, tokens: UserTokenClient
) -> None:
    identity = identity_of(sandbox)
    answer = await tokens.get_token_or_sign_in_resource(CONNECTION, activity_from(ADELE_CHANNEL_ID, ADELE_ID))
    assert answer.sign_in_resource is not None and answer.sign_in_resource.sign_in_link is not None
    code = identity.sign_in_code(answer.sign_in_resource.sign_in_link)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert not await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL, magic_code=wrong)
    assert not await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL, magic_code=code)


async def test_interactive_sign_in_is_where_the_user_consents(sandbox: RunningSandbox, tokens: UserTokenClient) -> None:
    identity = identity_of(sandbox)
    identity.require_consent(ADELE_ID)
    assert (await exchange_refusal(tokens, ADELE_CHANNEL_ID, identity.teams_sso_token(ADELE_ID)))[0] == 400
    answer = await tokens.get_token_or_sign_in_resource(CONNECTION, activity_from(ADELE_CHANNEL_ID, ADELE_ID))
    assert answer.sign_in_resource is not None and answer.sign_in_resource.sign_in_link is not None
    code = identity.sign_in_code(answer.sign_in_resource.sign_in_link)

    assert await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL, magic_code=code)
    assert ADELE_ID not in identity.consent_required
    assert await exchange(tokens, ADELE_CHANNEL_ID, identity.teams_sso_token(ADELE_ID))


async def test_get_token_or_sign_in_resource_gives_the_token_once_signed_in(
    sandbox: RunningSandbox, tokens: UserTokenClient
) -> None:
    signed_in = await exchange(tokens, ADELE_CHANNEL_ID, identity_of(sandbox).teams_sso_token(ADELE_ID))

    answer = await tokens.get_token_or_sign_in_resource(CONNECTION, activity_from(ADELE_CHANNEL_ID, ADELE_ID))

    assert answer.sign_in_resource is None
    assert answer.token_response is not None and answer.token_response.token == signed_in.token


def encoded_state(**overrides: Any) -> str:
    state: dict[str, Any] = {
        "connectionName": CONNECTION,
        "conversation": {
            "user": {"id": ADELE_CHANNEL_ID, "aadObjectId": ADELE_ID},
            "conversation": {"id": "a:chat"},
            "channelId": CHANNEL,
        },
        "msAppId": SANDBOX_BOT_APP_ID,
    }
    state.update(overrides)
    return base64.b64encode(json.dumps(state).encode()).decode()


@pytest.mark.parametrize(
    ("state", "user_id"),
    [
        (encoded_state(msAppId="another-bot"), ADELE_CHANNEL_ID),
        (encoded_state(connectionName="other"), ADELE_CHANNEL_ID),
        (encoded_state(), ALEX_CHANNEL_ID),  # the state names another user than the one asking
        (encoded_state(conversation={"user": {"id": ADELE_CHANNEL_ID}}), ADELE_CHANNEL_ID),  # no channel
        ("%%%not-base64", ADELE_CHANNEL_ID),
    ],
)
async def test_a_sign_in_state_for_another_bot_connection_user_or_channel_is_refused(
    sandbox: RunningSandbox, state: str, user_id: str
) -> None:
    query = {"userId": user_id, "connectionName": CONNECTION, "channelId": CHANNEL, "state": state}
    async with sandbox_http(sandbox).get("/api/usertoken/GetTokenOrSignInResource", params=query) as answer:
        body = await answer.json()
        assert answer.status == 400 and body["error"]["code"] == "ServiceError"
    assert identity_of(sandbox).counters.sign_in_links == 0


async def test_a_link_is_issued_for_anyone_but_its_page_refuses_a_state_naming_nobody_of_the_tenant(
    sandbox: RunningSandbox, tokens: UserTokenClient
) -> None:
    for user_id, object_id in [("29:tapbot-doctor", None), ("29:x", str(uuid.uuid4()))]:
        answer = await tokens.get_token_or_sign_in_resource(CONNECTION, activity_from(user_id, object_id))
        assert answer.sign_in_resource is not None and answer.sign_in_resource.sign_in_link is not None
        link = answer.sign_in_resource.sign_in_link
        async with sandbox_http(sandbox).get(link) as page:
            assert page.status == 404 and "names nobody of this tenant" in await page.text()
        with pytest.raises(ValueError):
            identity_of(sandbox).sign_in_code(link)
    assert identity_of(sandbox).counters.magic_codes_issued == 0


async def test_without_ms_app_id_the_state_gets_no_token_exchange_resource(sandbox: RunningSandbox) -> None:
    state = json.loads(base64.b64decode(encoded_state()))
    del state["msAppId"]
    params = {"state": base64.b64encode(json.dumps(state).encode()).decode()}
    async with sandbox_http(sandbox).get("/api/botsignin/getSignInResource", params=params) as answer:
        body = await answer.json()
    assert answer.status == 200 and "signInLink" in body and "tokenExchangeResource" not in body


async def test_the_sign_in_page_of_an_unknown_or_expired_link_says_so(
    sandbox: RunningSandbox, tokens: UserTokenClient, clock: SandboxClock
) -> None:
    http = sandbox_http(sandbox)
    async with http.get("/api/oauth/signin?signin=nope") as unknown:
        assert unknown.status == 404 and "not valid" in await unknown.text()
    answer = await tokens.get_token_or_sign_in_resource(CONNECTION, activity_from(ADELE_CHANNEL_ID, ADELE_ID))
    assert answer.sign_in_resource is not None and answer.sign_in_resource.sign_in_link is not None
    clock.advance(16 * 60)
    async with http.post(answer.sign_in_resource.sign_in_link) as expired:
        assert expired.status == 404 and "magic-code" not in await expired.text()


# --- sign-out, lapse, refresh ----------------------------------------------------------------------------------------


async def test_sign_out_ends_the_session(sandbox: RunningSandbox, tokens: UserTokenClient) -> None:
    await exchange(tokens, ADELE_CHANNEL_ID, identity_of(sandbox).teams_sso_token(ADELE_ID))
    await exchange(tokens, ALEX_CHANNEL_ID, identity_of(sandbox).teams_sso_token(ALEX_ID))

    await tokens.sign_out_user(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)

    assert not await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)
    assert await tokens.get_user_token(ALEX_CHANNEL_ID, CONNECTION, CHANNEL)
    assert identity_of(sandbox).counters.sign_outs == 1


async def test_a_lapse_ends_the_session_and_voids_every_graph_token_already_issued(
    sandbox: RunningSandbox, tokens: UserTokenClient
) -> None:
    identity = identity_of(sandbox)
    adele = await exchange(tokens, ADELE_CHANNEL_ID, identity.teams_sso_token(ADELE_ID))
    alex = await exchange(tokens, ALEX_CHANNEL_ID, identity.teams_sso_token(ALEX_ID))

    lapsed = await call(sandbox_http(sandbox), "POST", f"{IDENTITY}/users/{ADELE_ID}/lapse")

    assert lapsed.status == 200 and lapsed.body == {"object_id": ADELE_ID, "sessions_ended": 1, "tokens_revoked": 1}
    assert not await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)
    with pytest.raises(InvalidToken) as refused:
        identity.graph_caller(f"Bearer {adele.token}")
    assert refused.value.expired
    assert identity.graph_caller(f"Bearer {alex.token}") is not None  # others keep theirs
    again = await exchange(tokens, ADELE_CHANNEL_ID, identity.teams_sso_token(ADELE_ID))  # signing in again works
    assert identity.graph_caller(f"Bearer {again.token}") is not None


async def test_the_token_service_renews_the_graph_token_while_the_session_lives(
    sandbox: RunningSandbox, tokens: UserTokenClient, clock: SandboxClock
) -> None:
    identity = identity_of(sandbox)
    first = await exchange(tokens, ADELE_CHANNEL_ID, identity.teams_sso_token(ADELE_ID))
    clock.advance(30 * 60)
    assert (await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)).token == first.token

    clock.advance(31 * 60)  # past the 60-minute lifetime

    with pytest.raises(InvalidToken) as expired:
        identity.graph_caller(f"Bearer {first.token}")
    assert expired.value.expired
    renewed = await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)
    assert renewed.token is not None and renewed.token != first.token
    claims = identity.graph_caller(f"Bearer {renewed.token}")
    assert claims is not None and claims.object_id == ADELE_ID
    assert identity.counters.refreshes == 1 and identity.counters.obo_calls == 1


async def test_a_session_whose_user_now_needs_interaction_ends_at_renewal(
    sandbox: RunningSandbox, tokens: UserTokenClient, clock: SandboxClock
) -> None:
    identity = identity_of(sandbox)
    await exchange(tokens, ADELE_CHANNEL_ID, identity.teams_sso_token(ADELE_ID))
    identity.require_interaction(ADELE_ID)
    clock.advance(61 * 60)

    assert not await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)
    assert not identity.sessions


async def test_the_graph_token_lifetime_follows_the_options(start: StartSandbox, clock: SandboxClock) -> None:
    sandbox = await start(options=SandboxOptions(clock=clock, graph_token_minutes=10))
    client = UserTokenClient(sandbox.root_url, "", app_id=SANDBOX_BOT_APP_ID)
    try:
        answer = await exchange(client, ADELE_CHANNEL_ID, sandbox.state.identity.teams_sso_token(ADELE_ID))
        assert answer.token is not None
        clock.advance(11 * 60)
        with pytest.raises(InvalidToken):
            sandbox.state.identity.graph_caller(f"Bearer {answer.token}")
    finally:
        await client.close()


# --- Graph's check of the caller -------------------------------------------------------------------------------


async def test_graph_caller_is_none_without_a_header_and_refuses_anything_but_a_valid_graph_token(
    sandbox: RunningSandbox,
) -> None:
    identity = identity_of(sandbox)
    assert identity.graph_caller(None) is None and identity.graph_caller("") is None
    for header in ("Basic dXNlcjpwYXNz", "Bearer", f"Bearer {identity.teams_sso_token(ADELE_ID)}"):
        with pytest.raises(InvalidToken):
            identity.graph_caller(header)
    claims = identity.graph_caller(f"bearer {identity.graph_token(ADELE_ID, scopes=('User.Read',))}")
    assert claims is not None and not claims.has_any_scope(WRITE_SCOPES)


async def test_a_reset_voids_every_token_and_session(sandbox: RunningSandbox, tokens: UserTokenClient) -> None:
    identity = identity_of(sandbox)
    answer = await exchange(tokens, ADELE_CHANNEL_ID, identity.teams_sso_token(ADELE_ID))
    identity.require_consent(ALEX_ID)

    assert (await call(sandbox_http(sandbox), "POST", "/_sandbox/reset")).status == 200

    assert not identity.sessions and not identity.consent_required and identity.counters.exchanges == 0
    with pytest.raises(InvalidToken):
        identity.graph_caller(f"Bearer {answer.token}")


# --- Entra's on-behalf-of endpoint ---------------------------------------------------------------------------------


def obo_form(identity: SandboxIdentity, **overrides: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "grant_type": JWT_BEARER_GRANT,
        "client_id": SANDBOX_BOT_APP_ID,
        "client_secret": identity.client_secret,
        "assertion": identity.teams_sso_token(ADELE_ID),
        "scope": "https://graph.microsoft.com/.default",
        "requested_token_use": "on_behalf_of",
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not None}


async def post_obo(sandbox: RunningSandbox, form: dict[str, str], tenant: str = TENANT_ID) -> tuple[int, Any]:
    async with sandbox_http(sandbox).post(f"/{tenant}/oauth2/v2.0/token", data=form) as answer:
        return answer.status, await answer.json()


async def test_on_behalf_of_answers_a_graph_token_for_the_assertions_user(sandbox: RunningSandbox) -> None:
    identity = identity_of(sandbox)

    status, body = await post_obo(sandbox, obo_form(identity))

    assert status == 200
    assert set(body) == {"token_type", "scope", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "https://graph.microsoft.com/UserAuthenticationMethod.ReadWrite.All"
    claims = identity.graph_caller(f"Bearer {body['access_token']}")
    assert claims is not None and claims.object_id == ADELE_ID and claims.app_id == SANDBOX_BOT_APP_ID


@pytest.mark.parametrize(
    ("overrides", "status", "error", "code"),
    [
        ({"requested_token_use": None}, 400, "invalid_request", 900144),
        ({"requested_token_use": "other"}, 400, "invalid_request", 900144),
        ({"assertion": None}, 400, "invalid_request", 900144),
        ({"scope": None}, 400, "invalid_request", 900144),
        ({"client_id": str(uuid.uuid4())}, 400, "unauthorized_client", 700016),
        ({"client_secret": None}, 401, "invalid_client", 7000218),
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"scope": "https://management.azure.com/.default"}, 400, "invalid_scope", 70011),
        ({"scope": "https://graph.microsoft.com/Directory.ReadWrite.All"}, 400, "invalid_grant", 65001),
        ({"assertion": "not-a-jwt"}, 400, "invalid_grant", 50013),
    ],
)
async def test_on_behalf_of_checks_the_form_and_the_client(
    sandbox: RunningSandbox, overrides: dict[str, str | None], status: int, error: str, code: int
) -> None:
    answer_status, body = await post_obo(sandbox, obo_form(identity_of(sandbox), **overrides))

    assert (answer_status, body["error"], body["error_codes"]) == (status, error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}:") and body["trace_id"] and body["correlation_id"]
    assert "access_token" not in body


async def test_on_behalf_of_checks_the_assertion(sandbox: RunningSandbox) -> None:
    identity = identity_of(sandbox)
    cases = {
        identity.teams_sso_token(ADELE_ID, audience="api://botid-other"): 50013,
        identity.teams_sso_token(ADELE_ID, tenant_id=str(uuid.uuid4())): 50013,
        identity.teams_sso_token(ADELE_ID, expired=True): 500133,
        identity.graph_token(ADELE_ID): 50013,  # a Graph token is not an assertion for the bot
        identity.teams_sso_token(NESTOR_DISABLED_ID): 50057,
    }
    for assertion, code in cases.items():
        status, body = await post_obo(sandbox, obo_form(identity, assertion=assertion))
        assert (status, body["error"], body["error_codes"]) == (400, "invalid_grant", [code])
    status, body = await post_obo(sandbox, obo_form(identity), tenant="other.onmicrosoft.com")
    assert (status, body["error"]) == (400, "invalid_request")


async def test_on_behalf_of_answers_consent_and_interaction_as_entra_does(sandbox: RunningSandbox) -> None:
    identity = identity_of(sandbox)
    identity.require_consent(ADELE_ID)
    status, body = await post_obo(sandbox, obo_form(identity))
    assert (status, body["error"], body["error_codes"]) == (400, "invalid_grant", [65001])

    identity.require_consent(ADELE_ID, False)
    identity.require_interaction(ADELE_ID)
    status, body = await post_obo(sandbox, obo_form(identity))

    assert (status, body["error"], body["error_codes"]) == (400, "interaction_required", [50079])
    assert json.loads(body["claims"])["access_token"]["capolids"]["essential"] is True


async def test_client_credentials_still_reach_the_verified_id_token_endpoint(sandbox: RunningSandbox) -> None:
    form = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x", "scope": "y"}
    status, body = await post_obo(sandbox, form)
    assert (status, body["error"]) == (400, "unauthorized_client")


# --- control plane and logs ----------------------------------------------------------------------------------------


async def test_the_control_plane_gives_a_teams_sso_token_that_the_exchange_accepts(
    sandbox: RunningSandbox, tokens: UserTokenClient
) -> None:
    http = sandbox_http(sandbox)
    answer = await call(http, "POST", f"{IDENTITY}/sso-token", json={"objectId": "AdeleV@contoso.onmicrosoft.com"})
    assert answer.status == 200 and answer.body["object_id"] == ADELE_ID

    assert await exchange(tokens, ADELE_CHANNEL_ID, answer.body["token"])

    described = await call(http, "GET", IDENTITY)
    assert described.body["sessions"][0]["object_id"] == ADELE_ID
    assert answer.body["token"] not in json.dumps(described.body)
    for path, body in [
        (f"{IDENTITY}/sso-token", {"objectId": str(uuid.uuid4())}),
        (f"{IDENTITY}/users/{uuid.uuid4()}/lapse", None),
    ]:
        assert (await call(http, "POST", path, json=body)).status == 404
    assert (await call(http, "POST", f"{IDENTITY}/sso-token", json={})).status == 400
    assert (await call(http, "POST", f"{IDENTITY}/users/{ADELE_ID}/consent", json={"required": "yes"})).status == 400
    assert (await call(http, "POST", f"{IDENTITY}/graph-token-lifetime", json={"minutes": 0})).status == 400
    changed = await call(http, "POST", f"{IDENTITY}/graph-token-lifetime", json={"minutes": 5})
    assert changed.body == {"graph_token_minutes": 5}


async def test_no_token_code_or_sign_in_id_reaches_the_sandboxs_logs(
    sandbox: RunningSandbox, tokens: UserTokenClient, caplog: pytest.LogCaptureFixture, clock: SandboxClock
) -> None:
    caplog.set_level(logging.DEBUG)
    identity = identity_of(sandbox)
    secrets_seen: list[str] = []
    sso_token = identity.teams_sso_token(ADELE_ID)
    secrets_seen.append(sso_token)
    graph = await exchange(tokens, ADELE_CHANNEL_ID, sso_token)
    identity.require_consent(ALEX_ID)
    refused_sso = identity.teams_sso_token(ALEX_ID)
    secrets_seen.append(refused_sso)
    await exchange_refusal(tokens, ALEX_CHANNEL_ID, refused_sso)
    answer = await tokens.get_token_or_sign_in_resource(CONNECTION, activity_from(ALEX_CHANNEL_ID, ALEX_ID))
    assert answer.sign_in_resource is not None and answer.sign_in_resource.sign_in_link is not None
    link = answer.sign_in_resource.sign_in_link
    http = sandbox_http(sandbox)
    async with http.post(link) as page:
        found = re.search(r'id="magic-code"[^>]*>(\d{6})<', await page.text())
    assert found is not None
    alex = await tokens.get_user_token(ALEX_CHANNEL_ID, CONNECTION, CHANNEL, magic_code=found.group(1))
    clock.advance(3700)
    renewed = await tokens.get_user_token(ADELE_CHANNEL_ID, CONNECTION, CHANNEL)
    status, obo = await post_obo(sandbox, obo_form(identity))
    assert status == 200
    await call(http, "POST", f"{IDENTITY}/users/{ADELE_ID}/lapse")

    secrets_seen += [
        str(graph.token),
        str(alex.token),
        str(renewed.token),
        obo["access_token"],
        found.group(1),
        link.split("signin=")[1],
        identity.client_secret,
    ]
    assert caplog.records  # the flows above did log
    for value in secrets_seen:
        assert value not in caplog.text
    assert str(renewed.token) not in repr(identity.sessions)


def test_the_cli_sets_the_identity_options() -> None:
    options = build_options(
        parse_arguments(["--oauth-connection", "a", "--oauth-connection", "b", "--graph-token-minutes", "10"])
    )
    assert options.oauth_connections == ("a", "b") and options.graph_token_minutes == 10
    assert options.bot_app_id == SANDBOX_BOT_APP_ID
    assert build_options(parse_arguments([])).oauth_connections == ("tapbot-graph",)
    with pytest.raises(ValueError):
        build_options(parse_arguments(["--graph-token-minutes", "0"]))
