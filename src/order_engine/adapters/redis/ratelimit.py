"""Token buckets shared by every API node: the distributed ``RateLimiter``.

One Lua script per request, so the read-refill-take-write of a bucket is
atomic in Redis whichever node asks. Time comes from Redis (``TIME``), not
from the nodes, so their clocks need not agree. A bucket is a hash
``{tokens, ms}`` that expires once it would be full again anyway.

If Redis cannot be reached the request is let through (and logged): a
limiter outage should not become an API outage; the order path reports a real
Redis outage on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from order_engine.adapters.redis.client import DEFAULT_MAX_CONNECTIONS, redis_client

if TYPE_CHECKING:
    from order_engine.ports.ratelimit import RateLimiter

log = structlog.get_logger(__name__)

# KEYS[1]: the bucket. ARGV: rate (tokens/s), burst, cost. Returns the wait in
# seconds as a string ("0" when allowed); Lua numbers would be truncated to
# integers on the way out. Milliseconds keep every number within the 14
# significant digits that Lua's tostring preserves.
BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ms', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    def __init__(self, redis: Redis, rate: float, burst: int, *, prefix: str) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"expected rate > 0 and burst >= 1, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._redis = redis
        self._script: Any = redis.register_script(BUCKET_SCRIPT)

    @classmethod
    def from_url(
        cls,
        url: str,
        rate: float,
        burst: int,
        *,
        prefix: str,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> RedisRateLimiter:
        client = redis_client(
            url, max_connections=max_connections, socket_timeout=2, socket_connect_timeout=2
        )
        return cls(client, rate, burst, prefix=prefix)

    async def acquire(self, key: str) -> float:
        try:
            wait = await self._script(
                keys=[f"{self.prefix}:ratelimit:{key}"], args=[self.rate, self.burst, 1]
            )
        except (RedisError, OSError) as exc:
            log.warning("rate_limiter_unavailable_admitting", error=repr(exc))
            return 0.0
        return float(wait)

    async def close(self) -> None:
        await self._redis.aclose()


if TYPE_CHECKING:
    _conforms: type[RateLimiter] = RedisRateLimiter
