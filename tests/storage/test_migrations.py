"""The migrations (bot/adapters/migrations) build exactly the schema of store/schema.py's models, on both engines."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.adapters import migrate as migrate_module
from bot.adapters.migrate import (
    MigrationError,
    alembic_config,
    current_revision,
    head_revision,
    migrate,
)
from bot.adapters.store import Base, SqlStore
from bot.domain.approvals import ApprovalsChannel
from tests.support.postgres import PostgresServer


def schema_of(connection: Connection) -> dict[str, Any]:
    """Everything SQLAlchemy's inspector reads about tapbot's tables, in a form two databases can be compared by."""
    inspector = inspect(connection)
    tables: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names()):
        if name == "alembic_version":
            continue
        tables[name] = {
            "columns": [
                (column["name"], str(column["type"]), column["nullable"], column.get("default"))
                for column in inspector.get_columns(name)
            ],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(name)
            ),
            "unique": sorted(tuple(item["column_names"]) for item in inspector.get_unique_constraints(name)),
            "foreign_keys": sorted(str(item) for item in inspector.get_foreign_keys(name)),
        }
    return tables


def triggers_of(connection: Connection) -> set[str]:
    if connection.dialect.name == "sqlite":
        rows = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    else:
        rows = connection.execute(
            text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = 'audit_events'::regclass")
        )
    return {row[0] for row in rows}


async def read(url: str, reader: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(reader)
    finally:
        await engine.dispose()


async def create_all(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()


@pytest.fixture
async def second_database_url(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'second.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return await server.create_database(server.next_name("second"))


async def test_migration_builds_the_schema_of_the_models(database_url: str, second_database_url: str) -> None:
    result = await migrate(database_url)
    assert (result.before, result.after, result.adopted) == (None, head_revision(), False)
    await create_all(second_database_url)  # what SQLAlchemy makes of Base.metadata on this engine

    migrated = await read(database_url, schema_of)
    assert migrated == await read(second_database_url, schema_of)
    assert sorted(migrated) == sorted(Base.metadata.tables)
    assert migrated["bulk_rows"]["primary_key"] == ["job_id", "line"]
    assert ("ix_pass_cards_due", ("redacted_at", "expires_at"), False) in migrated["pass_cards"]["indexes"]

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, Base.metadata)

    assert await read(database_url, differences) == []
    triggers = await read(database_url, triggers_of)
    if database_url.startswith("sqlite"):
        assert triggers == {"audit_events_no_update", "audit_events_no_delete"}
    else:
        assert triggers == {"audit_events_no_change", "audit_events_no_truncate"}


async def test_second_start_is_a_no_op(database_url: str) -> None:
    store = SqlStore.from_url(database_url)
    try:
        first = await store.create_schema()
        assert first.changed and first.after == head_revision()
        statements: list[str] = []
        engine: AsyncEngine = store.engine
        listener = lambda *args: statements.append(args[2])  # noqa: E731 (conn, cursor, statement, ...)
        event.listen(engine.sync_engine, "before_cursor_execute", listener)
        try:
            second = await store.create_schema()
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", listener)
    finally:
        await store.close()
    assert (second.before, second.after, second.changed, second.adopted) == (
        head_revision(),
        head_revision(),
        False,
        False,
    )
    written = [item for item in statements if item.lstrip().split()[0].upper() in ("CREATE", "ALTER", "DROP", "INSERT")]
    assert written == [], "a second start must not change the schema"
    assert await current_revision(database_url) == head_revision()


async def test_data_survive_a_second_migration(store: SqlStore, store_url: str) -> None:
    channel = ApprovalsChannel("https://smba.example/", "19:c", "tenant-1", "adele", datetime.now(UTC))
    await store.save_approvals_channel(channel)
    assert not (await migrate(store_url)).changed
    assert await store.approvals_channel("tenant-1") == channel


async def test_revisions_and_the_command(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert head_revision() == "0008"
    assert await current_revision(database_url) is None
    status = await asyncio.to_thread(migrate_module.main, ["--url", database_url, "--status"])
    assert status == 1 and "at revision (none)" in capsys.readouterr().out
    assert await asyncio.to_thread(migrate_module.main, ["--url", database_url]) == 0
    assert "migrated from (empty) to revision 0008" in capsys.readouterr().out
    assert await asyncio.to_thread(migrate_module.main, ["--url", database_url]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert await asyncio.to_thread(migrate_module.main, ["--url", database_url, "--status"]) == 0
    assert "(up to date)" in capsys.readouterr().out


async def test_downgrade_to_base_removes_everything(database_url: str) -> None:
    await migrate(database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(connection=sync), "base"))
    finally:
        await engine.dispose()
    assert await read(database_url, lambda connection: inspect(connection).get_table_names()) == ["alembic_version"]
    if database_url.startswith("sqlite"):
        assert await read(database_url, triggers_of) == set()
    else:
        functions = await read(
            database_url,
            lambda connection: connection.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname = 'audit_events_append_only'")
            ).scalar(),
        )
        assert functions == 0
    assert await current_revision(database_url) is None
    assert (await migrate(database_url)).after == head_revision(), "and up again"


async def test_a_database_made_before_migrations_is_adopted(database_url: str, second_database_url: str) -> None:
    """What the app's start used to make (create_all), from an older version: some tables, no lease columns."""
    later = ("bulk_rows", "processed_activities", "target_locks", "verified_id_requests")  # verified_id: 0005
    later += ("verifications", "verification_prompts")  # 0004
    later += ("security_channels",)  # 0006
    later += ("pass_watches",)  # 0007
    later += ("sign_in_users", "sign_in_waits")  # 0008
    older = [name for name in Base.metadata.tables if name not in later]
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:

            def old_schema(sync: Connection) -> None:
                Base.metadata.create_all(sync, tables=[Base.metadata.tables[name] for name in older])
                sync.execute(text("ALTER TABLE bulk_jobs DROP COLUMN lease_until"))
                sync.execute(text("ALTER TABLE bulk_jobs DROP COLUMN lease_owner"))
                sync.execute(text("ALTER TABLE approval_requests DROP COLUMN timezone"))  # added by 0002
                sync.execute(text("DROP INDEX ix_audit_events_pass_method_id"))  # added by 0003
                for table, column in (("audit_events", "reason"), ("approval_requests", "request_reason")):
                    sync.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))  # added by 0003
                sync.execute(text("ALTER TABLE bulk_jobs DROP COLUMN reason"))  # added by 0003
                for column in ("verification_id", "evidence_method", "evidence_by_id", "evidence_by", "evidence_at"):
                    sync.execute(text(f"ALTER TABLE audit_events DROP COLUMN {column}"))  # added by 0004
                sync.execute(text("ALTER TABLE audit_events DROP COLUMN evidence_score"))  # added by 0004
                sync.execute(text("ALTER TABLE approval_requests DROP COLUMN verification_id"))  # added by 0004
                sync.execute(
                    Base.metadata.tables["approvals_channels"]
                    .insert()
                    .values(
                        tenant_id="tenant-1",
                        service_url="https://s/",
                        conversation_id="19:c",
                        registered_by="adele",
                        registered_at=datetime(2026, 1, 1, tzinfo=UTC),
                    )
                )

            await connection.run_sync(old_schema)
    finally:
        await engine.dispose()

    result = await migrate(database_url)
    assert result.adopted and result.after == head_revision()
    await migrate(second_database_url)
    assert await read(database_url, schema_of) == await read(second_database_url, schema_of)
    store = SqlStore.from_url(database_url)
    try:
        assert not (await store.create_schema()).changed
        assert await store.approvals_channel("tenant-1") is not None, "the rows it held are kept"
    finally:
        await store.close()
    assert await read(database_url, triggers_of) == await read(second_database_url, triggers_of)


