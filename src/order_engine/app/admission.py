"""Admission: refuse new orders while the queue is deeper than a bound.

Reading the depth costs a Redis round trip in distributed mode, so one
reading serves every request for ``cache_s``; a burst can therefore overshoot
the bound by what arrives in that window, which is the point of a *bound*
rather than an exact limit. A depth that cannot be read admits the order:
the submit path reports a real outage on its own.
"""

from __future__ import annotations

import structlog

from order_engine.ports.clock import Clock
from order_engine.ports.queue import JobQueue

log = structlog.get_logger(__name__)


class Backpressure:
    def __init__(self, queue: JobQueue, *, max_depth: int, cache_s: float, clock: Clock) -> None:
        self.queue = queue
        self.max_depth = max_depth  # 0: no bound
        self.cache_s = cache_s
        self.clock = clock
        self._depth = 0
        self._read_at: float | None = None

    async def overloaded(self) -> int | None:
        """The queue depth when it exceeds the bound, else ``None``."""
        if self.max_depth <= 0:
            return None
        now = self.clock.monotonic()
        if self._read_at is None or now - self._read_at >= self.cache_s:
            try:
                self._depth = await self.queue.depth()
            except Exception as exc:  # noqa: BLE001 - admission must not add an outage
                log.warning("queue_depth_unreadable", error=repr(exc))
                return None
            self._read_at = now
        return self._depth if self._depth > self.max_depth else None
