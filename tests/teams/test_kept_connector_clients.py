"""The connector clients TrustedClientFactory lends to turns and sends: one per connector address and bot token,
kept across turns (the SDK's close after a turn gives the loan back), closed once retired and no longer lent."""

from __future__ import annotations

import pytest
from microsoft_agents.hosting.core.authorization import AuthenticationConstants

from bot.teams import agent
from bot.teams.agent import KeptConnectorClient, TrustedClientFactory
from bot.teams.trust import ConnectorHosts, UntrustedServiceUrl
from tests.teams.test_token_clients import FakeConnections, identity

CONNECTOR = "https://smba.trafficmanager.net/emea/"
OTHER_REGION = "https://smba.trafficmanager.net/amer/"
SCOPE = AuthenticationConstants.AGENTS_SDK_SCOPE


class RenewedTokens(FakeConnections):
    """MSAL's token, renewed by setting `token`; the factory asks for it again once the clock passed
    BOT_TOKEN_KEPT (`renew` does both)."""

    def __init__(self) -> None:
        super().__init__()
        self.token = "token-1"
        self.asked = 0
        self.now = 1000.0
        self.provider.get_access_token = self._token  # type: ignore[method-assign]

    async def _token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        self.asked += 1
        return self.token

    def clock(self) -> float:
        return self.now

    def renew(self, token: str) -> None:
        self.token = token
        self.now += agent.BOT_TOKEN_KEPT


def factory_with(connections: RenewedTokens) -> TrustedClientFactory:
    return TrustedClientFactory(connections, ConnectorHosts(("smba.trafficmanager.net",)), clock=connections.clock)


async def lend(factory: TrustedClientFactory, service_url: str = CONNECTOR) -> KeptConnectorClient:
    client = await factory.create_connector_client(None, identity(), service_url, SCOPE)
    assert isinstance(client, KeptConnectorClient)
    return client


async def test_every_turn_borrows_the_same_client_and_its_close_leaves_it_open() -> None:
    connections = RenewedTokens()
    factory = factory_with(connections)
    first = await lend(factory)
    await first.close()  # the SDK, after the turn
    second = await lend(factory)
    assert second is first and not first.client.closed
    assert first.client.headers["Authorization"] == "Bearer token-1"
    assert str(first.client._base_url) == CONNECTOR  # pyright: ignore[reportPrivateUsage]
    other = await lend(factory, OTHER_REGION.rstrip("/"))
    assert other is not first and str(other.client._base_url) == OTHER_REGION  # pyright: ignore[reportPrivateUsage]
    await second.close()
    await other.close()
    await factory.close()
    assert first.client.closed and other.client.closed


async def test_a_renewed_token_gets_a_new_client_and_the_old_closes_when_its_last_loan_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agent, "KEPT_CONNECTOR_CLIENTS", 1)
    connections = RenewedTokens()
    factory = factory_with(connections)
    old = await lend(factory)  # a turn still under way with it
    connections.renew("token-2")
    new = await lend(factory)
    assert new is not old and new.client.headers["Authorization"] == "Bearer token-2"
    assert not old.client.closed  # still lent: the turn can go on sending
    await old.close()
    assert old.client.closed
    await new.close()
    assert not new.client.closed
    connections.renew("token-3")
    newest = await lend(factory)
    assert new.client.closed  # retired while not lent: closed at once
    await newest.close()
    await factory.close()
    assert newest.client.closed


async def test_a_client_still_lent_when_the_factory_closes_is_closed_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent, "KEPT_CONNECTOR_CLIENTS", 1)
    connections = RenewedTokens()
    factory = factory_with(connections)
    old = await lend(factory)
    connections.renew("token-2")
    new = await lend(factory)
    await factory.close()
    assert old.client.closed and new.client.closed


async def test_no_client_for_an_address_that_is_not_an_allowed_connector_host() -> None:
    factory = factory_with(RenewedTokens())
    with pytest.raises(UntrustedServiceUrl):
        await factory.create_connector_client(None, identity(), "https://attacker.example/", SCOPE)
    await factory.close()


async def test_the_bots_token_is_asked_of_msal_once_while_it_is_kept_then_again() -> None:
    """MSAL hands out a token valid at least 5 more minutes; asking it at every turn and send cost a worker thread's
    trip and a cache search for the same token."""
    connections = RenewedTokens()
    factory = factory_with(connections)
    first = await lend(factory)
    await first.close()
    connections.token = "token-2"  # MSAL renewed it: the kept one is still valid for minutes
    connections.now += agent.BOT_TOKEN_KEPT - 1
    again = await lend(factory, OTHER_REGION)  # another address: the same token
    await again.close()
    assert connections.asked == 1
    assert again.client.headers["Authorization"] == "Bearer token-1"
    connections.now += 1
    renewed = await lend(factory)
    assert connections.asked == 2 and renewed is not first
    assert renewed.client.headers["Authorization"] == "Bearer token-2"
    await renewed.close()
    connections.now -= 3600  # a clock that went back does not make a token last longer
    await (await lend(factory)).close()
    assert connections.asked == 3
    await factory.close()
