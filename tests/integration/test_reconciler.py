"""Every accepted order finishes: the reconciler re-enqueues active orders whose
job was lost (a crash between insert and enqueue, a process that died with its
in-process queue), and a re-enqueued order still executes exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from order_engine.adapters.db import Database, SqlOrderRepository, create_engine
from order_engine.bootstrap import Engine, build_engine
from order_engine.domain.order import Order, OrderStatus
from order_engine.domain.tokens import SOL, USDC
from order_engine.settings import Settings
from order_engine.sim import Simulator
from tests.integration.helpers import (
    assert_one_gapless_terminal_history,
    executed_signatures,
    executor_of,
    set_landing,
    sim_of,
    statuses,
    submit,
    submitted_signatures,
    wait_terminal,
)
from tests.support.harness import engine_settings, running_engine


async def test_an_order_persisted_but_never_enqueued_is_completed_by_the_reconciler(
    engine: Engine,
) -> None:
    # The process died between the database insert and the enqueue.
    order, event = Order.accept(
        order_id=uuid4(),
        input_mint=SOL.mint,
        output_mint=USDC.mint,
        amount_in=SOL.to_base(2),
        slippage_bps=50,
        at=executor_of(engine).clock.now(),
    )
    await engine.repo.create(order, event)
    await asyncio.sleep(0.05)
    assert (await engine.repo.get(order.id)) == order  # nobody knows about it
    assert await engine.reconciler.run_once() == 0  # not stale yet: it may be in flight

    assert await engine.reconciler.run_once(stale_after_s=0) == 1
    done = await wait_terminal(engine, order.id)

    events = await engine.repo.events(order.id)
    assert done.status is OrderStatus.CONFIRMED, statuses(events)
    assert_one_gapless_terminal_history(events)
    assert executed_signatures(sim_of(engine)) == {events[-1].details["txHash"]: 1}
    assert await engine.reconciler.run_once(stale_after_s=0) == 0  # finished: left alone


async def test_reconciler_sweeps_over_orders_already_running_execute_none_of_them_twice(
    idle_engine: Engine,
) -> None:
    engine = idle_engine
    # The sweeps run while the orders' first jobs are still queued (workers start
    # after them), so every order is delivered several times at once. With workers
    # already running, a fast engine claims them all before the first sweep.
    orders = [await submit(engine, "SOL", "USDC", f"0.{n + 1}") for n in range(20)]
    sweeps = [await engine.reconciler.run_once(stale_after_s=0) for _ in range(5)]
    await engine.start(workers=True, concurrency=20)

    done = [await wait_terminal(engine, o.id) for o in orders]

    assert sweeps[0] > 0  # the sweep did find them active and enqueued them again
    executed = executed_signatures(sim_of(engine))
    for order in done:
        events = await engine.repo.events(order.id)
        assert_one_gapless_terminal_history(events)
        assert order.status is OrderStatus.CONFIRMED, statuses(events)
        assert submitted_signatures(events) == [events[-1].details["txHash"]]
    assert sorted(executed.values()) == [1] * len(orders)


def _attach(engine: Engine, simulator: Simulator) -> None:
    """Point a freshly built engine at the cluster the previous process traded on:
    the chain outlives the engine's process, as a real cluster does."""
    engine.simulator = simulator
    engine.chain = simulator.chain
    executor_of(engine).chain = simulator.chain
    engine.router.venues = {venue.name: venue for venue in simulator.venues}


@pytest.mark.parametrize("reached", [True, False], ids=["send-reached-leader", "send-was-lost"])
async def test_an_engine_restarted_on_the_same_database_finishes_the_order_left_in_flight_once(
    tmp_path: Path, reached: bool
) -> None:
    settings = engine_settings(tmp_path, drain_timeout_s=0.0)
    async with running_engine(settings) as first:
        sim = sim_of(first)
        set_landing(sim, possible=False)
        if not reached:
            sim.faults.send_timeout_rate = 1.0
            sim.faults.ambiguous_share = 0.0
        subscription = await first.bus.subscribe()
        order = await submit(first, "SOL", "USDC", "7")
        async with asyncio.timeout(10):
            async for event in subscription:
                if event.order_id == order.id and event.status is OrderStatus.SUBMITTED:
                    break
        # Leaving the block stops the engine at once: the job is interrupted.
    left = await _reopened_order(settings, order.id)
    assert left.status is OrderStatus.SUBMITTED
    assert left.tx is not None
    assert sim.cluster.block_height() <= left.tx.last_valid_block_height  # still valid
    assert sim.cluster.is_pending(left.tx.signature) is reached
    assert executed_signatures(sim) == {}

    set_landing(sim, possible=True)
    sim.faults.send_timeout_rate = 0.0
    second = await build_engine(settings)
    _attach(second, sim)
    await second.start()  # start-up re-enqueues what the previous process left
    try:
        done = await wait_terminal(second, order.id)
        events = await second.repo.events(order.id)
    finally:
        await second.stop()

    assert done.status is OrderStatus.CONFIRMED, statuses(events)
    assert statuses(events) == ["pending", "routing", "building", "submitted", "confirmed"]
    assert events[-1].details["txHash"] == left.tx.signature
    assert executed_signatures(sim) == {left.tx.signature: 1}
    assert done.attempts == 2


async def _reopened_order(settings: Settings, order_id: UUID) -> Order:
    """The order as the database holds it, read with no engine running."""
    db = create_engine(settings.database_url)
    try:
        found = await SqlOrderRepository(Database(db)).get(order_id)
    finally:
        await db.dispose()
    assert found is not None
    return found


async def test_an_order_whose_job_died_with_the_previous_process_queue_is_run_on_start_up(
    tmp_path: Path,
) -> None:
    settings = engine_settings(tmp_path)
    async with running_engine(settings, workers=False) as first:
        order = await submit(first, "USDC", "SOL", "300")  # enqueued in memory only
    async with running_engine(settings) as second:
        done = await wait_terminal(second, order.id)
        events = await second.repo.events(order.id)

    assert done.status is OrderStatus.CONFIRMED, statuses(events)
    assert_one_gapless_terminal_history(events)
    assert done.attempts == 1
