"""WebSocket ticket port: short-lived, single-use stand-ins for an API key.

A browser cannot set headers on a WebSocket, and a long-lived key in a URL
ends up in proxies' and servers' logs. A ticket is issued over HTTP (with the
key in a header) and put in the socket's URL instead: it is worth one
connection within a few seconds, so a logged one is worthless. The store
holds a ticket's sha256, never the ticket, with what it stands for.

In-process when embedded (one process serves every socket); in Redis when
distributed, so a ticket issued by one API node is redeemed at another.
"""

from __future__ import annotations

from typing import Protocol


class TicketStore(Protocol):
    async def put(self, digest: str, holder: str, ttl_s: float) -> None:
        """Remember ``digest`` as standing for ``holder`` for ``ttl_s`` seconds."""
        ...

    async def take(self, digest: str) -> str | None:
        """The holder of ``digest``, forgotten in the same step (single use);
        ``None`` when unknown, expired or already taken."""
        ...

    async def close(self) -> None: ...
