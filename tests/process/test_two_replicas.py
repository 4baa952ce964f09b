"""Two bot processes share one PostgreSQL database. The one running a bulk job is killed with SIGKILL; the other
takes the job over once its lease runs out and finishes it: every row in one final state, every user holding
exactly the pass the requester was shown, no audit record lost. A delivery Teams retries to the other replica
is handled once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import aiohttp
import asyncpg

from bot.sandbox.generate import bulk_tenant, bulk_upns
from tests.harness.bot import MEGAN, TENANT_ID
from tests.harness.connector import RecordingConnector
from tests.process.test_kill_and_resume import (
    OPERATORS,
    Processes,
    free_port,
    message,
    pages,
    processes,
    sandbox_url,
    shown_passes,
    start_bulk_job,
    wait_healthy,
)

__all__ = ["processes"]

USERS = 200


async def test_the_other_replica_finishes_a_killed_replicas_job(
    tmp_path: Path, processes: Processes, postgres_url: str
) -> None:
    tenant_file = tmp_path / "tenant.json"
    tenant_file.write_text(json.dumps(bulk_tenant(USERS)), encoding="utf-8")
    base_env = {key: value for key, value in os.environ.items() if not key.startswith(("TAPBOT_", "CONNECTIONS__"))}
    sandbox = processes.start(
        "-m", "bot.sandbox", "--tenant", str(tenant_file), "--port", "0", "--latency-ms", "25", env=base_env
    )
    graph_url = await sandbox_url(sandbox)
    sandbox_root = graph_url.removesuffix("/v1.0")
    connector = await RecordingConnector().start()
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    envs = [
        {
            **base_env,
            "PORT": str(port),
            "TAPBOT_REPLICA_ID": f"replica-{index}",
            "TAPBOT_GRAPH_AUTH": "anonymous",
            "TAPBOT_GRAPH_BASE_URL": graph_url,
            "TAPBOT_ALLOWED_TENANT_IDS": TENANT_ID,
            "TAPBOT_OPERATOR_GROUP_ID": OPERATORS,
            "TAPBOT_DATABASE_URL": postgres_url,
            "TAPBOT_DOWNLOAD_HOSTS": sandbox_root.removeprefix("http://"),
            "TAPBOT_LOG_LEVEL": "WARNING",
            "TAPBOT_LEASE_SECONDS": "3",
            "TAPBOT_HOUSEKEEPING_SECONDS": "0.5",
            # The retried single issue below is for a user who already has sign-in methods: without this it would
            # wait for her manager's confirmation (issue 12), which is not what this test is about.
            "TAPBOT_VERIFICATION": "",
        }
        for index, port in enumerate(ports)
    ]
    try:
        first = processes.start("app.py", env=envs[0])
        await wait_healthy(urls[0], first)
        second = processes.start("app.py", env=envs[1])
        await wait_healthy(urls[1], second)
        async with aiohttp.ClientSession() as session:
            # A delivery retried to the other replica is handled once.
            retried = message(connector.url, f"/tap issue {MEGAN.upn}", id="activity-retried-1")
            for url in urls:
                async with session.post(f"{url}/api/messages", json=retried) as answer:
                    assert answer.status in (200, 202)
            assert sum(1 for sent in connector.sent if sent.card and "handed it over" in str(sent.card)) == 1

            job_id = await start_bulk_job(session, urls[0], connector, sandbox_root, USERS)

            for _ in range(600):
                if len(pages(connector)) >= 2:
                    break
                await asyncio.sleep(0.02)
            assert len(pages(connector)) >= 2
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            assert len(shown_passes(connector)) < USERS, "the run finished before it could be killed"

            for _ in range(1200):  # the second replica adopts the job once the lease runs out
                if any(sent.kind == "update" and "finished" in str(sent.card) for sent in connector.sent):
                    break
                await asyncio.sleep(0.05)
            async with session.get(f"{sandbox_root}/_sandbox/state") as answer:
                state = await answer.json()
            shown = shown_passes(connector)
            statuses = []
            for upn in bulk_upns(USERS):
                label = f"Bulk User {upn[4:9]} ({upn})"
                payload = {"temporaryAccessPass": shown[label]}
                async with session.post(f"{sandbox_root}/_sandbox/passes/{upn}/use", json=payload) as answer:
                    statuses.append(answer.status)
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    finally:
        await connector.stop()

    database = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        states = dict(
            await database.fetch("SELECT state, count(*) FROM bulk_rows WHERE job_id = $1 GROUP BY state", job_id)
        )
        method_ids = dict(
            await database.fetch("SELECT user_id, pass_method_id FROM bulk_rows WHERE job_id = $1", job_id)
        )
        audited = {
            row[0]
            for row in await database.fetch(
                "SELECT pass_method_id FROM audit_events WHERE action = 'issue' AND outcome = 'succeeded'"
            )
        }
        lease = await database.fetchrow("SELECT status, lease_owner FROM bulk_jobs WHERE id = $1", job_id)
    finally:
        await database.close()

    assert states == {"delivered": USERS}, states
    assert lease is not None and lease["status"] == "finished"
    assert len(shown) == USERS and statuses == [200] * USERS, "every shown pass works"
    bulk_passes = [item for item in state["passes"] if item["user_principal_name"].startswith("bulk")]
    live = {item["user_id"]: item["id"] for item in bulk_passes}
    assert len(bulk_passes) == USERS and len(live) == USERS, "one pass per user"
    assert method_ids == live, "the journal names each user's live pass"
    assert set(live.values()) <= audited, "no issuance missing from the audit log"
