"""A cancelled job stops: its event publishes do not swallow the cancellation.

Found by the SIGTERM scenario (test_worker_faults.py): a worker draining with
``DRAIN_TIMEOUT_S=0`` cancelled its five running jobs and handed them back to
the queue, yet all five ran on and confirmed their orders 200-300 ms later.
redis-py sends every command through ``asyncio.wait_for``, which on Python 3.11
returns normally when its task is cancelled just as the wrapped send completes,
so the executor, publishing an event at that moment, never saw the cancellation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from order_engine.adapters.redis import RedisEventBus
from order_engine.domain.order import OrderEvent, OrderStatus

pytestmark = pytest.mark.redis


@pytest.fixture
async def bus(redis_url: str) -> AsyncIterator[RedisEventBus]:
    made = RedisEventBus.from_url(redis_url, prefix=f"oe-fault-{uuid.uuid4().hex[:10]}")
    try:
        yield made
    finally:
        await made.close()


@pytest.mark.parametrize("steps", range(8))
async def test_a_task_cancelled_while_it_publishes_an_event_is_cancelled(
    bus: RedisEventBus, steps: int
) -> None:
    event = OrderEvent(uuid.uuid4(), 1, OrderStatus.PENDING, datetime.now(UTC), {})
    await bus.publish(event)  # a pooled connection, as a running worker has
    for _ in range(20):
        publishing = asyncio.create_task(bus.publish(event))
        for _ in range(steps):  # cancel it at every point of the command's way
            await asyncio.sleep(0)
        if publishing.done():
            continue
        publishing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await publishing
