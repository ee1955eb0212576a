"""The whole topology: 2 API processes, 2 workers, the chain, real Redis and PostgreSQL.

Orders go in through API 1; every one is followed over a WebSocket on API 2,
which never saw the submit: its stream comes from the database and the Redis
bus. Every invariant is then checked from the database and the chain.
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
ORDERS = 40


async def test_orders_submitted_on_one_api_and_followed_on_another_finish_once_and_stream_whole(
    deployment: Deployment,
) -> None:
    funded = await funded_wallet(deployment.chain_url, deployment.workdir / "wallet.json")
    stack = deployment.stack()
    (_, api_1), (_, api_2), first, second = await asyncio.gather(
        stack.api(), stack.api(), stack.worker(concurrency=10), stack.worker(concurrency=10)
    )

    async def submit_and_follow(
        http: aiohttp.ClientSession, n: int
    ) -> tuple[str, list[dict[str, Any]], int | None]:
        amount = f"0.{n + 1:02d}"
        body = {"inputToken": "SOL", "outputToken": "USDC", "amount": amount, "slippageBps": 500}
        order_id = await submit(http, api_1, body)
        followed = await follow(api_2, order_id, timeout=90)
        return order_id, followed.events, followed.close_code

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        results = await asyncio.gather(*(submit_and_follow(http, n) for n in range(ORDERS)))

    ids = [order_id for order_id, _, _ in results]
    orders, report = await assert_invariants(
        deployment.database_url,
        deployment.chain_url,
        ids,
        owner=funded.owner,
        usdc_before=funded.usdc_before,
    )
    for order_id, events, close_code in results:
        assert_stream(events, orders[order_id])
        assert close_code == 1000
    assert report.confirmed == ORDERS, [o.error_message for o in orders.values()]
    # Both workers took part, and each order ran to its end on one of them.
    by_first = {e["order_id"] for e in first.events("order_confirmed")}
    by_second = {e["order_id"] for e in second.events("order_confirmed")}
    assert by_first
    assert by_second
    assert by_first | by_second == set(ids)
    assert not by_first & by_second
    print(f"\nmulti-node: {len(by_first)} + {len(by_second)} orders per worker, every stream "
          f"whole on the other API; {report}")  # fmt: skip
