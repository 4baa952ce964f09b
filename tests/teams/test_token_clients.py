"""The token service clients delegated writes' sign-in uses (bot/teams/agent.py's TrustedClientFactory): outside a
turn (a bulk run or a confirmed verification asking its technician to sign in) the bot's own token for the token
service is asked for, as the SDK does inside one; the sandbox's anonymous factory sends none."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.core.authorization import AgentAuthConfiguration, AuthenticationConstants, ClaimsIdentity

from bot.teams.agent import SandboxClientFactory, TokenClientOnDemand, TrustedClientFactory
from bot.teams.trust import ConnectorHosts

APP_ID = "11111111-2222-3333-4444-555555555555"
TOKEN_SERVICE = "https://token.example/"


class FakeProvider:
    def __init__(self) -> None:
        self.asked: list[tuple[str, list[str]]] = []

    async def get_access_token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        self.asked.append((resource_url, scopes))
        return "bot-token-for-the-token-service"


class FakeConnections(MsalConnectionManager):
    def __init__(self) -> None:
        super().__init__(
            connections_configurations={"SERVICE_CONNECTION": AgentAuthConfiguration(anonymous_allowed=True)}
        )
        self.provider = FakeProvider()
        self.endpoints: list[str] = []

    def get_token_provider(self, claims_identity: ClaimsIdentity, service_url: str) -> Any:
        self.endpoints.append(service_url)
        return self.provider


def identity() -> ClaimsIdentity:
    claims = {AuthenticationConstants.AUDIENCE_CLAIM: APP_ID, AuthenticationConstants.APP_ID_CLAIM: APP_ID}
    return ClaimsIdentity(claims, authentication_type="Bearer")


async def test_outside_a_turn_the_bot_token_for_the_token_service_is_asked_for() -> None:
    connections = FakeConnections()
    factory = TrustedClientFactory(connections, ConnectorHosts(()), token_service_url=TOKEN_SERVICE)
    client = await factory.user_token_client(None, identity())
    try:
        assert connections.endpoints == [TOKEN_SERVICE]
        assert connections.provider.asked == [
            (AuthenticationConstants.AGENTS_SDK_SCOPE, [AuthenticationConstants.AGENTS_SDK_SCOPE + "/.default"])
        ]
        assert client.client.headers["Authorization"] == "Bearer bot-token-for-the-token-service"
        assert str(client.client._base_url) == TOKEN_SERVICE  # where its calls go
        assert client._app_id == APP_ID  # the sign-in state's msAppId
    finally:
        await client.close()


async def test_the_sandbox_factory_sends_no_token() -> None:
    connections = FakeConnections()
    factory = SandboxClientFactory(connections, token_service_url=TOKEN_SERVICE)
    client = await factory.user_token_client(None, identity())
    try:
        assert connections.provider.asked == []
        assert "Authorization" not in client.client.headers
        assert client._app_id == APP_ID
    finally:
        await client.close()


async def test_the_client_the_sdk_asks_for_each_turn_is_made_with_its_token_only_when_called() -> None:
    """The SDK asks the factory for a token service client at every turn; until one of its methods is called no
    session is made and no token is asked for. Its first call makes the client with the bot's token, as before."""
    seen: list[str | None] = []

    async def token_status(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/api/usertoken/GetTokenStatus", token_status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        connections = FakeConnections()
        factory = TrustedClientFactory(connections, ConnectorHosts(()), token_service_url=f"http://127.0.0.1:{port}/")
        client = await factory.create_user_token_client(None, identity())
        assert isinstance(client, TokenClientOnDemand)
        assert connections.provider.asked == [] and connections.endpoints == []
        await client.close()  # never made: nothing to close, nothing asked
        assert connections.provider.asked == []

        client = await factory.create_user_token_client(None, identity())
        try:
            assert await client.get_token_status("29:user", "msteams") == []
            assert await client.get_token_status("29:user", "msteams") == []
            assert seen == ["Bearer bot-token-for-the-token-service"] * 2
            assert len(connections.provider.asked) == 1  # one client, made by the first call
            assert client.user_token is not None
        finally:
            await client.close()
    finally:
        await runner.cleanup()
