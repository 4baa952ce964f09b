"""A real PostgreSQL server for the tests, in a temporary directory, on a free loopback port.

    async with postgres_server() as server:         # or the session fixture `postgres`
        url = await server.create_database("t1")     # postgresql+asyncpg://tapbot@127.0.0.1:PORT/t1

How it starts: ``initdb -D DIR/data -U tapbot --auth=trust`` (UTF-8, C locale, no fsync), then
``pg_ctl start -w -o "-p PORT -k DIR -c listen_addresses=127.0.0.1 ..."``; ``pg_ctl stop -m fast`` and the directory
is removed at the end. The binaries are looked up on PATH, in ``/usr/lib/postgresql/<version>/bin`` (Debian's
``postgresql`` package, which puts none of them on PATH) and ``/usr/local/bin``; ``bash tools/install-postgres.sh``
installs them. PostgreSQL refuses to run as root, so under root ``initdb`` and ``pg_ctl`` run as the unprivileged
user ``nobody`` (its own group, no supplementary groups), and the temporary directory, made directly in the system's
temp dir (``/tmp``, which ``nobody`` can traverse), is given to that user. As any other user they run as that user.
Authentication is ``trust`` on loopback and a socket in that private directory: a throwaway server for tests only.

The pytest side: ``postgres`` is one server per test session; ``postgres_url`` is a fresh database for each test,
copied from a template already migrated to this version's schema (``CREATE DATABASE … TEMPLATE``, much faster than
migrating each time); ``empty_postgres_url`` is a fresh database without any table. Without the binaries the tests
that need them are skipped, with the reason, on a developer machine; with ``CI`` set they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from bot.adapters.migrate import migrate

SUPERUSER = "tapbot"
MAIN_DATABASE = "tapbot"
MIGRATED_TEMPLATE = "tapbot_migrated"
UNPRIVILEGED_USER = "nobody"
SERVER_TIMEZONE = "Europe/Berlin"  # not UTC, so the tests see that stored times come back in UTC anyway
INSTALL_HINT = "run `bash tools/install-postgres.sh` (as root: apt-get install postgresql)"
_SEARCHED = ("PATH", "/usr/lib/postgresql/*/bin", "/usr/local/bin", "/usr/local/pgsql/bin")
_T = TypeVar("_T")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_postgres_bin() -> Path | None:
    """The directory holding both ``initdb`` and ``pg_ctl``, newest Debian version first; None when none does."""
    candidates: list[Path] = []
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)
        candidates.append(Path(found).parent)
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.name)] or [0],
        reverse=True,
    )
    candidates += [*debian, Path("/usr/local/bin"), Path("/usr/local/pgsql/bin")]
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            return directory
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_postgres_bin() -> Path:
    """The binaries' directory; skips the test without them, or fails it when ``CI`` is set."""
    found = find_postgres_bin()
    if found is not None:
        return found
    reason = f"no PostgreSQL server binaries (initdb, pg_ctl) in {', '.join(_SEARCHED)}: {INSTALL_HINT}"
    if in_ci():
        pytest.fail(f"PostgreSQL tests cannot run: {reason} (CI is set: a missing PostgreSQL fails, never skips)")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int
    run_as: str | None
    version: int = 0
    _counter: Iterator[int] = field(default_factory=lambda: iter(range(1, 1_000_000)))

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = MAIN_DATABASE) -> str:
        """The SQLAlchemy async URL of ``database``."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = MAIN_DATABASE) -> str:
        """The plain libpq/asyncpg DSN of ``database``."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def next_name(self, prefix: str = "test") -> str:
        return f"{prefix}_{next(self._counter)}"

    async def create_database(self, name: str, template: str = "template0") -> str:
        """Creates ``name`` as a copy of ``template`` (which nobody may be connected to); returns its URL."""
        connection = await asyncpg.connect(self.dsn("postgres"))
        try:
            await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await connection.close()
        return self.url(name)

    async def drop_database(self, name: str) -> None:
        connection = await asyncpg.connect(self.dsn("postgres"))
        try:
            force = " WITH (FORCE)" if self.version >= 13 else ""  # ends connections a test left open
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
        finally:
            await connection.close()

    def stop(self) -> None:
        try:
            if (self.data_dir / "postmaster.pid").exists():
                _run(self, "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(bin_dir: Path | None = None, *, attempts: int = 3) -> PostgresServer:
    """initdb and start a server in a new temporary directory (blocking; a few seconds)."""
    bin_dir = bin_dir or find_postgres_bin()
    if bin_dir is None:
        raise PostgresUnavailable(f"no PostgreSQL server binaries (initdb, pg_ctl): {INSTALL_HINT}")
    run_as = UNPRIVILEGED_USER if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="tapbot-pg-", dir=tempfile.gettempdir()))
    server = PostgresServer(bin_dir, root, port=0, run_as=run_as)
    try:
        if run_as is not None:
            try:
                account = pwd.getpwnam(run_as)
            except KeyError:
                raise RuntimeError(
                    f"PostgreSQL refuses to run as root and this machine has no user {run_as!r} to run it as"
                ) from None
            os.chown(root, account.pw_uid, account.pw_gid)
        _run(
            server,
            "initdb",
            "-D",
            str(server.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        version_file = server.data_dir / "PG_VERSION"
        server.version = int(version_file.read_text().strip().split(".")[0])
        for attempt in range(1, attempts + 1):
            server.port = _free_port()
            options = " ".join(
                [
                    f"-p {server.port}",
                    f"-k {root}",
                    "-c listen_addresses=127.0.0.1",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    f"-c timezone={SERVER_TIMEZONE}",
                    "-c max_connections=200",
                ]
            )
            started = _run(
                server,
                "pg_ctl",
                "start",
                "-D",
                str(server.data_dir),
                "-l",
                str(server.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                check=False,
            )
            if started.returncode == 0:
                break
            if attempt == attempts:
                raise RuntimeError(f"pg_ctl start failed:\n{started.stdout}\n{_tail(server.log_file)}")
            time.sleep(0.2)  # the port was taken in between: try another
        _run_coroutine(_create_main_database(server))
        return server
    except BaseException:
        server.stop()
        raise


async def _create_main_database(server: PostgresServer) -> None:
    await server.create_database(MAIN_DATABASE)
    await server.create_database(MIGRATED_TEMPLATE)
    await migrate(server.url(MIGRATED_TEMPLATE))


@contextlib.asynccontextmanager
async def postgres_server(bin_dir: Path | None = None) -> AsyncIterator[PostgresServer]:
    """A server for the body of the ``async with``: started in a thread, stopped and removed at the end."""
    server = await asyncio.to_thread(start_postgres, bin_dir)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


def _run(server: PostgresServer, tool: str, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    user: dict[str, Any] = {}
    if server.run_as is not None:
        account = pwd.getpwnam(server.run_as)
        user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    completed = subprocess.run(
        [str(server.bin_dir / tool), *arguments],
        cwd=server.root,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(server.root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **user,
    )
    if check and completed.returncode != 0:
        raise RuntimeError(
            f"{tool} {' '.join(arguments)} failed ({completed.returncode}):\n{completed.stdout}{completed.stderr}"
        )
    completed.stdout = (completed.stdout or "") + (completed.stderr or "")
    return completed


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _run_coroutine(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Runs a coroutine to the end from synchronous code, even when the calling thread runs an event loop."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, name="postgres-setup")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# --- pytest fixtures (imported by the conftest.py of the packages that use them) --------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session (skipped without PostgreSQL; failed under CI)."""
    bin_dir = require_postgres_bin()
    server = start_postgres(bin_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def postgres_url(postgres: PostgresServer) -> AsyncIterator[str]:
    """A fresh database for this test, already at this version's schema."""
    name = postgres.next_name()
    url = await postgres.create_database(name, template=MIGRATED_TEMPLATE)
    try:
        yield url
    finally:
        await postgres.drop_database(name)


@pytest.fixture
async def empty_postgres_url(postgres: PostgresServer) -> AsyncIterator[str]:
    """A fresh database for this test, without any table."""
    name = postgres.next_name("empty")
    url = await postgres.create_database(name)
    try:
        yield url
    finally:
        await postgres.drop_database(name)
