"""Delegated pass writes end to end below the Teams edge: TokenServiceTokens gets each person's Graph token from the
sandbox's token service through the Agents SDK's UserTokenClient (after the exchange Teams' SSO would make), and the
GraphGateway writes with it to the sandbox's Graph, which decides with that person's roles as Entra does. Entra's
refusals come back as the sentence naming what the person lacks; a lapsed sign-in asks for a new one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.adapters.user_tokens import TokenServiceTokens
from bot.domain.errors import EntraRefused, SignInRequired
from bot.domain.model import Caller, DirectoryUser
from bot.sandbox.server import RunningSandbox, start_sandbox
from bot.sandbox.tenant import load_tenant
from bot.settings import DEMO_TENANT_FILE, SANDBOX_BOT_APP_ID, GraphMode, GraphSettings
from tests.harness.bot import ADELE, ALEX, DIEGO, ISAIAH, MEGAN, Person

CONNECTION = "tapbot-graph"
GRADY = Person("f3ebd287-8aba-4215-a442-62511e3584a3", "GradyA@contoso.onmicrosoft.com", "Grady Archie")
MIRIAM = Person("0b8df986-914e-4a37-9b65-e000f7cd5fa3", "MiriamG@contoso.onmicrosoft.com", "Miriam Graham")


SAVED_AT = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # when every saved account was saved (rows, in SQL)


@dataclass
class MemoryUsers:
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict)

    async def save_sign_in_user(self, user_id: str, channel_user_id: str, channel_id: str, at: datetime) -> None:
        self.accounts[user_id] = (channel_user_id, channel_id)

    async def sign_in_user(self, user_id: str) -> tuple[str, str] | None:
        return self.accounts.get(user_id)

    async def signed_in_at(self, user_id: str) -> datetime | None:
        return SAVED_AT if user_id in self.accounts else None


@dataclass
class Delegated:
    sandbox: RunningSandbox
    gateway: GraphGateway
    tokens: TokenServiceTokens
    users: MemoryUsers
    http: httpx.AsyncClient

    def sign_in(self, person: Person) -> str:
        """What Teams' SSO and the edge do at a sign-in: the token service's exchange, the channel account kept."""
        identity = self.sandbox.state.identity
        channel_user_id = f"29:{person.object_id}"
        session = identity.exchange(channel_user_id, CONNECTION, "msteams", identity.teams_sso_token(person.object_id))
        self.users.accounts[person.object_id] = (channel_user_id, "msteams")
        return session.token

    async def issue(self, person: Person, target: Person) -> Any:
        return await self.gateway.create_pass(
            directory_user(target), lifetime_minutes=60, one_time=False, start_at=None, acting_as=caller(person)
        )


def caller(person: Person) -> Caller:
    return Caller(person.object_id, "e0eeef39-44a5-4e21-9fc8-bc6e2ac99ce8", person.name)


def directory_user(person: Person) -> DirectoryUser:
    return DirectoryUser(person.object_id, person.upn, person.name)


@pytest.fixture
async def delegated() -> AsyncIterator[Delegated]:
    sandbox = await start_sandbox(load_tenant(DEMO_TENANT_FILE))
    client, http = build_graph_client(GraphSettings(GraphMode.SANDBOX), sandbox.base_url)
    users = MemoryUsers()

    async def anonymous() -> str:
        return ""

    tokens = TokenServiceTokens(
        users=users,
        connection=CONNECTION,
        endpoint=sandbox.root_url,
        app_id=SANDBOX_BOT_APP_ID,
        bot_token=anonymous,
        clock=SystemClock(),
    )

    async def no_sleep(_: float) -> None:
        return None

    gateway = GraphGateway(client, SystemClock(), sleep=no_sleep, delegated=tokens)
    try:
        yield Delegated(sandbox, gateway, tokens, users, http)
    finally:
        await http.aclose()
        await sandbox.close()


async def test_an_authentication_administrator_issues_with_their_own_token(delegated: Delegated) -> None:
    token = delegated.sign_in(ADELE)
    issued = await delegated.issue(ADELE, MEGAN)
    assert issued.info.method_id and issued.secret.reveal()
    assert (await delegated.tokens.token_for(caller(ADELE))).value == token
    await delegated.gateway.delete_pass(MEGAN.object_id, issued.info.method_id, acting_as=caller(ADELE))
    assert await delegated.gateway.current_pass(MEGAN.object_id) is None


async def test_nobody_signed_in_writes_nothing(delegated: Delegated) -> None:
    before = delegated.sandbox.state.counters_snapshot()
    with pytest.raises(SignInRequired):
        await delegated.issue(ADELE, MEGAN)
    assert await delegated.gateway.current_pass(MEGAN.object_id) is None
    assert delegated.sandbox.state.counters_snapshot()["writes"] == before["writes"]


@pytest.mark.parametrize(
    ("person", "target", "sentence"),
    [
        (DIEGO, MEGAN, "You need the Authentication Administrator role in Entra to issue passes."),
        (
            ALEX,
            MEGAN,
            "Activate your Authentication Administrator role in Privileged Identity Management first, then try again.",
        ),
        (
            GRADY,
            MEGAN,
            "Your Authentication Administrator role covers only the administrative unit Paris office; "
            "Megan Bowen is not in it.",
        ),
        (
            ADELE,
            ISAIAH,
            "Isaiah Langer holds an admin role: only a Privileged Authentication Administrator can give them a pass.",
        ),
        (
            GRADY,
            MIRIAM,
            "Miriam Graham holds an admin role: only a Privileged Authentication Administrator can give them a pass.",
        ),
    ],
)
async def test_entras_refusal_names_what_the_person_lacks(
    delegated: Delegated, person: Person, target: Person, sentence: str
) -> None:
    delegated.sign_in(person)
    with pytest.raises(EntraRefused) as caught:
        await delegated.issue(person, target)
    assert caught.value.user_message == sentence
    assert await delegated.gateway.current_pass(target.object_id) is None


async def test_a_lapsed_sign_in_is_dropped_and_a_new_one_asked_for(delegated: Delegated) -> None:
    delegated.sign_in(ADELE)
    await delegated.tokens.token_for(caller(ADELE))  # cached
    delegated.sandbox.state.identity.lapse(ADELE.object_id)  # Graph now refuses it; the token service has none
    with pytest.raises(SignInRequired):
        await delegated.issue(ADELE, MEGAN)
    assert await delegated.gateway.current_pass(MEGAN.object_id) is None
    delegated.sign_in(ADELE)  # signed in again: the write goes through with the new token
    assert (await delegated.issue(ADELE, MEGAN)).info.method_id
