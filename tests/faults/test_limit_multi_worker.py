"""Limit orders across processes: one API, two workers each running a price
watcher, the chain process, real Redis and PostgreSQL.

The API process runs no watcher, so both workers find every limit order in the
database and race to fire it: each must fire exactly once, by one of them, and
fill once on the chain.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.faults.clients import follow, funded_wallet, submit
from tests.faults.conftest import Deployment
from tests.faults.invariants import assert_invariants, assert_stream

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
ORDERS = 20


async def test_two_workers_watching_one_book_fire_each_limit_order_once_and_fill_it_once(
    deployment: Deployment,
) -> None:
    funded = await funded_wallet(deployment.chain_url, deployment.workdir / "wallet.json")
    # Both watchers read the book every 50 ms, so they meet on the same orders.
    stack = deployment.stack(WATCH_DISCOVER_S="0.05")
    (_, api), first, second = await asyncio.gather(
        stack.api(), stack.worker(concurrency=10), stack.worker(concurrency=10)
    )

    async def place_and_follow(
        http: aiohttp.ClientSession, n: int
    ) -> tuple[str, list[dict[str, Any]]]:
        # Marketable (SOL trades near 150 USDC): both watchers see it at once.
        body = {
            "type": "limit",
            "inputToken": "SOL",
            "outputToken": "USDC",
            "amount": f"0.{n + 1:02d}",
            "limitPrice": "100",
            "slippageBps": 500,
        }
        order_id = await submit(http, api, body)
        followed = await follow(api, order_id, timeout=90)
        return order_id, followed.events

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        results = await asyncio.gather(*(place_and_follow(http, n) for n in range(ORDERS)))

    ids = [order_id for order_id, _ in results]
    orders, report = await assert_invariants(
        deployment.database_url,
        deployment.chain_url,
        ids,
        owner=funded.owner,
        usdc_before=funded.usdc_before,
    )
    for order_id, events in results:
        assert_stream(events, orders[order_id])
        statuses = [e.status for e in orders[order_id].events]
        assert statuses[:3] == ["pending", "open", "triggered"], statuses
        assert statuses.count("triggered") == 1, statuses
    assert report.confirmed == ORDERS, [o.error_message for o in orders.values()]
    fired_first = {e["order_id"] for e in first.events("order_triggered")}
    fired_second = {e["order_id"] for e in second.events("order_triggered")}
    assert fired_first | fired_second == set(ids)
    assert not fired_first & fired_second
    lost = len(first.events("order_trigger_lost")) + len(second.events("order_trigger_lost"))
    print(
        f"\nlimit multi-worker: fired {len(fired_first)} + {len(fired_second)}, "
        f"{lost} triggers lost to the other watcher; {report}"
    )
