"""Fresh, empty databases on demand, once per dialect (SQLite files and PostgreSQL databases).

Migration tests need databases of their own: the session's ``pg_database_url``
is shared with other suites and may already be migrated.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

NewDatabase = Callable[[], Coroutine[Any, Any, str]]


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pg_server(dialect: str, request: pytest.FixtureRequest) -> URL | None:
    """The session's PostgreSQL server, resolved outside the event loop (its fixture is sync)."""
    if dialect != "postgresql":
        return None
    return make_url(request.getfixturevalue("pg_database_url"))


@pytest.fixture
async def new_database(
    dialect: str, pg_server: URL | None, tmp_path: Path
) -> AsyncIterator[NewDatabase]:
    """A factory of empty databases of the parametrised dialect, dropped afterwards."""
    counter = itertools.count()
    created: list[str] = []

    async def admin(sql: str) -> None:
        assert pg_server is not None
        dsn = pg_server.set(drivername="postgresql", database="postgres")
        conn = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def make() -> str:
        if pg_server is None:
            return f"sqlite+aiosqlite:///{tmp_path / f'db{next(counter)}.sqlite'}"
        name = f"{pg_server.database}_{uuid.uuid4().hex[:8]}"
        await admin(f'CREATE DATABASE "{name}"')
        created.append(name)
        return pg_server.set(database=name).render_as_string(hide_password=False)

    yield make
    for name in created:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
