"""The Redis client's pool: a burst beyond its size waits for a connection instead of failing."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from order_engine.adapters.redis import client as redis_pool
from order_engine.adapters.redis.client import redis_client


async def test_a_burst_larger_than_the_pool_queues_for_connections_and_all_succeed(
    redis_url: str,
) -> None:
    redis = redis_client(redis_url, max_connections=2)
    key = f"test:pool:{uuid4().hex}"
    try:
        # Each BLPOP holds its connection for 50 ms: 12 of them need 6 rounds of 2.
        results = await asyncio.gather(*(redis.blpop([key], timeout=0.05) for _ in range(12)))
        assert results == [None] * 12
        assert redis.connection_pool.max_connections == 2
    finally:
        await redis.delete(key)
        await redis.aclose()


async def test_a_caller_that_waits_past_the_pool_timeout_gets_a_connection_error(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_pool, "POOL_WAIT_S", 0.1)
    redis = redis_client(redis_url, max_connections=1)
    key = f"test:pool:{uuid4().hex}"
    try:

        async def hold() -> object:
            return await redis.blpop([key], timeout=1)

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0.05)
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await redis.ping()
        await holder
    finally:
        await redis.aclose()


def test_a_pool_needs_at_least_one_connection() -> None:
    with pytest.raises(ValueError, match="expected max_connections >= 1, got 0"):
        redis_client("redis://127.0.0.1:6379/0", max_connections=0)
