"""The RateLimiter port's contract (token bucket per key), in process and on Redis;
and the Redis limiter's bucket shared by every API node."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from order_engine.adapters.memory.ratelimit import InMemoryRateLimiter
from order_engine.adapters.redis.ratelimit import RedisRateLimiter
from order_engine.ports.ratelimit import RateLimiter

RATE, BURST = 20.0, 3  # a token every 50 ms


class RateLimiterContract:
    @pytest.fixture
    def limiter(self) -> RateLimiter:
        raise NotImplementedError("a subclass provides a limiter of RATE and BURST")

    async def test_a_burst_is_allowed_and_the_next_request_is_told_how_long_to_wait(
        self, limiter: RateLimiter
    ) -> None:
        waits = [await limiter.acquire("alice") for _ in range(BURST)]
        assert waits == [0.0] * BURST
        wait = await limiter.acquire("alice")
        assert 0 < wait <= 1 / RATE + 0.01

    async def test_tokens_come_back_at_the_configured_rate(self, limiter: RateLimiter) -> None:
        for _ in range(BURST):
            await limiter.acquire("alice")
        await asyncio.sleep(1 / RATE * 1.5)
        assert await limiter.acquire("alice") == 0.0
        assert await limiter.acquire("alice") > 0

    async def test_the_bucket_never_holds_more_than_the_burst(self, limiter: RateLimiter) -> None:
        await asyncio.sleep(BURST / RATE * 3)  # long idle: still at most BURST tokens
        allowed = [await limiter.acquire("alice") == 0.0 for _ in range(BURST + 2)]
        assert allowed == [True] * BURST + [False, False]

    async def test_each_key_has_its_own_bucket(self, limiter: RateLimiter) -> None:
        for _ in range(BURST):
            await limiter.acquire("alice")
        assert await limiter.acquire("alice") > 0
        assert await limiter.acquire("bob") == 0.0


class TestInMemoryRateLimiter(RateLimiterContract):
    @pytest.fixture
    async def limiter(self) -> AsyncIterator[RateLimiter]:
        limiter = InMemoryRateLimiter(RATE, BURST)
        yield limiter
        await limiter.close()

    async def test_it_refuses_a_rate_or_burst_that_admits_nothing(self) -> None:
        with pytest.raises(ValueError, match="rate"):
            InMemoryRateLimiter(0, 1)
        with pytest.raises(ValueError, match="burst"):
            InMemoryRateLimiter(1, 0)


@pytest.mark.redis
class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture
    def prefix(self) -> str:
        return f"oe-test-{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    async def limiter(self, redis_url: str, prefix: str) -> AsyncIterator[RateLimiter]:
        limiter = RedisRateLimiter.from_url(redis_url, RATE, BURST, prefix=prefix)
        yield limiter
        await limiter.close()

    async def test_api_nodes_share_one_bucket_per_key(self, redis_url: str, prefix: str) -> None:
        nodes = [RedisRateLimiter.from_url(redis_url, RATE, BURST, prefix=prefix) for _ in range(3)]
        try:
            waits = await asyncio.gather(*(nodes[i % 3].acquire("alice") for i in range(BURST + 3)))
        finally:
            for node in nodes:
                await node.close()
        assert sorted(w == 0.0 for w in waits) == [False] * 3 + [True] * BURST

    async def test_an_unreachable_redis_lets_requests_through(self) -> None:
        limiter = RedisRateLimiter.from_url("redis://127.0.0.1:1/0", RATE, BURST, prefix="x")
        try:
            assert [await limiter.acquire("alice") for _ in range(BURST + 2)] == [0.0] * (BURST + 2)
        finally:
            await limiter.close()
