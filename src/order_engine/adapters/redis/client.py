"""One way to open a Redis client: a bounded pool whose callers wait for a connection.

redis-py 8's default pool caps at 100 connections and raises
``MaxConnectionsError`` on the 101st caller at once; an API node enqueuing a
burst of orders hit exactly that. A blocking pool makes the burst queue for a
connection instead, for at most ``POOL_WAIT_S``, after which the caller gets a
``ConnectionError`` (which the API answers with 503, like any Redis outage).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

POOL_WAIT_S = 5.0
DEFAULT_MAX_CONNECTIONS = 256


def redis_client(
    url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS, **connection_kwargs: Any
) -> Redis:
    """A client on its own pool; ``aclose()`` on the client closes the pool too."""
    if max_connections < 1:
        raise ValueError(f"expected max_connections >= 1, got {max_connections}")
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_S, **connection_kwargs
    )
    return Redis.from_pool(pool)
