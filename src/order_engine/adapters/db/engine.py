"""Async engine factory: one place that knows how to talk to SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

# WAL lets readers run alongside the one writer. busy_timeout makes a writer
# from another connection wait for the lock instead of failing at once with
# "database is locked". synchronous=NORMAL is durable across process crashes in
# WAL mode; only an OS crash or power loss can drop the last commits.
# foreign_keys is off by default in SQLite and must be set per connection.
SQLITE_BUSY_TIMEOUT_MS = 10_000
_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)

# Bounded waits everywhere, so that a database outage surfaces as an error the
# API can turn into 503 within seconds, rather than a request hanging for
# asyncpg's default 60 s connect timeout. pre_ping discards connections that a
# server restart killed while they sat in the pool.
_POSTGRES_DEFAULTS: dict[str, Any] = {
    "pool_size": 10,
    "max_overflow": 10,
    "pool_timeout": 10,
    "pool_recycle": 1800,
    "pool_pre_ping": True,
}
_POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    "timeout": 5,
    "command_timeout": 30,
    "server_settings": {"application_name": "order-engine"},
}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def async_url(database_url: str | URL) -> URL:
    """``database_url`` with its async driver, accepting the usual sync spellings."""
    url = make_url(database_url)
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None:
        raise ValueError(
            "expected a sqlite+aiosqlite:// or postgresql+asyncpg:// database URL, "
            f"got {url.drivername}://"
        )
    return url.set(drivername=driver)


def is_memory_sqlite(url: URL) -> bool:
    """Whether every connection to ``url`` would see its own private, empty database."""
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or url.query.get("mode") == "memory"
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: every later statement may have to wait for a lock.
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        try_enable_wal(cursor)
    finally:
        cursor.close()


def try_enable_wal(cursor: Any) -> bool:
    """Switch the database file to WAL (a persistent property of the file); whether it is WAL.

    The switch needs an exclusive lock. A connection that reads the header and
    then finds another holding a write lock gets SQLITE_BUSY at once, without
    the busy handler (SQLite's deadlock avoidance), so on a fresh file that
    several connections open together the switch can fail. That is harmless:
    the file stays in rollback mode until a later connection, or the migration
    (``ensure_wal``), switches it.
    """
    cursor.execute("PRAGMA journal_mode")
    mode = str(cursor.fetchone()[0]).lower()
    if mode in ("wal", "memory"):  # in-memory databases cannot use WAL
        return True
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        return str(cursor.fetchone()[0]).lower() == "wal"
    except Exception as exc:  # the dbapi error class differs per adapter layer
        if "locked" not in str(exc) and "busy" not in str(exc).lower():
            raise
        return False


def create_engine(database_url: str, **kw: Any) -> AsyncEngine:
    """An ``AsyncEngine`` with orjson JSON and per-dialect settings; ``kw`` overrides them."""
    url = async_url(database_url)
    options: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": orjson.loads}
    if url.get_backend_name() == "postgresql":
        options.update(_POSTGRES_DEFAULTS)
        connect_args = {**_POSTGRES_CONNECT_ARGS, **kw.pop("connect_args", {})}
        if "poolclass" in kw:  # NullPool and friends take no sizing options
            for key in ("pool_size", "max_overflow", "pool_timeout"):
                options.pop(key)
        options["connect_args"] = connect_args
    options.update(kw)
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine
