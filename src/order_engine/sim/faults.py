"""RPC faults and latencies, decided per call from settable rates.

Rates live in a mutable ``FaultConfig`` so tests (and the CLI) can change them
while the simulator runs. Every fault raises a ``TransientError`` subclass, so
the engine's retry policy, not the simulator, decides what happens next.

* ``transient_failure_rate``: any RPC call (and every venue read) fails with
  ``RpcUnavailable`` (HTTP 503 / connection reset).
* ``rate_limit_rate``: an account read (what quotes are made of) fails with
  ``RateLimited`` (HTTP 429).
* ``send_timeout_rate``: ``sendTransaction`` times out with ``SendTimeout``; a
  share ``ambiguous_share`` of those did reach the leader and may land.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from order_engine.domain.errors import ErrorCode, TransientError
from order_engine.ports.chain import RateLimited

SEND_TIMEOUT_S = 1.5  # how long a timed-out send hangs before failing, x time_scale


class RpcUnavailable(TransientError):
    default_code = ErrorCode.RPC_UNAVAILABLE


@dataclass
class FaultConfig:
    transient_failure_rate: float = 0.02
    rate_limit_rate: float = 0.01
    send_timeout_rate: float = 0.01
    ambiguous_share: float = 0.5

    def disable(self) -> None:
        """No faults at all (tests that exercise something else)."""
        self.transient_failure_rate = 0.0
        self.rate_limit_rate = 0.0
        self.send_timeout_rate = 0.0


class Faults:
    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self.injected: dict[str, int] = {}

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def check(self, method: str, *, account_read: bool = False) -> None:
        if self._rng.random() < self.config.transient_failure_rate:
            self._count("unavailable")
            raise RpcUnavailable(f"{method}: RPC node unavailable (simulated 503)")
        if account_read and self._rng.random() < self.config.rate_limit_rate:
            self._count("rate_limited")
            raise RateLimited(f"{method}: 429 Too Many Requests (simulated rate limit)")

    def send_times_out(self) -> tuple[bool, bool]:
        """(timed out, reached the leader anyway)."""
        if self._rng.random() >= self.config.send_timeout_rate:
            return False, False
        landed = self._rng.random() < self.config.ambiguous_share
        self._count("send_timeout_landed" if landed else "send_timeout_lost")
        return True, landed


class Latency:
    """Simulated waits, scaled by ``time_scale``.

    At scale 0 nothing waits. Whether a call still yields to the event loop
    once depends on what makes the clock: where status polls drive it (no slot
    driver, ``yield_at_zero``), a client polling in a loop must let the others
    run between polls, or it alone would push the slots along and expire their
    blockhashes. With a slot driver (the engine's default) a call returns as an
    in-process function call does: under load each yield cost a whole turn of a
    busy event loop, about as long as an order's own CPU, six or seven times
    per order (docs/performance.md, part three).
    """

    def __init__(self, time_scale: float, rng: random.Random, *, yield_at_zero: bool) -> None:
        self.time_scale = time_scale
        self._rng = rng
        self._yield_at_zero = yield_at_zero

    async def _sleep(self, seconds: float) -> None:
        if self.time_scale > 0:
            await asyncio.sleep(seconds * self.time_scale)
        elif self._yield_at_zero:
            await asyncio.sleep(0)

    async def rpc(self) -> None:
        await self._sleep(self._rng.uniform(0.005, 0.040))

    async def quote(self) -> None:
        """A venue client's own work before it reads pool state: tens to hundreds of ms."""
        await self._sleep(self._rng.uniform(0.030, 0.250))

    async def send_timeout(self) -> None:
        await self._sleep(SEND_TIMEOUT_S)
