"""In-process token buckets: the embedded-mode ``RateLimiter``.

Each key's bucket holds up to ``burst`` tokens and refills at ``rate`` per
second; a request takes one. Buckets of keys idle long enough to be full
again are dropped, so memory follows the number of active keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from order_engine.ports.ratelimit import RateLimiter

_SWEEP_EVERY = 1024  # acquisitions between sweeps of idle buckets


class InMemoryRateLimiter:
    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"expected rate > 0 and burst >= 1, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._calls = 0

    async def acquire(self, key: str) -> float:
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._sweep(now)
        return wait

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        for key in [k for k, (_, at) in self._buckets.items() if now - at > full_after]:
            del self._buckets[key]

    async def close(self) -> None:
        self._buckets.clear()


if TYPE_CHECKING:
    _conforms: type[RateLimiter] = InMemoryRateLimiter
