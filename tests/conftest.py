"""Shared fixtures: real PostgreSQL and Redis when reachable.

Locally, tests that need a service skip with one line saying how to enable
them. Under ``CI=true`` a missing service is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
import redis

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unavailable(service: str, url: str, error: BaseException) -> None:
    message = (
        f"{service} not reachable at {url} ({type(error).__name__}: {error}); "
        f"start it (see DEVELOPERS.md) or point TEST_{service.upper()}_URL at one"
    )
    if CI:
        pytest.fail(f"CI=true requires {service}: {message}", pytrace=False)
    pytest.skip(message)


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session (async URL)."""
    name = f"order_engine_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable("postgresql", PG_ADMIN_URL, exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis; tests isolate themselves by key prefix, not by flushing."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (OSError, redis.RedisError) as exc:
        _unavailable("redis", REDIS_URL, exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def unique_prefix() -> str:
    return f"oe-test-{uuid.uuid4().hex[:10]}"
