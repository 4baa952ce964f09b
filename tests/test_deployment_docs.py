"""The deployment guide and the README's settings table agree with the code."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import ssl
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.adapters.store import SqlStore
from bot.doctor import REQUIRED_PERMISSIONS
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.settings import PROJECT_DIR
from tests.support.postgres import PostgresServer, find_postgres_bin, postgres

__all__ = ["postgres"]  # the session fixture

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
GUIDE = (PROJECT_DIR / "docs" / "deployment.md").read_text(encoding="utf-8")
SETTING = re.compile(r"\b(?:TAPBOT_[A-Z0-9_]*[A-Z0-9]|CONNECTIONS__SERVICE_CONNECTION__SETTINGS__[A-Z]+|PORT)\b")
SDK_PREFIX = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


def settings_table() -> str:
    section = README.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def documented(name: str, table: str) -> bool:
    """In the table, literally or in its short forms: `…__AUTHTYPE` for the SDK's settings, `…_PASSWORD`."""
    if f"`{name}`" in table:
        return True
    if name.startswith(SDK_PREFIX):
        return f"`…__{name.removeprefix(SDK_PREFIX)}`" in table or "`…__AUTHTYPE`, `…__CERTPFXFILE`, …" in table
    return f"`…_{name.rsplit('_', 1)[-1]}`" in table


def test_every_setting_the_guide_names_is_in_the_readme_table() -> None:
    table = settings_table()
    named = set(SETTING.findall(GUIDE))
    assert {"TAPBOT_GRAPH_AUTH", "TAPBOT_DATABASE_URL", f"{SDK_PREFIX}CLIENTID"} <= named
    missing = sorted(name for name in named if not documented(name, table))
    assert missing == [], f"docs/deployment.md names settings the README does not describe: {missing}"


def test_every_setting_the_code_reads_is_in_the_readme_table() -> None:
    code = (PROJECT_DIR / "bot" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r'"(TAPBOT_[A-Z0-9_]+|PORT)"', code))
    assert "TAPBOT_LOG_FORMAT" in read
    table = settings_table()
    missing = sorted(name for name in read if not documented(name, table))
    assert missing == [], f"settings read by bot/settings.py but missing from the README: {missing}"


def test_the_guide_covers_the_deployment_steps() -> None:
    for permission in REQUIRED_PERMISSIONS:
        assert f"`{permission}`" in GUIDE, permission
    for phrase in (
        "Single Tenant",
        "/api/messages",
        "TAPBOT_GRAPH_AUTH=managed_identity",
        "postgresql+asyncpg://",
        "--min-replicas 2",
        "docs/app-package.md",
        "python app.py doctor",
        "/readyz",
        "/healthz",
    ):
        assert phrase in GUIDE, phrase
    assert (PROJECT_DIR / "docs" / "app-package.md").is_file()


# --- the guide's commands, run as written where they can run here ---------------------------------------------

APP_ID = "6f1a3c2e-1b2d-4c3e-9f10-123456789abc"


def guide_block(name: str) -> str:
    """The code block right after ``<!-- tested: name -->`` in the guide: the test runs what the reader copies."""
    match = re.search(rf"<!-- tested: {re.escape(name)} -->\n```[a-z]*\n(.*?)\n```", GUIDE, re.DOTALL)
    assert match, f"docs/deployment.md has no code block marked <!-- tested: {name} -->"
    return match.group(1)


def statements(sql: str) -> list[str]:
    return [statement.strip() for statement in sql.split(";\n") if statement.strip().rstrip(";")]


async def run_as(server: PostgresServer, user: str, database: str, sql: list[str]) -> None:
    connection = await asyncpg.connect(f"postgresql://{user}@127.0.0.1:{server.port}/{database}")
    try:
        for statement in sql:
            await connection.execute(statement.rstrip(";"))
    finally:
        await connection.close()


@pytest.fixture
async def managed_admin(postgres: PostgresServer) -> AsyncIterator[str]:
    """A server administrator as Azure makes one: CREATEDB and CREATEROLE, not a superuser."""
    name = postgres.next_name("azure_admin")
    await run_as(postgres, "tapbot", "postgres", [f"CREATE ROLE {name} LOGIN CREATEDB CREATEROLE NOSUPERUSER"])
    yield name