async def test_a_database_of_an_unknown_newer_revision_is_refused(database_url: str) -> None:
    await migrate(database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await engine.dispose()
    with pytest.raises(MigrationError, match="9999, which this version of tapbot does not know"):
        await migrate(database_url)


async def test_replicas_starting_at_once_migrate_once(database_url: str) -> None:
    """Four processes migrating one empty database at once: one migrates, the others wait and find nothing to do."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.adapters.migrate",
            "--url",
            database_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [(await process.communicate())[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs
    assert sorted("nothing to do" in output for output in outputs) == [False, True, True, True], outputs
    assert await current_revision(database_url) == head_revision()


async def test_a_database_made_before_migrations_without_a_required_column_is_refused(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
            await connection.execute(text("ALTER TABLE bulk_jobs DROP COLUMN file_name"))
    finally:
        await engine.dispose()
    with pytest.raises(MigrationError, match=r"lacks the columns bulk_jobs\.file_name"):
        await migrate(database_url)
    assert await current_revision(database_url) is None, "nothing was stamped"


async def test_a_failed_migration_leaves_nothing_behind(database_url: str) -> None:
    """One transaction on both engines: an index name taken by someone else fails the last step, and the tables
    made before it are gone again."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE other (at INTEGER)"))
            await connection.execute(text("CREATE INDEX ix_processed_activities_at ON other (at)"))
    finally:
        await engine.dispose()
    with pytest.raises(Exception, match="ix_processed_activities_at"):
        await migrate(database_url)
    assert await read(database_url, lambda connection: inspect(connection).get_table_names()) == ["other"]


