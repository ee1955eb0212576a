"""Alembic, driven from code: ``upgrade head`` with no alembic.ini on disk.

Several processes may migrate at once (every ``serve`` migrates on start), so a
migration runs in one transaction under a database-wide lock: a PostgreSQL
advisory lock, or SQLite's write lock taken up front with BEGIN IMMEDIATE. The
second migrator waits, then finds the schema at head and does nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from order_engine.adapters.db.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    async_url,
    create_engine,
    is_memory_sqlite,
    try_enable_wal,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any constant works; it only has to be the same in every process migrating
# this database. (ASCII "oe-migr".)
_PG_MIGRATION_LOCK = 0x6F652D6D696772


class ForeignKeyViolation(RuntimeError):
    """A SQLite migration left rows whose foreign keys point nowhere."""


def alembic_config(database_url: str | None = None) -> Config:
    """Alembic's config for the packaged migrations (also usable with ``alembic.command``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    # Passed as an attribute, not as ``sqlalchemy.url``: the ini parser would
    # treat a URL-encoded password's '%' as interpolation.
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


@asynccontextmanager
async def migration_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection holding the migration lock inside one transaction, committed on exit.

    Alembic's ``context`` and ``op`` are process-global, so two migrations must
    never interleave even within one process: this lock is also what prevents it.
    """
    async with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite ignores this pragma inside a transaction, and a table
            # rebuild in batch mode must not trip (or cascade) foreign keys
            # halfway; the whole database is checked before committing instead.
            await ensure_wal(conn)
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        try:
            yield conn
            if sqlite:
                violations = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if violations:
                    raise ForeignKeyViolation(
                        f"expected no dangling foreign keys after migrating, found {violations[:5]}"
                    )
        except BaseException:
            await conn.rollback()
            if sqlite:
                # Best effort: the migration's own error is the one to report,
                # and a broken connection is discarded by the pool anyway.
                with suppress(Exception):
                    await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            raise
        await conn.commit()
        if sqlite:  # the connection goes back to the caller's pool
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")


async def ensure_wal(conn: AsyncConnection) -> None:
    """Put a SQLite file in WAL mode, waiting out connections that hold a lock.

    Connecting only tries once (see ``try_enable_wal``); the migration, which
    runs before a process serves anything, is where WAL is made certain.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while not await conn.run_sync(_try_enable_wal):
        if loop.time() >= deadline:
            raise TimeoutError(
                f"expected the SQLite file to switch to WAL within {SQLITE_BUSY_TIMEOUT_MS} ms, "
                "but another connection kept a write lock all that time"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
    await conn.commit()  # close the implicit read transaction before BEGIN IMMEDIATE


def _try_enable_wal(connection: Connection) -> bool:
    cursor = connection.connection.cursor()
    try:
        return try_enable_wal(cursor)
    finally:
        cursor.close()


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def run_migrations_async(database: str | AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database to ``revision``; safe to call from inside a running loop.

    ``database`` is a URL, or an engine to migrate through: the only way to
    migrate an in-memory SQLite database, which exists only on its engine's
    single connection.
    """
    if isinstance(database, AsyncEngine):
        engine, owned = database, False
    elif is_memory_sqlite(async_url(database)):
        raise ValueError(
            "an in-memory SQLite URL would migrate a database that vanishes at once; "
            "pass the AsyncEngine that will use it instead"
        )
    else:
        # NullPool: the connection goes away with the migration, not into a pool.
        engine, owned = create_engine(database, poolclass=NullPool), True
    try:
        async with migration_connection(engine) as conn:
            await conn.run_sync(_upgrade, alembic_config(), revision)
    finally:
        if owned:
            await engine.dispose()


def run_migrations(database_url: str, revision: str = "head") -> None:
    """Upgrade ``database_url`` to ``revision`` (Alembic ``upgrade head``), blocking.

    For callers outside an event loop, such as the ``migrate`` command; inside
    one, await ``run_migrations_async`` instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_migrations_async(database_url, revision))
        return
    raise RuntimeError(
        "run_migrations() blocks and cannot run inside an event loop; "
        "await run_migrations_async() instead"
    )
