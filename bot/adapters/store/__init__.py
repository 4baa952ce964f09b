"""All state in SQL (SQLAlchemy 2 async), one module per aggregate over one database.

SQLite by default, PostgreSQL when replicas share one database. ``schema.py`` holds the tables (made by the
migrations in ``bot/adapters/migrations``); ``sessions.py`` the engine and its transactions (``sqlite_driver.py``:
SQLite's statements run on the event loop's thread); then one store per aggregate, each the adapter behind a domain
Protocol.
The statements every command runs are built once, at import, and run on a Core connection (``SqlDatabase.connection``):

- ``audit.py``: the audit log (``AuditTrail``), append-only
- ``pass_cards.py``: where each pass was shown, for redaction (``PassCards``)
- ``approvals.py``: approval requests and approvers' channels (``ApprovalStore``)
- ``bulk_journal.py``: bulk jobs, their rows and leases (``BulkStore``)
- ``conversations.py``: personal chats (``PersonalConversations``)
- ``activities.py``: activities already handled (``ProcessedActivities``)
- ``target_locks.py``: one check-and-create per user across replicas (``TargetLocks``)
- ``verifications.py``: verifications of the person before a pass and their prompts (``VerificationStore``)
- ``verified_id.py``: Verified ID presentation requests (``VerifiedIdRequests``)
- ``pass_watches.py``: live passes the bot issued, watched by follow-through (``PassWatchStore``)
- ``alerts.py``: the security channel and the velocity limit's counts (``SecurityChannelStore``, ``IssuedPassCounts``)
- ``sign_ins.py``: actions waiting for a person's sign-in, and their channel account (``SignInWaits``); no token

Nothing here ever holds a pass value: the tables have no column that could.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.database import DatabaseSettings, TokenCredential
from bot.adapters.migrate import MigrationResult
from bot.adapters.store.activities import SqlProcessedActivities
from bot.adapters.store.alerts import SqlSecurityAlerts
from bot.adapters.store.approvals import SqlApprovals
from bot.adapters.store.audit import SqlAuditLog
from bot.adapters.store.bulk_journal import SqlBulkJournal
from bot.adapters.store.conversations import SqlPersonalConversations
from bot.adapters.store.pass_cards import SqlPassCards
from bot.adapters.store.pass_watches import SqlPassWatches
from bot.adapters.store.schema import Base
from bot.adapters.store.sessions import SqlDatabase
from bot.adapters.store.sign_ins import SqlSignIns
from bot.adapters.store.target_locks import SqlTargetLocks
from bot.adapters.store.verifications import SqlVerifications
from bot.adapters.store.verified_id import SqlVerifiedIdRequests

__all__ = [
    "Base",
    "SqlApprovals",
    "SqlAuditLog",
    "SqlBulkJournal",
    "SqlDatabase",
    "SqlPassCards",
    "SqlPassWatches",
    "SqlPersonalConversations",
    "SqlProcessedActivities",
    "SqlSecurityAlerts",
    "SqlSignIns",
    "SqlStore",
    "SqlTargetLocks",
    "SqlVerifications",
    "SqlVerifiedIdRequests",
]


class SqlStore(
    SqlAuditLog,
    SqlPassCards,
    SqlApprovals,
    SqlBulkJournal,
    SqlPersonalConversations,
    SqlProcessedActivities,
    SqlTargetLocks,
    SqlVerifiedIdRequests,
    SqlVerifications,
    SqlSecurityAlerts,
    SqlPassWatches,
    SqlSignIns,
):
    """Every aggregate's store over one database, opened and closed once (the app and the tests use this one).

    Each aggregate keeps only the shared ``SqlDatabase``, so one object serves every domain Protocol above.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._db = SqlDatabase(engine)

    @classmethod
    def from_url(cls, url: str | DatabaseSettings, *, credential: TokenCredential | None = None) -> SqlStore:
        """The store at a URL, or with the full database settings (Entra sign-in, verified TLS: database.py)."""
        return cls(SqlDatabase.from_url(url, credential=credential).engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._db.engine

    def together(self) -> AbstractAsyncContextManager[None]:
        """The domain's Transactions port: the store calls made inside share one transaction (sessions.py)."""
        return self._db.together()

    async def create_schema(self) -> MigrationResult:
        """Migrates the database to this version's schema (bot/adapters/migrations); a no-op when it is there."""
        return await self._db.create_schema()

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._db.ping()
