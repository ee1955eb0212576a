"""Fault 6: a subscriber's TCP connection is reset mid-order; it reconnects with
``afterSeq=<last seen>`` and receives exactly the events it missed."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.faults.clients import follow, follow_until_seq_then_drop, submit
from tests.faults.conftest import Deployment
from tests.faults.invariants import TERMINAL, assert_lifecycle, assert_stream, load_orders
from tests.faults.procs import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
ORDERS = 12


async def test_a_subscriber_whose_socket_drops_resumes_after_its_last_seq_without_gap_or_duplicate(
    deployment: Deployment,
) -> None:
    stack = deployment.stack()
    (api_proc, api), _ = await asyncio.gather(stack.api(), stack.worker(concurrency=10))

    async def status(http: aiohttp.ClientSession, order_id: str) -> str:
        async with http.get(f"{api}/api/orders/{order_id}") as response:
            found: str = (await response.json())["status"]
            return found

    async def one(
        http: aiohttp.ClientSession, n: int
    ) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], bool]:
        order_id = await submit(http, api)
        # Reset right after the first event for some, after routing for the others.
        before = await follow_until_seq_then_drop(api, order_id, drop_after_seq=1 + n % 2)
        mid_order = await status(http, order_id) not in TERMINAL
        if n % 3 == 0:  # some come back only after the order has finished

            async def finished() -> bool:
                return await status(http, order_id) in TERMINAL

            await eventually(finished, timeout=60, what=f"{order_id} terminal")
        after = await follow(api, order_id, after_seq=int(before[-1]["seq"]), timeout=60)
        assert after.close_code == 1000
        return order_id, before, after.events, mid_order

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        results = await asyncio.gather(*(one(http, n) for n in range(ORDERS)))

    orders = await load_orders(deployment.database_url)
    assert_lifecycle(orders, [order_id for order_id, *_ in results])
    for order_id, before, after, _ in results:
        assert_stream(before + after, orders[order_id])  # together: every event once, in order
        assert int(after[0]["seq"]) == int(before[-1]["seq"]) + 1
    dropped_mid_order = sum(1 for *_, mid_order in results if mid_order)
    assert dropped_mid_order, "no socket was reset while its order was still running"
    assert api_proc.running  # the resets cost the API nothing
    print(f"\nWebSocket reset: {dropped_mid_order}/{ORDERS} mid-order, every stream resumed "
          "with exactly the missing events")  # fmt: skip
