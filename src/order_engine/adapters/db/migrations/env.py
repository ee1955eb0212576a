"""Alembic environment for both dialects.

``run_migrations_async`` hands in a connection that already holds the migration
lock and a transaction. The ``alembic`` CLI (``-c .../migrations/alembic.ini``,
for writing new revisions) gets the URL from the settings and takes the same lock.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from order_engine.adapters.db.engine import async_url, create_engine
from order_engine.adapters.db.migrate import migration_connection
from order_engine.adapters.db.schema import metadata

config = context.config
# The CLI's log output; the engine configures its own logging, and a caller
# embedding the CLI config (a test) can opt out, as Alembic's cookbook does.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if url:
        return str(url)
    from order_engine.settings import Settings  # noqa: PLC0415 - only the CLI path needs it

    return Settings().database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with migration_connection(engine) as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline(url: str) -> None:
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=async_url(url).get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if context.is_offline_mode():
    _run_offline(_database_url())
elif given is not None:
    _run(given)
else:
    asyncio.run(_run_online(_database_url()))
