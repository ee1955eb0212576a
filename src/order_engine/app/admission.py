"""Admission: refuse new orders up front when they could not be served in time.

Two bounds, either of which refuses (503 + Retry-After; nothing is created):

* ``max_depth``: more jobs waiting than this, whatever the engine's speed
  (bounds memory);
* ``max_wait_s``: the jobs already waiting would take longer than this to
  start at the rate the workers have been taking them (bounds latency: an
  order accepted under overload still finishes in about its service time
  plus ``max_wait_s``, instead of queueing behind everything offered). The
  rate is measured from successive depth readings, ``taken = admitted -
  (depth - previous depth)``, only over windows in which jobs were waiting
  throughout (otherwise the workers were idle, not slow); until it is known,
  nothing is refused for latency. A queue that nobody takes from at all (no
  worker is up) is bounded by ``max_depth`` only: its orders are durable and
  run once workers return, which is not an overload.

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
    def __init__(
        self,
        queue: JobQueue,
        *,
        max_depth: int,
        cache_s: float,
        clock: Clock,
        max_wait_s: float = 0.0,
    ) -> None:
        self.queue = queue
        self.max_depth = max_depth  # 0: no bound
        self.max_wait_s = max_wait_s  # 0: no latency bound
        self.cache_s = cache_s
        self.clock = clock
        self._depth = 0
        self._read_at: float | None = None
        self._admitted = 0  # since the last reading
        self.take_rate: float | None = None  # jobs/s the workers have been taking

    async def overloaded(self) -> int | None:
        """The queue depth when a bound refuses a new order, else ``None`` (and the
        order counts as admitted)."""
        if self.max_depth <= 0 and self.max_wait_s <= 0:
            return None
        now = self.clock.monotonic()
        if self._read_at is None or now - self._read_at >= self.cache_s:
            try:
                depth = await self.queue.depth()
            except Exception as exc:  # noqa: BLE001 - admission must not add an outage
                log.warning("queue_depth_unreadable", error=repr(exc))
                return None
            self._measure(now, depth)
        if self._refuses(self._depth):
            return self._depth
        self._admitted += 1
        return None

    def _measure(self, now: float, depth: int) -> None:
        if self._read_at is not None and self._depth > 0 and depth > 0:
            elapsed = now - self._read_at
            if elapsed > 0:
                taken = max(0, self._admitted - (depth - self._depth)) / elapsed
                self.take_rate = (
                    taken if self.take_rate is None else 0.7 * self.take_rate + 0.3 * taken
                )
        self._depth, self._read_at, self._admitted = depth, now, 0

    def _refuses(self, depth: int) -> bool:
        if 0 < self.max_depth < depth:
            return True
        if self.max_wait_s <= 0 or not self.take_rate or depth == 0:
            return False  # unknown, or nobody takes jobs at all (workers down): depth bound only
        return depth > self.take_rate * self.max_wait_s
