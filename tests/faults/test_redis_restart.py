"""Fault 3: Redis restarts mid-load and comes back empty (no persistence): every
queued job and every bus connection is gone. The reconciler completes every order.

The test runs its own ``redis-server`` on a free port (never the shared one),
kills it by the PID it started, and starts it again on the same port.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import pytest

from order_engine.adapters.redis import SaqJobQueue, SaqQueueConfig
from order_engine.ports.queue import Job
from tests.faults.clients import follow, funded_wallet, submit, submit_batch
from tests.faults.conftest import Deployment
from tests.faults.invariants import (
    TERMINAL,
    assert_invariants,
    assert_stream,
    statuses_by_order,
    wait_all_terminal,
)
from tests.faults.procs import RedisServer, eventually, http_status

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


async def test_after_redis_restarts_empty_the_reconciler_completes_every_order(
    own_redis: RedisServer, deployment: Deployment
) -> None:
    server = own_redis
    funded = await funded_wallet(deployment.chain_url, deployment.workdir / "wallet.json")
    stack = deployment.stack(REDIS_URL=server.url, RECONCILE_INTERVAL_S="1", RECONCILE_STALE_S="2")
    (api_proc, api), worker = await asyncio.gather(stack.api(), stack.worker(concurrency=4))

    first = await submit_batch(api, 24)
    followers = [asyncio.create_task(follow(api, i, timeout=120)) for i in first[:6]]
    await eventually(
        lambda: _terminal_count(deployment.database_url, first, 2),
        timeout=30,
        what="the first orders to finish",
    )
    server.kill()  # SIGKILL: the queue, its jobs and every connection are gone
    killed_at = time.monotonic()
    not_ready = await eventually(
        lambda: _not_ready(api), timeout=20, what="/readyz to report Redis unavailable"
    )
    # Orders are durable in PostgreSQL: the API still accepts them meanwhile.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        during = [await submit(http, api) for _ in range(4)]
    await asyncio.sleep(1.0)
    await server.start()  # same port, empty

    await eventually(
        lambda: _ready(api), timeout=30, what="/readyz to recover", context=stack.context
    )
    after = await submit_batch(api, 4)
    ids = first + during + after
    await wait_all_terminal(deployment.database_url, ids, timeout=90, context=stack.context)
    recovery = time.monotonic() - killed_at
    followed = await asyncio.wait_for(asyncio.gather(*followers), 60)
    assert api_proc.running
    assert worker.running

    orders, report = await assert_invariants(
        deployment.database_url,
        deployment.chain_url,
        ids,
        owner=funded.owner,
        usdc_before=funded.usdc_before,
    )
    for stream in followed:
        assert_stream(stream.events, orders[stream.order_id])
    assert report.confirmed == len(ids), [o.error_message for o in orders.values()]
    reconciled = sum(int(e["count"]) for e in worker.events("reconciler_enqueued"))
    assert reconciled >= 1, worker.tail()
    print(f"\nRedis restart: /readyz {not_ready}; every one of {len(ids)} orders terminal "
          f"{recovery:.1f} s after the kill; the reconciler re-enqueued {reconciled}; "
          f"{report}")  # fmt: skip


async def test_an_idle_worker_waits_instead_of_spinning_while_redis_is_down(
    own_redis: RedisServer,
) -> None:
    """Found by the restart above: SAQ calls a failed dequeue again at once, so each
    idle slot of a worker spun at full CPU while Redis could not be reached."""
    server = own_redis
    queue = SaqJobQueue.from_url(
        server.url, SaqQueueConfig(name="idle", max_attempts=3, backoff_base=0.1, backoff_max=1.0)
    )
    ran = asyncio.Event()

    async def handler(job: Job) -> None:
        ran.set()

    try:
        await queue.start(handler, 10)
        await asyncio.sleep(0.5)
        server.kill()
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(3)
        share = (time.process_time() - cpu) / (time.monotonic() - wall)
        assert share < 0.25, f"an idle worker used {share:.0%} of a core while Redis was down"

        await server.start()  # and it takes jobs again once Redis is back
        await queue.enqueue(uuid.uuid4())
        await asyncio.wait_for(ran.wait(), 10)
    finally:
        await queue.close()


async def _terminal_count(database_url: str, ids: list[str], count: int) -> bool:
    statuses = await statuses_by_order(database_url)
    return sum(1 for i in ids if statuses.get(i) in TERMINAL) >= count


async def _not_ready(api: str) -> str | None:
    async with aiohttp.ClientSession() as http, http.get(f"{api}/readyz") as response:
        body = await response.json(content_type=None)
        return f"{response.status} {body.get('checks')}" if response.status == 503 else None


async def _ready(api: str) -> bool:
    return await http_status(f"{api}/readyz") == 200
