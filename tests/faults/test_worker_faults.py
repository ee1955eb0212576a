"""Faults 1 and 2: a worker killed with SIGKILL mid-batch, and workers drained by SIGTERM.

The reconciler is kept out of both (``RECONCILE_INTERVAL_S=3600``): what is
tested is that the queue alone recovers the jobs, a dead worker's by its sweep,
a drained worker's by taking them back.
"""

from __future__ import annotations

import time

import asyncpg
import pytest

from tests.faults.clients import funded_wallet, submit_batch
from tests.faults.conftest import Deployment
from tests.faults.invariants import (
    TERMINAL,
    assert_invariants,
    plain_url,
    statuses_by_order,
    wait_all_terminal,
)
from tests.faults.procs import Proc, eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
NO_RECONCILER = {"RECONCILE_INTERVAL_S": "3600"}


async def leased_by(database_url: str, worker: Proc, at_least: int) -> list[str] | None:
    """The orders ``worker`` holds a lease on mid-flight, once there are ``at_least``."""
    conn = await asyncpg.connect(plain_url(database_url), timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id FROM orders WHERE lease_owner LIKE $1 "
            "AND status IN ('routing', 'building', 'submitted')",
            f"%:{worker.pid}:%",  # the worker id is host:pid:random
        )
    finally:
        await conn.close()
    found = [row["id"] for row in rows]
    return found if len(found) >= at_least else None


async def test_a_worker_killed_mid_batch_leaves_its_orders_to_the_other_worker(
    deployment: Deployment,
) -> None:
    funded = await funded_wallet(deployment.chain_url, deployment.workdir / "wallet.json")
    # Default LEASE_S and JOB_HEARTBEAT_S: the recovery time measured is the real one.
    stack = deployment.stack(**NO_RECONCILER)
    _, api = await stack.api()
    victim = await stack.worker(concurrency=10)
    survivor = await stack.worker(concurrency=10)

    ids = await submit_batch(api, 30)
    held = await eventually(
        lambda: leased_by(deployment.database_url, victim, 3),
        timeout=30,
        what="the victim to hold 3 orders in flight",
        every=0.02,
        context=stack.context,
    )
    victim.kill()
    killed_at = time.monotonic()
    # What it held and had not finished (it may have finished one since the look).
    after_kill = await statuses_by_order(deployment.database_url)
    held = [i for i in held if after_kill[i] not in TERMINAL]
    assert held
    await wait_all_terminal(deployment.database_url, ids, timeout=60, context=stack.context)
    recovery = time.monotonic() - killed_at
    assert survivor.running

    orders, report = await assert_invariants(
        deployment.database_url,
        deployment.chain_url,
        ids,
        owner=funded.owner,
        usdc_before=funded.usdc_before,
    )
    assert all(orders[i].status == "confirmed" for i in held), [
        orders[i].error_message for i in held
    ]
    recovered = {e["order_id"] for e in survivor.events("order_confirmed")}
    assert set(held) <= recovered  # the survivor finished what the victim held
    print(f"\nkill -9 with {len(held)} orders in flight: the last order was terminal "
          f"{recovery:.1f} s after the kill; {report}")  # fmt: skip


async def test_sigterm_drains_a_worker_its_jobs_finish_or_return_to_the_queue_and_it_exits_zero(
    deployment: Deployment,
) -> None:
    funded = await funded_wallet(deployment.chain_url, deployment.workdir / "wallet.json")
    stack = deployment.stack(**NO_RECONCILER)
    _, api = await stack.api()
    # One worker may drain long enough to finish everything it runs; the other may
    # not drain at all, so what it runs goes back to the queue.
    finisher = await stack.worker(concurrency=5, env={"DRAIN_TIMEOUT_S": "30"})
    returner = await stack.worker(concurrency=5, env={"DRAIN_TIMEOUT_S": "0"})
    ids = await submit_batch(api, 30)
    finishing = await eventually(
        lambda: leased_by(deployment.database_url, finisher, 2),
        timeout=30,
        what="2 orders in flight on the finisher",
        every=0.02,
    )
    returning = await eventually(
        lambda: leased_by(deployment.database_url, returner, 2),
        timeout=30,
        what="2 orders in flight on the returner",
        every=0.02,
    )
    finisher.terminate()
    returner.terminate()
    survivor = await stack.worker(concurrency=10)

    assert await finisher.wait_exit(45) == 0, finisher.tail()
    assert await returner.wait_exit(45) == 0, returner.tail()
    await wait_all_terminal(deployment.database_url, ids, timeout=60, context=stack.context)
    assert survivor.running

    orders, report = await assert_invariants(
        deployment.database_url,
        deployment.chain_url,
        ids,
        owner=funded.owner,
        usdc_before=funded.usdc_before,
    )
    # The finisher ended what it was running before it exited; the returner gave
    # its running jobs back, and another worker finished them.
    finished = {e["order_id"] for e in finisher.events("order_confirmed")}
    assert set(finishing) <= finished, (finishing, finished)
    assert not finisher.events("queue.job_interrupted")
    returned = {e["order_id"] for e in returner.events("queue.job_interrupted")}
    assert returned, returner.tail()
    # What it cancelled stopped: nothing confirmed by it after the cancellation.
    cancelled_at = returner.events("queue.drain_timeout")[0]["timestamp"]
    late = [e for e in returner.events("order_confirmed") if e["timestamp"] > cancelled_at]
    assert not late, late
    # (a job may be cut off after its order's last write: the redelivery then finds
    # the order terminal and only finishes the job)
    by_returner = {e["order_id"] for e in returner.events("order_confirmed")}
    assert returned - by_returner <= {e["order_id"] for e in survivor.events("order_confirmed")}
    assert all(orders[i].status == "confirmed" for i in finishing + returning)
    print(f"\nSIGTERM: {len(finishing)} orders finished while draining, {len(returned)} "
          f"returned to the queue and finished elsewhere; {report}")  # fmt: skip
