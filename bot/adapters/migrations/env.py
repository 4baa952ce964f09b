"""Alembic's environment for tapbot's schema (``bot/adapters/migrations``).

There is no alembic.ini: ``bot.adapters.migrate`` builds the configuration in code and hands over either an open
connection (``config.attributes["connection"]``: how the app and the tests migrate) or a URL
(``config.attributes["url"]``). Without either, the URL is the app's own ``TAPBOT_DATABASE_URL`` (read through
``bot.settings``). Async URLs (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``) run through an async engine.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection, TypeDecorator, pool
from sqlalchemy.ext.asyncio import create_async_engine

from bot.adapters.store import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    given = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if given:
        return str(given)
    from bot.settings import Settings

    return Settings.from_env(os.environ).database_url


def _render_item(kind: str, value: Any, _context: Any) -> str | Literal[False]:
    """Autogenerate writes the store's own column types (UtcDateTime, ClippedString) as the plain types they
    store, so a migration never imports application code."""
    if kind == "type" and isinstance(value, TypeDecorator):
        return f"sa.{value.impl!r}"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, compare_type=True, render_item=_render_item
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_engine(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():  # `--sql`: print the DDL instead of running it
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _run(given)
else:
    asyncio.run(_run_with_engine(_url()))
