"""In-process WebSocket tickets: the embedded-mode ``TicketStore``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from order_engine.ports.tickets import TicketStore

MAX_TICKETS = 100_000  # outstanding at once; each lives seconds


class InMemoryTicketStore:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tickets: dict[str, tuple[float, str]] = {}  # digest -> (expires, holder)

    async def put(self, digest: str, holder: str, ttl_s: float) -> None:
        now = self._clock()
        if len(self._tickets) >= MAX_TICKETS:
            self._tickets = {d: t for d, t in self._tickets.items() if t[0] > now}
            if len(self._tickets) >= MAX_TICKETS:
                raise OverflowError(f"expected fewer than {MAX_TICKETS} live tickets")
        self._tickets[digest] = (now + ttl_s, holder)

    async def take(self, digest: str) -> str | None:
        found = self._tickets.pop(digest, None)
        if found is None or found[0] <= self._clock():
            return None
        return found[1]

    async def close(self) -> None:
        self._tickets.clear()


if TYPE_CHECKING:
    _conforms: type[TicketStore] = InMemoryTicketStore
