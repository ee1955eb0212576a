"""WebSocket tickets in Redis: issued at one API node, redeemed at any.

``SET ... PX`` with the ticket's lifetime, and ``GETDEL`` to redeem, which
reads and forgets in one atomic step: of two nodes redeeming one ticket at
once, one gets it. Expiry is Redis's, so the nodes' clocks do not matter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.asyncio import Redis

from order_engine.adapters.redis.client import DEFAULT_MAX_CONNECTIONS, redis_client

if TYPE_CHECKING:
    from order_engine.ports.tickets import TicketStore


class RedisTicketStore:
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self.prefix = prefix

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str, max_connections: int = DEFAULT_MAX_CONNECTIONS
    ) -> RedisTicketStore:
        client = redis_client(
            url, max_connections=max_connections, socket_timeout=2, socket_connect_timeout=2
        )
        return cls(client, prefix=prefix)

    def _key(self, digest: str) -> str:
        return f"{self.prefix}:ws-ticket:{digest}"

    async def put(self, digest: str, holder: str, ttl_s: float) -> None:
        await self._redis.set(self._key(digest), holder, px=max(1, round(ttl_s * 1000)))

    async def take(self, digest: str) -> str | None:
        found = await self._redis.getdel(self._key(digest))
        if found is None:
            return None
        return found.decode() if isinstance(found, bytes) else str(found)

    async def close(self) -> None:
        await self._redis.aclose()


if TYPE_CHECKING:
    _conforms: type[TicketStore] = RedisTicketStore