def guide_database(sql: str, database: str, role: str | None = None) -> str:
    """The block with the database's (and the password role's) name made unique on the shared test server."""
    renamed = re.sub(r"\bDATABASE tapbot\b", f"DATABASE {database}", sql)
    if role:
        renamed = re.sub(r"(?<![\w\"-])tapbot(?![\w\"-])", role, renamed)
    return renamed


async def test_the_password_database_steps_work_for_a_non_superuser_admin(
    postgres: PostgresServer, managed_admin: str, tmp_path: Path
) -> None:
    sql = guide_block("database-password")
    assert "GRANT tapbot TO CURRENT_USER" in sql
    role, database = postgres.next_name("guide_role"), postgres.next_name("guide_db")
    steps = statements(guide_database(sql, database, role))

    without_grant = [step for step in steps if not step.startswith("GRANT")]
    other_role, other_database = postgres.next_name("guide_role"), postgres.next_name("guide_db")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"member of role|SET ROLE"):
        await run_as(
            postgres,
            managed_admin,
            "postgres",
            [step.replace(role, other_role).replace(database, other_database) for step in without_grant],
        )

    await run_as(postgres, managed_admin, "postgres", steps)
    owner = await postgres_value(
        postgres, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", database
    )
    assert owner == role
    url = f"postgresql+asyncpg://{role}:pw@127.0.0.1:{postgres.port}/{database}"
    migrate_lines = [line.split("#")[0].strip() for line in guide_block("migrate").splitlines()]
    assert migrate_lines == ["python -m bot.adapters.migrate", "python -m bot.adapters.migrate --status"]
    env = {**os.environ, "TAPBOT_DATABASE_URL": url}
    for line in migrate_lines:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, *line.split()[1:]],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{line}: {done.stdout}{done.stderr}"
    tables = await postgres_value(
        postgres, "SELECT count(*) FROM pg_tables WHERE tableowner = $1", role, database=database
    )
    assert tables and int(tables) >= 8, "the bot's own role created and owns its tables"

    doctor_command = re.search(r'--command "([^"]+)"', guide_block("doctor"))
    assert doctor_command and doctor_command.group(1) == "python app.py doctor"
    doctor = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, *doctor_command.group(1).split()[1:]],
        cwd=PROJECT_DIR,
        env={**env, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "The database schema is present" in doctor.stdout


async def postgres_value(server: PostgresServer, sql: str, *arguments: object, database: str = "postgres") -> Any:
    connection = await asyncpg.connect(server.dsn(database))
    try:
        return await connection.fetchval(sql, *arguments)
    finally:
        await connection.close()


async def test_the_entra_database_steps_and_the_audit_retention_step(
    postgres: PostgresServer, managed_admin: str, tmp_path: Path
) -> None:
    sql = guide_block("database-entra")
    principal = "SELECT * FROM pgaadauth_create_principal('id-tapbot-db', false, false);"
    assert sql.startswith(principal)
    # pgaadauth exists only on Azure; here the role it would create is made by hand (a LOGIN role of that name).
    role = '"id-tapbot-db"'
    exists = await postgres_value(postgres, "SELECT count(*) FROM pg_roles WHERE rolname = 'id-tapbot-db'")
    if not exists:
        await run_as(postgres, managed_admin, "postgres", [f"CREATE ROLE {role} LOGIN"])
    database = postgres.next_name("guide_entra")
    steps = statements(guide_database(sql.removeprefix(principal), database))
    await run_as(postgres, managed_admin, "postgres", steps)
    url = f"postgresql+asyncpg://id-tapbot-db@127.0.0.1:{postgres.port}/{database}"
    store = SqlStore.from_url(url)
    try:
        await store.create_schema()
        now = datetime.now(UTC)
        for days in (800, 401, 399, 1):
            await store.record(
                AuditEvent(now - timedelta(days=days), AuditAction.STATUS, AuditOutcome.SUCCEEDED, f"actor-{days}")
            )
    finally:
        await store.close()

    retention = guide_block("audit-retention")
    script = tmp_path / "retention.sql"
    script.write_text(retention + "\n", encoding="utf-8")
    psql = find_postgres_bin()
    assert psql is not None
    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(psql / "psql"),
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(postgres.port),
            "-U",
            managed_admin,
            "-d",
            database,
            "-f",
            str(script),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with (tmp_path / "audit-events-expired.csv").open(encoding="utf-8", newline="") as exported:
        assert sorted(row["actor_id"] for row in csv.DictReader(exported)) == ["actor-401", "actor-800"]
    rows = await postgres_value(
        postgres, "SELECT string_agg(actor_id, ',' ORDER BY at) FROM audit_events", database=database
    )
    assert rows == "actor-399,actor-1"
    for statement in ("DELETE FROM audit_events", "UPDATE audit_events SET actor_id = 'x'", "TRUNCATE audit_events"):
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await run_as(postgres, "id-tapbot-db", database, [statement])


def test_the_app_package_step_builds_the_package(tmp_path: Path) -> None:
    command = guide_block("app-package")
    assert command.startswith("python -m manifest.build ")
    shell = {'"$(client_of bot)"': APP_ID, '"$HOST"': "tapbot-abc123.westeurope.azurecontainerapps.io"}
    for expression, value in shell.items():
        assert expression in command, expression
        command = command.replace(expression, value)
    arguments = command.split()[3:]
    out = tmp_path / "tapbot.zip"
    done = subprocess.run(
        [sys.executable, "-m", "manifest.build", *arguments, "--out", str(out)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.is_file() and out.stat().st_size > 0


def test_the_steps_come_in_an_order_that_works_from_an_empty_subscription() -> None:
    order = [
        "az group create",
        "az acr create",
        "az keyvault create",
        "az identity create",
        "--role AcrPull",
        '--role "Key Vault Secrets User"',
        "az postgres flexible-server create",
        "pgaadauth_create_principal",
        "az acr build",
        "az containerapp create",
        "az bot create",
        "python -m manifest.build",
        "python app.py doctor",
    ]
    positions = [GUIDE.index(step) for step in order]
    assert positions == sorted(positions), [
        step for step, _ in sorted(zip(order, positions, strict=True), key=lambda p: p[1])
    ]
    create = GUIDE[GUIDE.index("az containerapp create") :].split("\n\n", 1)[0]
    assert '--registry-identity "$(id_of pull)"' in create, "the image is pulled by the pull identity"
    assert "$(id_of graph)" not in create.split("--registry-identity", 1)[1].split("\n", 1)[0]
    assert "CLIENTSECRET" not in create, "no secret in the default path"
    assert "keyVaultReferenceIdentity" in GUIDE, "App Service resolves references with the secrets identity"


def test_the_image_carries_the_ca_bundle_the_guide_names() -> None:
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text(encoding="utf-8")
    bundle = "/app/certs/azure-postgresql-roots.pem"
    assert f"TAPBOT_DATABASE_CA_FILE={bundle}" in GUIDE and f"> {bundle}" in dockerfile
    sources = re.findall(r"(/etc/ssl/certs/\S+\.pem)", dockerfile)
    assert len(sources) == 3
    if not Path("/etc/ssl/certs").is_dir():
        pytest.skip("no Debian trust store on this machine to compare with")
    context = ssl.create_default_context(cafile=None)
    context.load_verify_locations(cadata="".join(Path(source).read_text(encoding="ascii") for source in sources))
    names = {str(subject) for cert in context.get_ca_certs() for subject in cert.get("subject", ())}
    for name in ("DigiCert Global Root CA", "DigiCert Global Root G2", "Microsoft RSA Root Certificate Authority 2017"):
        assert any(name in subject for subject in names), name


def test_the_shell_commands_hold_no_bare_placeholder() -> None:
    """`--id <your id>` in bash reads the file "your" (a redirection): placeholders go in quotes or variables."""
    for block in re.findall(r"```bash\n(.*?)\n```", GUIDE, re.DOTALL):
        unquoted = re.sub(r'"[^"]*"', '""', block)
        assert not re.search(r"<\s*[A-Za-z]", unquoted), block


# --- delegated writes (issue 14) -----------------------------------------------------------------------------------

TEAMS_CLIENTS = ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "5e3ce6c0-2b1f-4285-8d4b-75ee78787346")
# The options `az bot authsetting create` defines (azure-cli, command_modules/botservice/_params.py), plus the common
# resource ones: a flag outside this set fails in the reader's shell.
AUTHSETTING_FLAGS = {
    "--resource-group",
    "-g",
    "--name",
    "-n",
    "--setting-name",
    "-c",
    "--client-id",
    "--client-secret",
    "--provider-scope-string",
    "--service",
    "--parameters",
    "--subscription",
}


def delegated_section() -> str:
    return GUIDE.split("\n## Delegated writes: the technician's own rights\n", 1)[1].split("\n## ", 1)[0]


def test_the_delegated_section_covers_registration_connection_manifest_settings_and_roles() -> None:
    section = delegated_section()
    for phrase in (
        'api://botid-$APP_ID"',
        "access_as_user",
        *TEAMS_CLIENTS,
        '\\"requestedAccessTokenVersion\\": 2',
        "accessTokenAcceptedVersion",
        "https://token.botframework.com/.auth/web/redirect",
        "oauth2PermissionScopes[?value=='UserAuthenticationMethod.ReadWrite.All'].id",
        '--api-permissions "$WRITE_SCOPE=Scope"',
        "az ad app permission admin-consent",
        "--service Aadv2",
        'tokenExchangeUrl="api://botid-$APP_ID"',
        "--graph-writes delegated",
        "TAPBOT_GRAPH_WRITES=delegated",
        "TAPBOT_OAUTH_CONNECTION=tapbot-graph",
        "TAPBOT_SSO_RESOURCE",
        "Authentication Administrator",
        "Privileged Authentication Administrator",
        "administrative unit",
        "PIM",
        "the approver",
        "the job's requester",
        "Remove-MgServicePrincipalAppRoleAssignment",
        "doctor (section 9) adds two lines in delegated mode",
    ):
        assert phrase in section, phrase
    # The reasoning behind the design is written down, not only the steps.
    for reason in ("why does a service", "UserTokenClient", "on-behalf-of", "never in the database"):
        assert reason in section, reason


def test_the_oauth_connection_command_uses_only_options_the_cli_has() -> None:
    command = re.search(r"az bot authsetting create (.*?)\n(?!\s)", delegated_section() + "\n", re.DOTALL)
    assert command, "the section creates the OAuth connection with az bot authsetting create"
    flags = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", re.sub(r'"[^"]*"', '""', command.group(1))))
    assert {"--setting-name", "--service", "--client-id", "--provider-scope-string", "--parameters"} <= flags
    assert flags <= AUTHSETTING_FLAGS, flags - AUTHSETTING_FLAGS
    assert "tapbot-graph" in command.group(1) and "tenantId=$TENANT" in command.group(1)


def test_the_permission_table_of_each_mode_matches_the_doctor() -> None:
    from bot.doctor_delegated import method_write_permissions

    table = delegated_section().split("### Permissions in each mode", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    writes = [row for row in rows if "**must not be held**" in row]
    assert len(writes) == 1
    assert method_write_permissions(re.findall(r"`([\w.-]+)`", writes[0].split("|")[1])) != []
    reads = [row for row in rows if "required (section 4)" in row]
    assert len(reads) == 1
    read_permissions = set(re.findall(r"`([\w.-]+)`", reads[0].split("|")[1]))
    assert method_write_permissions(read_permissions) == [], "delegated mode's app permissions are reads only"
    assert read_permissions == {permission for permission in REQUIRED_PERMISSIONS if "ReadWrite" not in permission}


def test_the_delegated_package_step_builds_a_package_with_single_sign_on(tmp_path: Path) -> None:
    command = guide_block("app-package-delegated")
    assert command.startswith("python -m manifest.build ")
    shell = {'"$APP_ID"': APP_ID, '"$HOST"': "tapbot-abc123.westeurope.azurecontainerapps.io"}
    for expression, value in shell.items():
        assert expression in command, expression
        command = command.replace(expression, value)
    out = tmp_path / "tapbot.zip"
    done = subprocess.run(
        [sys.executable, "-m", "manifest.build", *command.split()[3:], "--out", str(out)],
        cwd=PROJECT_DIR,
        env={key: value for key, value in os.environ.items() if not key.startswith("TAPBOT_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["webApplicationInfo"] == {"id": APP_ID, "resource": f"api://botid-{APP_ID}"}
    assert "token.botframework.com" in manifest["validDomains"]
