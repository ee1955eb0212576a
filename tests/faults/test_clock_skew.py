"""Clock skew between workers: one host's clock an hour ahead of, or behind, the others.

Leases are written as ``now + LEASE_S`` by one worker and compared with
another worker's ``now``. Measured by each host's own wall clock, a host an
hour ahead took every live lease at once (two workers on one order), a dead
host an hour ahead held its leases for that hour, and a live host an hour
behind wrote leases that had lapsed already for everyone else. The engine's
clock on PostgreSQL is the database server's (``bootstrap.engine_clock``), so
what each host's clock says does not matter.

In one process, on PostgreSQL (the store that workers on several hosts share):
each worker is an executor over the same store with a clock of its own, built
the way the engine builds its clock, from a skewed host clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from order_engine.bootstrap import Engine, engine_clock
from order_engine.domain.errors import TransientError
from order_engine.domain.order import OrderStatus
from order_engine.ports.clock import Clock
from order_engine.ports.queue import Job
from tests.integration.helpers import (
    SkewedClock,
    assert_one_gapless_terminal_history,
    executed_signatures,
    sim_of,
    submit,
    worker,
)
from tests.support.harness import database, engine_settings, running_engine

pytestmark = [pytest.mark.postgres]
HOUR = timedelta(hours=1)


@pytest.fixture
async def pg_engine(tmp_path: Path, fault_db: str) -> AsyncIterator[Engine]:
    """An engine on PostgreSQL that runs no workers of its own."""
    settings = engine_settings(tmp_path, database_url=fault_db)
    async with running_engine(settings, workers=False) as running:
        yield running


async def host_clock(engine: Engine, skew: timedelta) -> Clock:
    """The engine clock of a host whose own clock is ``skew`` off."""
    return await engine_clock(database(engine), local=SkewedClock(skew))


@pytest.mark.parametrize(
    ("holder_skew", "other_skew"),
    [(timedelta(0), HOUR), (-HOUR, timedelta(0))],
    ids=["other-ahead", "holder-behind"],
)
async def test_a_live_lease_is_not_taken_by_a_worker_whose_clock_disagrees(
    pg_engine: Engine, holder_skew: timedelta, other_skew: timedelta
) -> None:
    engine = pg_engine
    order = await submit(engine, "SOL", "USDC", "2")
    holder = await host_clock(engine, holder_skew)
    other = await host_clock(engine, other_skew)
    assert await engine.repo.claim(order.id, "holder", holder.now(), 1.0)

    async def keep_renewing() -> None:
        while True:
            await asyncio.sleep(0.2)
            assert await engine.repo.renew(order.id, "holder", holder.now(), 1.0)

    renewing = asyncio.create_task(keep_renewing())
    try:
        with pytest.raises(TransientError, match="leased by another worker"):
            await worker(engine, "other", clock=other, lease_s=1.0)(Job(order.id, 2, 3))
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
    assert [e.status for e in await engine.repo.events(order.id)] == [OrderStatus.PENDING]


@pytest.mark.parametrize("skew", [HOUR, -HOUR], ids=["ahead", "behind"])
async def test_the_lease_of_a_dead_worker_whose_clock_disagrees_lapses_after_one_lease(
    pg_engine: Engine, skew: timedelta
) -> None:
    engine = pg_engine
    order = await submit(engine, "SOL", "USDC", "2")
    dead = await host_clock(engine, skew)
    lease_s = 1.5
    assert await engine.repo.claim(order.id, "dead-worker", dead.now(), lease_s)
    started = time.monotonic()

    survivor = await host_clock(engine, timedelta(0))
    await worker(engine, "survivor", clock=survivor, lease_s=5.0)(Job(order.id, 2, 3))

    waited = time.monotonic() - started
    events = await engine.repo.events(order.id)
    assert_one_gapless_terminal_history(events)
    assert events[-1].status is OrderStatus.CONFIRMED
    assert executed_signatures(sim_of(engine)) == {events[-1].details["txHash"]: 1}
    assert lease_s * 0.9 <= waited < lease_s + 5.0  # one lease, not the skew


async def test_the_engine_clock_on_postgresql_keeps_the_servers_time_whatever_the_host_says(
    pg_engine: Engine,
) -> None:
    for skew in (HOUR, -HOUR, timedelta(days=400)):
        clock = await host_clock(pg_engine, skew)
        server = await database(pg_engine).server_time()
        assert abs(clock.now() - server) < timedelta(seconds=1), skew
