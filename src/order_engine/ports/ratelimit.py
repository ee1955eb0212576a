"""Rate limiter port: one token bucket per key (an API key's id).

``acquire`` takes one token and answers ``0`` when the request may go ahead,
or how many seconds until a token will be available. In-process when
embedded; shared by every API node through Redis when distributed.
"""

from __future__ import annotations

from typing import Protocol


class RateLimiter(Protocol):
    async def acquire(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when allowed, else seconds to wait."""
        ...

    async def close(self) -> None: ...
