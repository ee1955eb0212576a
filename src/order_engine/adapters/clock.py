"""Clock adapters: the host's clock, and a clock that keeps the shared database's time.

Leases are compared across hosts: a worker writes ``now + LEASE_S`` and any
other worker compares its own ``now`` with that. With each host's own wall
clock, a host ahead by more than a lease takes live leases at once (two
workers on one order), and a host ahead that dies holds its leases for as
long as it was ahead. ``ReferenceClock`` answers ``now`` in the time of one
reference all workers share (the PostgreSQL server's clock), advanced by the
host's monotonic clock between synchronisations, so every worker's leases
are on one time line whatever the hosts' clocks say.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog

from order_engine.ports.clock import Clock

log = structlog.get_logger(__name__)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ReferenceClock:
    """``now`` in a reference's time (e.g. the database server's), between
    readings advanced by the monotonic clock, so a wall-clock jump on this
    host moves nothing either.

    Until the first successful ``sync`` it is ``local``'s time. A failed
    ``sync`` keeps the last reading: the monotonic clock drifts by parts per
    million, far less than a lease over any outage.
    """

    def __init__(
        self,
        reference: Callable[[], Awaitable[datetime]],
        *,
        local: Clock | None = None,
        resync_s: float = 60.0,
    ) -> None:
        self._reference = reference
        self._local = local or SystemClock()
        self.resync_s = resync_s
        self._anchor_time = self._local.now()
        self._anchor_mono = time.monotonic()
        self.offset = timedelta(0)  # reference minus this host's wall clock, last measured
        self.synced = False  # whether any reading succeeded yet

    async def sync(self) -> bool:
        """Read the reference once; the reading is taken as of the round trip's middle."""
        before = time.monotonic()
        try:
            reference = await self._reference()
        except Exception as exc:  # noqa: BLE001 - keep the last reading; retried next round
            log.warning("clock_sync_failed", error=repr(exc))
            return False
        after = time.monotonic()
        if reference.tzinfo is None or reference.utcoffset() is None:
            raise ValueError(f"expected a timezone-aware reference time, got {reference!r}")
        self._anchor_time = reference.astimezone(UTC) + timedelta(seconds=(after - before) / 2)
        self._anchor_mono = after
        self.offset = self._anchor_time - self._local.now()
        self.synced = True
        if abs(self.offset) > timedelta(seconds=1):
            log.warning("clock_skew", offset_s=round(self.offset.total_seconds(), 3))
        return True

    async def keep_synced(self) -> None:
        """Resynchronise every ``resync_s``; every second until a first reading
        succeeds (a process that started while the database was down)."""
        while True:
            await asyncio.sleep(self.resync_s if self.synced else min(1.0, self.resync_s))
            await self.sync()

    def now(self) -> datetime:
        return self._anchor_time + timedelta(seconds=time.monotonic() - self._anchor_mono)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
