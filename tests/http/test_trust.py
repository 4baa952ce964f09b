"""Where the bot sends is trusted, not taken from the activity (issue 9, item 1), through the real endpoint.

Only tokens the Bot Framework channel issued for this bot count, they must name the activity's service URL, and
that URL must be an allowed connector host. An attacker's connector (a second recording connector on loopback)
stands for "a serviceUrl of the caller's choosing": it must never receive anything.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.teams.trust import ConnectorHosts
from tests.harness.bot import ADELE, MEGAN, TENANT_ID, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.connector import RecordingConnector
from tests.harness.tokens import (
    GOV_CHANNEL_ISSUER,
    TENANT_KEY,
    TENANT_V1_ISSUER,
    TENANT_V2_ISSUER,
    UNENDORSED_CHANNEL_KEY,
    bearer,
    install_test_keys,
    registered_env,
)
from tests.http.test_audit_export import consent_card
from tests.http.test_issue_flow import cards_in, sandbox_passes


@pytest.fixture
async def attacker() -> AsyncIterator[RecordingConnector]:
    connector = await RecordingConnector().start()
    try:
        yield connector
    finally:
        await connector.stop()


@pytest.fixture
async def key_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return install_test_keys(monkeypatch)


@pytest.fixture
async def registered_bot(tmp_path: Path, key_lookups: list[str]) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path, **registered_env()))
    try:
        yield running
    finally:
        await stop_bot(running)


async def nothing_happened(bot: RunningBot, attacker: RecordingConnector) -> None:
    assert attacker.sent == [], "the attacker's connector received a call"
    assert bot.connector.sent == []
    assert await sandbox_passes(bot) == []
    assert [row for row in await bot.components.store.audit_rows() if row.action == "issue"] == []


async def test_a_token_of_the_bots_own_tenant_is_not_the_channel(
    registered_bot: RunningBot, attacker: RecordingConnector, key_lookups: list[str]
) -> None:
    """Another app registration of the bot's tenant can get a token for the bot's app id; it proves nothing."""
    activity = registered_bot.activity(ADELE, f"/tap issue {MEGAN.upn}", serviceUrl=attacker.url)
    tenant_tokens = {
        "v2 issuer, no serviceurl": bearer(key=TENANT_KEY, issuer=TENANT_V2_ISSUER, tid=TENANT_ID),
        "v1 issuer, no serviceurl": bearer(key=TENANT_KEY, issuer=TENANT_V1_ISSUER, tid=TENANT_ID),
        "v2 issuer naming the service url": bearer(
            key=TENANT_KEY, issuer=TENANT_V2_ISSUER, tid=TENANT_ID, serviceurl=attacker.url
        ),
    }
    for case, headers in tenant_tokens.items():
        response = await registered_bot.post(activity, headers=headers)
        assert response.status == 401, case
    await nothing_happened(registered_bot, attacker)
    assert not any("login.microsoftonline.com" in uri for uri in key_lookups), "no tenant key is even fetched"


async def test_a_channel_token_must_name_the_activitys_service_url(
    registered_bot: RunningBot, attacker: RecordingConnector
) -> None:
    own_url = registered_bot.connector.url
    cases: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
        "no serviceurl claim": (registered_bot.activity(ADELE, f"/tap issue {MEGAN.upn}"), bearer()),
        "no serviceurl claim, attacker's address": (
            registered_bot.activity(ADELE, f"/tap issue {MEGAN.upn}", serviceUrl=attacker.url),
            bearer(),
        ),
        "claim for another address": (
            registered_bot.activity(ADELE, f"/tap issue {MEGAN.upn}", serviceUrl=attacker.url),
            bearer(serviceurl=own_url),
        ),
        "key not endorsed for Teams": (
            registered_bot.activity(ADELE, f"/tap issue {MEGAN.upn}"),
            bearer(key=UNENDORSED_CHANNEL_KEY, serviceurl=own_url),
        ),
        "another channel": (
            registered_bot.activity(ADELE, f"/tap issue {MEGAN.upn}", channelId="webchat"),
            bearer(serviceurl=own_url),
        ),
    }
    for case, (activity, headers) in cases.items():
        response = await registered_bot.post(activity, headers=headers)
        assert response.status == 401, case
    await nothing_happened(registered_bot, attacker)

    accepted = await registered_bot.post(
        registered_bot.activity(ADELE, f"/tap issue {MEGAN.upn}"), headers=bearer(serviceurl=own_url)
    )
    assert accepted.status in (200, 202)
    assert len(cards_in(registered_bot.connector.sent)) == 1
    assert attacker.sent == []


async def test_a_vouched_address_off_the_connector_allow_list_gets_nothing(
    registered_bot: RunningBot, attacker: RecordingConnector
) -> None:
    """Even a channel token naming the address does not make an unlisted host a connector."""
    for address in (attacker.url, "https://smba.evil.example.com/amer/", "http://smba.trafficmanager.net/amer/"):
        activity = registered_bot.activity(ADELE, f"/tap issue {MEGAN.upn}", serviceUrl=address)
        response = await registered_bot.post(activity, headers=bearer(serviceurl=address))
        assert response.status == 401, address
    await nothing_happened(registered_bot, attacker)


async def test_the_sandbox_only_trusts_loopback_and_teams_connectors(bot: RunningBot) -> None:
    for address in ("https://evil.example.com/", "http://10.0.0.7:3978/", "ftp://127.0.0.1/", "not a url", 5):
        response = await bot.post(bot.activity(ADELE, f"/tap issue {MEGAN.upn}", serviceUrl=address))
        assert response.status in (400, 401), address
    assert bot.connector.sent == [] and await sandbox_passes(bot) == []
    await bot.say(ADELE, f"/tap issue {MEGAN.upn}")
    assert len(cards_in(bot.connector.sent)) == 1


async def test_no_connector_client_is_made_for_a_stored_address_off_the_list(
    tmp_path: Path, registered_bot: RunningBot, attacker: RecordingConnector
) -> None:
    """Defence in depth: a stored card address that is not an allowed host (written into the database behind the
    bot's back) is not used when the card is later redacted; the revoke itself goes ahead."""
    own_url = registered_bot.connector.url
    issue = registered_bot.activity(ADELE, f"/tap issue {MEGAN.upn}")
    assert (await registered_bot.post(issue, headers=bearer(serviceurl=own_url))).status in (200, 202)
    assert len(cards_in(registered_bot.connector.sent)) == 1
    with sqlite3.connect(tmp_path / "tapbot.db") as database:
        database.execute("UPDATE pass_cards SET service_url = ?", (attacker.url,))
    registered_bot.connector.clear()
    revoke = registered_bot.activity(ADELE, f"/tap revoke {MEGAN.upn}")
    assert (await registered_bot.post(revoke, headers=bearer(serviceurl=own_url))).status in (200, 202)
    assert await sandbox_passes(registered_bot) == []
    assert registered_bot.connector.texts(), "the revoke was answered"
    assert not any(sent.kind == "update" for sent in registered_bot.connector.sent)
    assert attacker.sent == []


def test_connector_host_rules() -> None:
    teams = ConnectorHosts(("smba.trafficmanager.net", "*.example.org", "127.0.0.1:4000"))
    assert teams.allows("https://smba.trafficmanager.net/amer/")
    assert teams.allows("https://SMBA.trafficmanager.net/emea/")
    assert teams.allows("https://a.b.example.org/")
    assert teams.allows("http://127.0.0.1:4000/")
    refused = [
        "http://smba.trafficmanager.net/amer/",
        "https://smba.trafficmanager.net.evil.com/",
        "https://evil.com/smba.trafficmanager.net",
        "https://user:pw@smba.trafficmanager.net/",
        "https://example.org/",
        "http://127.0.0.1:4001/",
        "http://localhost:4000/",
        "/relative/path",
        "",
        None,
        5,
    ]
    assert [url for url in refused if teams.allows(url)] == []
    sandbox = ConnectorHosts((), any_loopback=True)
    assert sandbox.allows("http://127.0.0.1:56150/") and sandbox.allows("http://[::1]:9/")
    assert not sandbox.allows("http://10.0.0.1/") and not sandbox.allows("https://smba.trafficmanager.net/")


class RecordingUploadHost:
    """A loopback host that records every request and answers uploads as OneDrive would, or with a redirect."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self._redirect_to = redirect_to
        self._runner: web.AppRunner | None = None
        self.root = ""

    async def start(self) -> RecordingUploadHost:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.root = f"127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _any(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, await request.read()))
        if self._redirect_to:
            raise web.HTTPTemporaryRedirect(self._redirect_to)
        return web.json_response({"id": "uploaded"}, status=201)


async def consent_to_audit_export(bot: RunningBot, upload_url: str) -> None:
    await bot.say(ADELE, "/tap audit export")
    consent = consent_card(bot)
    invoke = bot.activity(ADELE)
    invoke.update(
        {
            "type": "invoke",
            "name": "fileConsent/invoke",
            "value": {
                "type": "fileUpload",
                "action": "accept",
                "context": consent["content"]["acceptContext"],
                "uploadInfo": {
                    "name": "audit.csv",
                    "uploadUrl": upload_url,
                    "contentUrl": "https://contoso-my.sharepoint.com/personal/adele/Documents/audit.csv",
                    "uniqueId": "u-audit",
                    "fileType": "csv",
                },
            },
        }
    )
    response = await bot.post(invoke)
    assert response.status == 200


@pytest.mark.parametrize("route", ["unlisted host", "plain http", "redirect from a listed host"])
async def test_file_consent_upload_urls_off_the_list_get_no_bytes(tmp_path: Path, route: str) -> None:
    evil = await RecordingUploadHost().start()
    listed = await RecordingUploadHost(redirect_to=f"http://{evil.root}/stolen.csv").start()
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_DOWNLOAD_HOSTS=f"{listed.root},*.sharepoint.com"))
    try:
        await running.say(ADELE, f"/tap issue {MEGAN.upn}")  # something worth exporting
        upload_url = {
            "unlisted host": f"http://{evil.root}/upload",
            "plain http": "http://contoso-my.sharepoint.com/upload",
            "redirect from a listed host": f"http://{listed.root}/upload",
        }[route]
        running.connector.clear()
        await consent_to_audit_export(running, upload_url)
        assert evil.requests == [], "not a byte reached the unlisted host"
        if route != "redirect from a listed host":
            assert listed.requests == []
        assert any("sent nothing" in text or "refused the file" in text for text in running.connector.texts())
    finally:
        await stop_bot(running)
        await listed.stop()
        await evil.stop()


async def test_file_consent_upload_to_a_listed_host_arrives(tmp_path: Path) -> None:
    host = await RecordingUploadHost().start()
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_DOWNLOAD_HOSTS=host.root))
    try:
        await running.say(ADELE, f"/tap issue {MEGAN.upn}")
        await consent_to_audit_export(running, f"http://{host.root}/upload")
        assert len(host.requests) == 1 and host.requests[0][1].startswith(b"\xef\xbb\xbf")
    finally:
        await stop_bot(running)
        await host.stop()


async def test_a_us_government_bot_takes_the_us_government_channel_only(tmp_path: Path, key_lookups: list[str]) -> None:
    authority = {
        "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHORITY": f"https://login.microsoftonline.us/{TENANT_ID}"
    }
    running = await start_bot(sandbox_env(tmp_path, **registered_env(**authority)))
    try:
        own_url = running.connector.url
        activity = running.activity(ADELE, f"/tap issue {MEGAN.upn}")
        assert (await running.post(activity, headers=bearer(serviceurl=own_url))).status == 401
        assert running.connector.sent == []
        accepted = await running.post(activity, headers=bearer(issuer=GOV_CHANNEL_ISSUER, serviceurl=own_url))
        assert accepted.status in (200, 202)
        assert len(cards_in(running.connector.sent)) == 1
        assert "https://login.botframework.azure.us/v1/.well-known/keys" in key_lookups
    finally:
        await stop_bot(running)
