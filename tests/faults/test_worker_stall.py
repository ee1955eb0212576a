"""A worker whose event loop stalls past its lease, then runs on as if nothing happened.

SIGSTOP freezes every thread of the worker while it holds orders whose
transactions are broadcast (``submitted``): no heartbeat, no lease renewal, no
job heartbeat, exactly what a long GC pause, a blocked loop or a frozen VM
does. The queue sweeps its jobs, the other worker waits for the leases to
lapse and takes the orders over. Then SIGCONT: the stalled worker wakes in the
middle of its runs, with views of its orders that are seconds old.

What must hold: every order ends once, its events gapless; no order executed
two transactions, and none was re-signed while a transaction of its could
still land (the stalled worker's stale writes are refused, and it never
broadcasts anything but the bytes already stored); each order is settled by
its signature's status on chain, and the stalled worker lives on.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from tests.faults.clients import funded_wallet, submit_batch
from tests.faults.conftest import Deployment
from tests.faults.invariants import (
    assert_invariants,
    assert_re_signed_only_after_expiry,
    statuses_by_order,
    wait_all_terminal,
)
from tests.faults.procs import eventually
from tests.faults.test_worker_faults import NO_RECONCILER, leased_by

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
LEASE_S = 2.0
STALL_S = 8.0  # several leases, and long enough for the queue to sweep the jobs


async def test_a_worker_stalled_past_its_lease_loses_its_orders_once_and_wakes_harmlessly(
    deployment: Deployment,
) -> None:
    funded = await funded_wallet(deployment.chain_url, deployment.workdir / "wallet.json")
    stack = deployment.stack(LEASE_S=str(LEASE_S), JOB_HEARTBEAT_S="1", **NO_RECONCILER)
    _, api = await stack.api()
    stalled = await stack.worker(concurrency=10)
    survivor = await stack.worker(concurrency=10)

    ids = await submit_batch(api, 30)

    async def submitted_on_stalled() -> list[str] | None:
        held = await leased_by(deployment.database_url, stalled, 1)
        if held is None:
            return None
        statuses = await statuses_by_order(deployment.database_url)
        found = [i for i in held if statuses[i] == "submitted"]
        return found or None

    held = await eventually(
        submitted_on_stalled,
        timeout=30,
        what="the stalled worker to hold a broadcast order",
        every=0.01,
        context=stack.context,
    )
    os.kill(stalled.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(STALL_S)
    finally:
        os.kill(stalled.pid, signal.SIGCONT)

    await wait_all_terminal(deployment.database_url, ids, timeout=90, context=stack.context)
    assert stalled.running, stalled.tail()
    assert survivor.running
    orders, report = await assert_invariants(
        deployment.database_url,
        deployment.chain_url,
        ids,
        owner=funded.owner,
        usdc_before=funded.usdc_before,
    )
    re_signed = await assert_re_signed_only_after_expiry(deployment.chain_url, orders)
    assert all(orders[i].status == "confirmed" for i in held), [
        (i, orders[i].error_code, orders[i].error_message) for i in held
    ]
    # The survivor took over at least one of the stalled worker's orders while it slept.
    taken_over = {e["order_id"] for e in survivor.events("order_confirmed")} & set(held)
    lost = {e["order_id"] for e in stalled.events("lease_lost")}
    stale = {e.get("order_id") or e.get("orderId") for e in stalled.events("stale_write_stopping")}
    assert taken_over, (held, stalled.tail())
    print(f"\nstalled {STALL_S:.0f} s holding {len(held)} broadcast orders: "
          f"{len(taken_over)} settled by the survivor; the stalled worker saw "
          f"{len(lost)} leases lost and stopped {len(stale)} stale runs; "
          f"{re_signed} re-signs; {report}")  # fmt: skip
