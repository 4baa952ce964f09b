"""A bot process killed with SIGKILL in the middle of a bulk run resumes on restart: every row ends in exactly
one final state, every user holds exactly the pass the requester was shown, nothing is issued twice unseen."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.sandbox.generate import bulk_tenant, bulk_upns
from cards import verbs
from tests.harness.bot import ADELE, TENANT_ID
from tests.harness.card_reading import page_secrets
from tests.harness.connector import RecordingConnector

PROJECT = Path(__file__).resolve().parents[2]
USERS = 300
OPERATORS = "a7ce04ee-d04a-4705-a2b0-6143136ea70f"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """Child processes whose output goes to files (a pipe nobody reads would block them)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.directory / f"process-{len(self.started)}.log").open("wb")
        process = subprocess.Popen([sys.executable, *args], cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
        process.log_path = Path(log.name)  # type: ignore[attr-defined]
        self.started.append(process)
        return process

    @staticmethod
    def output(process: subprocess.Popen[bytes]) -> str:
        return Path(process.log_path).read_text(errors="replace")  # type: ignore[attr-defined]

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    running = Processes(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


async def sandbox_url(process: subprocess.Popen[bytes]) -> str:
    for _ in range(300):
        for line in Processes.output(process).splitlines():
            if line.startswith("SANDBOX_URL="):
                return line.removeprefix("SANDBOX_URL=").strip()
        await asyncio.sleep(0.05)
    raise AssertionError(f"the sandbox never printed its URL: {Processes.output(process)[-2000:]}")


async def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.poll() is not None:
                raise AssertionError(f"bot exited: {Processes.output(process)[-2000:]}")
            try:
                async with session.get(f"{url}/healthz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the bot did not start")


def pages(connector: RecordingConnector) -> list[dict[str, Any]]:
    return [sent.card for sent in connector.sent if sent.card and "I have handed them over" in str(sent.card)]


def shown_passes(connector: RecordingConnector) -> dict[str, str]:
    """user label → the last pass value the requester was shown for that user."""
    shown: dict[str, str] = {}
    for page in pages(connector):
        shown.update(page_secrets(page))
    return shown


async def test_sigkill_mid_run_then_resume(tmp_path: Path, processes: Processes) -> None:
    tenant_file = tmp_path / "tenant.json"
    tenant_file.write_text(json.dumps(bulk_tenant(USERS)), encoding="utf-8")
    base_env = {key: value for key, value in os.environ.items() if not key.startswith(("TAPBOT_", "CONNECTIONS__"))}
    sandbox = processes.start(
        "-m", "bot.sandbox", "--tenant", str(tenant_file), "--port", "0", "--latency-ms", "25", env=base_env
    )
    graph_url = await sandbox_url(sandbox)
    sandbox_root = graph_url.removesuffix("/v1.0")
    connector = await RecordingConnector().start()
    port = free_port()
    bot_url = f"http://127.0.0.1:{port}"
    env = {
        **base_env,
        "PORT": str(port),
        "TAPBOT_GRAPH_AUTH": "anonymous",
        "TAPBOT_GRAPH_BASE_URL": graph_url,
        "TAPBOT_ALLOWED_TENANT_IDS": TENANT_ID,
        "TAPBOT_OPERATOR_GROUP_ID": OPERATORS,
        "TAPBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}",
        "TAPBOT_DOWNLOAD_HOSTS": sandbox_root.removeprefix("http://"),
        "TAPBOT_LOG_LEVEL": "WARNING",
        "TAPBOT_LEASE_SECONDS": "3",  # the killed process holds its lease until it runs out
        "TAPBOT_HOUSEKEEPING_SECONDS": "0.5",
    }
    try:
        first = processes.start("app.py", env=env)
        await wait_healthy(bot_url, first)
        async with aiohttp.ClientSession() as session:
            job_id = await start_bulk_job(session, bot_url, connector, sandbox_root, USERS)
            assert job_id, Processes.output(first)[-3000:]

            for _ in range(600):  # until two pages (100 passes) were shown, then kill the bot mid-run
                if len(pages(connector)) >= 2:
                    break
                await asyncio.sleep(0.02)
            assert len(pages(connector)) >= 2
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            delivered_before = len(shown_passes(connector))
            assert delivered_before < USERS, "the run finished before it could be killed"

            second = processes.start("app.py", env=env)  # resumes the job at start-up
            await wait_healthy(bot_url, second)
            for _ in range(1200):
                if any(sent.kind == "update" and "finished" in str(sent.card) for sent in connector.sent):
                    break
                await asyncio.sleep(0.05)
            async with session.get(f"{sandbox_root}/_sandbox/state") as answer:
                state = await answer.json()
            shown = shown_passes(connector)
            # Each user's shown pass is the one that works now.
            checks = [
                session.post(f"{sandbox_root}/_sandbox/passes/{upn}/use", json={"temporaryAccessPass": shown[label]})
                for upn, label in ((upn, f"Bulk User {upn[4:9]} ({upn})") for upn in bulk_upns(USERS))
            ]
            statuses = []
            for check in checks:
                async with check as answer:
                    statuses.append(answer.status)
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    finally:
        await connector.stop()

    database = sqlite3.connect(tmp_path / "tapbot.db")
    states = dict(database.execute("SELECT state, count(*) FROM bulk_rows WHERE job_id = ? GROUP BY state", (job_id,)))
    method_ids = dict(database.execute("SELECT user_id, pass_method_id FROM bulk_rows WHERE job_id = ?", (job_id,)))
    audited = {
        row[0]
        for row in database.execute(
            "SELECT pass_method_id FROM audit_events WHERE action = 'issue' AND outcome = 'succeeded'"
        )
    }
    database.close()

    assert states == {"delivered": USERS}, states
    assert len(shown) == USERS
    assert statuses == [200] * USERS, "every shown pass works"
    bulk_passes = [item for item in state["passes"] if item["user_principal_name"].startswith("bulk")]
    live = {item["user_id"]: item["id"] for item in bulk_passes}
    assert len(bulk_passes) == USERS and len(live) == USERS, "one pass per user"
    assert method_ids == live, "the journal names each user's live pass"
    assert set(live.values()) <= audited, "no issuance missing from the audit log"


async def start_bulk_job(
    session: aiohttp.ClientSession, bot_url: str, connector: RecordingConnector, sandbox_root: str, users: int
) -> int:
    """Attaches a file of `users` bulk users (hosted by the sandbox) and confirms the preflight; the job id."""
    data = ("userPrincipalName\n" + "\n".join(bulk_upns(users)) + "\n").encode()
    async with session.post(f"{sandbox_root}/_sandbox/files?name=users.csv", data=data) as hosted:
        download_url = (await hosted.json())["downloadUrl"]
    attachment = {
        "contentType": "application/vnd.microsoft.teams.file.download.info",
        "name": "users.csv",
        "content": {"downloadUrl": download_url, "uniqueId": "1", "fileType": "csv"},
    }
    activity = message(connector.url, "", id=f"file-{len(connector.sent)}", attachments=[attachment])
    async with session.post(f"{bot_url}/api/messages", json=activity) as answer:
        assert answer.status in (200, 202)
    preflights = [sent.card for sent in connector.sent if sent.card and "Bulk issue" in str(sent.card)]
    assert preflights, connector.texts()
    job_id = next(a["data"]["jobId"] for a in preflights[-1]["actions"] if a["verb"] == verbs.BULK_CONFIRM)
    invoke = message(
        connector.url,
        None,
        type="invoke",
        name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", "verb": verbs.BULK_CONFIRM, "data": {"jobId": job_id}}},
    )
    async with session.post(f"{bot_url}/api/messages", json=invoke) as answer:
        assert answer.status == 200
    return int(job_id)


def message(service_url: str, text: str | None, **extra: Any) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": "message",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": ADELE.channel_id, "name": ADELE.name, "aadObjectId": ADELE.object_id},
        "recipient": {"id": "28:tapbot", "name": "tapbot"},
        "conversation": {"id": f"a:personal-{ADELE.object_id}", "conversationType": "personal"},
        "channelData": {"tenant": {"id": TENANT_ID}},
        "entities": [{"type": "clientInfo", "timezone": "Europe/Berlin"}],
    }
    if text is not None:
        activity["text"] = text
    activity.update(extra)
    return activity
