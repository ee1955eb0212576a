"""The executor's side of crash recovery, in one process: a redelivered job takes
over the lease of a worker that died, and leaves a live worker's order alone.

Found by the kill -9 scenario (test_worker_faults.py): the queue swept the dead
worker's jobs within seconds, but each redelivery met the dead worker's lease,
spent its attempts on quick retries and was dropped, so the orders waited for
the reconciler (49.5 s with the default settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from order_engine.adapters.clock import SystemClock
from order_engine.bootstrap import Engine
from order_engine.domain.errors import TransientError
from order_engine.domain.order import OrderStatus
from order_engine.ports.queue import Job
from tests.integration.helpers import (
    assert_one_gapless_terminal_history,
    executed_signatures,
    sim_of,
    submit,
    worker,
)
from tests.support.harness import engine_settings, running_engine


@pytest.fixture
async def idle_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with running_engine(engine_settings(tmp_path), workers=False) as running:
        yield running


async def test_a_redelivery_takes_over_the_lease_of_a_worker_that_died(idle_engine: Engine) -> None:
    engine = idle_engine
    order = await submit(engine, "SOL", "USDC", "2")
    # A worker claimed the order and died: nobody renews or releases its lease.
    dead_lease_s = 1.5
    assert await engine.repo.claim(order.id, "dead-worker", SystemClock().now(), dead_lease_s)
    started = time.monotonic()

    # The queue swept the job and delivers it to a live worker (attempt 2 of 3).
    await worker(engine, "survivor", lease_s=5.0)(Job(order.id, 2, 3))

    waited = time.monotonic() - started
    events = await engine.repo.events(order.id)
    assert_one_gapless_terminal_history(events)
    assert events[-1].status is OrderStatus.CONFIRMED
    assert executed_signatures(sim_of(engine)) == {events[-1].details["txHash"]: 1}
    assert waited >= dead_lease_s * 0.9  # it did wait for the lease to lapse


async def test_a_redelivery_leaves_an_order_whose_worker_keeps_renewing_its_lease(
    idle_engine: Engine,
) -> None:
    engine = idle_engine
    order = await submit(engine, "SOL", "USDC", "2")
    clock = SystemClock()
    assert await engine.repo.claim(order.id, "live-worker", clock.now(), 1.0)

    async def keep_renewing() -> None:
        while True:
            await asyncio.sleep(0.2)
            assert await engine.repo.renew(order.id, "live-worker", clock.now(), 1.0)

    renewing = asyncio.create_task(keep_renewing())
    try:
        with pytest.raises(TransientError, match="leased by another worker"):
            await worker(engine, "duplicate", lease_s=1.0)(Job(order.id, 2, 3))
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
    assert [e.status for e in await engine.repo.events(order.id)] == [OrderStatus.PENDING]
