"""Re-enqueue active orders whose job was lost, so every accepted order finishes.

Jobs vanish in several ways the queue cannot see: the process died between the
database insert and the enqueue; an in-process queue died with its process;
Redis lost its data; a job ran out of attempts while its transaction's outcome
was still unknown. The database knows better: any active order that has not
moved for ``stale_after_s`` gets a fresh job. Enqueue is idempotent per order
and the executor's claim is conditional, so a live job is never doubled.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from order_engine.ports.clock import Clock
from order_engine.ports.queue import JobQueue
from order_engine.ports.repository import OrderRepository

log = structlog.get_logger(__name__)


class Reconciler:
    def __init__(
        self,
        *,
        repo: OrderRepository,
        queue: JobQueue,
        clock: Clock,
        interval_s: float,
        stale_after_s: float,
        batch: int = 500,
    ) -> None:
        self.repo = repo
        self.queue = queue
        self.clock = clock
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s
        self.batch = batch

    async def run_once(self, *, stale_after_s: float | None = None) -> int:
        """Enqueue every stale active order; returns how many were enqueued."""
        age = self.stale_after_s if stale_after_s is None else stale_after_s
        cutoff = self.clock.now() - timedelta(seconds=age)
        ids = await self.repo.unfinished(cutoff, self.batch)
        for order_id in ids:
            await self.queue.enqueue(order_id)
        if ids:
            log.info("reconciler_enqueued", count=len(ids))
        return len(ids)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log.warning("reconciler_round_failed", error=repr(exc))
