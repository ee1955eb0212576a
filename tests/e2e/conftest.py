"""Backends for the end-to-end tests of the API: embedded (SQLite, in-process queue,
bus and rate limiter) and distributed (a fresh PostgreSQL database, SAQ on Redis,
the Redis bus and the Redis rate limiter), both with the in-process simulator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from order_engine.settings import Settings
from tests.support.harness import engine_settings


@pytest.fixture
def pg_server(request: pytest.FixtureRequest) -> URL:
    """The session's PostgreSQL server, resolved outside the event loop."""
    return make_url(request.getfixturevalue("pg_database_url"))


async def _admin(server: URL, sql: str) -> None:
    dsn = server.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def fresh_pg_url(pg_server: URL) -> AsyncIterator[str]:
    name = f"{pg_server.database}_{uuid.uuid4().hex[:8]}"
    await _admin(pg_server, f'CREATE DATABASE "{name}"')
    yield pg_server.set(database=name).render_as_string(hide_password=False)
    await _admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=[
        pytest.param("embedded", id="embedded"),
        pytest.param(
            "distributed", id="distributed", marks=[pytest.mark.postgres, pytest.mark.redis]
        ),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_overrides(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if backend == "embedded":
        return {}
    prefix = f"oe-test-{uuid.uuid4().hex[:10]}"
    return {
        "database_url": request.getfixturevalue("fresh_pg_url"),
        "redis_url": request.getfixturevalue("redis_url"),
        "queue_name": prefix,
        "bus_prefix": prefix,
    }


@pytest.fixture
def api_settings(tmp_path: Path, backend_overrides: dict[str, Any]) -> Settings:
    """Keys take effect at once (no lookup cache); everything else as the harness has it."""
    return engine_settings(tmp_path, auth_cache_s=0.0, **backend_overrides)
