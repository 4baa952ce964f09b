"""The token service clients delegated writes' sign-in uses (bot/teams/agent.py's TrustedClientFactory): outside a
turn (a bulk run or a confirmed verification asking its technician to sign in) the bot's own token for the token
service is asked for, as the SDK does inside one; the sandbox's anonymous factory sends none."""

from __future__ import annotations

from typing import Any

from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.core.authorization import AgentAuthConfiguration, AuthenticationConstants, ClaimsIdentity

from bot.teams.agent import SandboxClientFactory, TrustedClientFactory
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
    client = await factory.create_user_token_client(None, identity())
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
    client = await factory.create_user_token_client(None, identity())
    try:
        assert connections.provider.asked == []
        assert "Authorization" not in client.client.headers
        assert client._app_id == APP_ID
    finally:
        await client.close()