async def test_upgrade_from_0002_keeps_rows_gives_them_no_reason_and_keeps_the_audit_append_only(
    database_url: str,
) -> None:
    """A database in use at 0002 (rows in every table 0003 changes) moves to 0003 in place: the rows stay, their
    reason is '' (none was asked for then), the new reason columns work, and the audit log still refuses UPDATE."""
    engine = create_async_engine(database_url)
    at = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(connection=sync), "0002"))
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO audit_events (at, action, outcome, actor_id, actor_name, pass_method_id, detail) "
                    "VALUES (:at, 'issue', 'succeeded', 'op-1', 'Olga', 'm-old', '')"
                ),
                {"at": at},
            )
            await connection.execute(
                text(
                    "INSERT INTO approval_requests (id, kind, status, requester_id, requester_tenant_id, "
                    "requester_name, requester_channel_account_id, requester_service_url, bot_id, target_id, "
                    "target_label, lifetime_minutes, one_time, reason, created_at, expires_at, decision_note) "
                    "VALUES ('11111111-1111-1111-1111-111111111111', 'long_lifetime', 'pending', 'op-1', 't', "
                    "'Olga', '29:o', 'https://smba.example/', 'bot', 'u-1', 'Megan', 600, false, "
                    "'Lifetime above the limit', :at, :at, '')"
                ),
                {"at": at},
            )
            await connection.execute(
                text(
                    "INSERT INTO bulk_jobs (id, kind, status, requester_id, requester_tenant_id, requester_name, "
                    "requester_channel_account_id, requester_service_url, bot_id, file_name, timezone, created_at, "
                    "replace_existing) VALUES (7, 'issue', 'checked', 'op-1', 't', 'Olga', '29:o', "
                    "'https://smba.example/', 'bot', 'users.csv', 'UTC', :at, false)"
                ),
                {"at": at},
            )
            await connection.execute(
                text(
                    "INSERT INTO bulk_rows (job_id, line, target, state, one_time, reason, attempts) "
                    "VALUES (7, 2, 'megan@contoso.com', 'ready', false, '', 0)"
                )
            )
    finally:
        await engine.dispose()

    result = await migrate(database_url)
    assert (result.before, result.after) == ("0002", head_revision())
    store = SqlStore.from_url(database_url)
    try:
        [entry] = await store.audit_rows()
        assert (entry.pass_method_id, entry.reason) == ("m-old", "")
        assert await store.reason_for_pass("m-old") == ""
        approval = await store.approval("11111111-1111-1111-1111-111111111111")
        assert approval is not None and approval.request_reason == "" and approval.reason == "Lifetime above the limit"
        job = await store.job(7)
        assert job is not None and job.reason == ""
        [row] = await store.rows(7)
        assert (row.target, row.request_reason) == ("megan@contoso.com", "")
    finally:
        await store.close()
    engine = create_async_engine(database_url)
    try:
        with pytest.raises(Exception, match=r"append-only|audit"):
            async with engine.begin() as connection:
                await connection.execute(text("UPDATE audit_events SET reason = 'made up later'"))
    finally:
        await engine.dispose()
    assert await read(database_url, triggers_of) in (
        {"audit_events_no_update", "audit_events_no_delete"},
        {"audit_events_no_change", "audit_events_no_truncate"},
    )
