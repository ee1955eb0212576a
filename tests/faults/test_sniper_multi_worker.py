"""Sniper orders across processes: one API, two workers each running the launch
listener, the chain process, real Redis and PostgreSQL.

The token and its pool are launched through the API, which forwards to the
chain process (``simCreateToken``/``simCreatePool``); both workers see the
launch by polling the chain (``getSignaturesForAddress``) and race to fire each
order: each must fire exactly once, by one of them, and fill once.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.faults.clients import follow, funded_wallet, submit
from tests.faults.conftest import Deployment

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
ORDERS = 6


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as response:
        text = await response.text()
        assert response.status == 201, f"POST {url}: {response.status} {text}"
        payload: dict[str, Any] = json.loads(text)
        return payload


async def test_two_workers_catch_a_launch_made_through_the_api_and_fire_each_sniper_once(
    deployment: Deployment,
) -> None:
    await funded_wallet(deployment.chain_url, deployment.workdir / "wallet.json")
    stack = deployment.stack(WATCH_DISCOVER_S="0.05")
    (_, api), first, second = await asyncio.gather(
        stack.api(), stack.worker(concurrency=10), stack.worker(concurrency=10)
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        token = await post(
            http,
            f"{api}/api/sim/tokens",
            {"symbol": "NEWT", "supply": "1000000000", "mintAuthorityRevoked": True},
        )
        body = {
            "type": "sniper",
            "inputToken": "SOL",
            "outputToken": token["mint"],
            "amount": "0.5",
            "slippageBps": 1500,
            "requireMintAuthorityRevoked": True,
        }
        ids = [await submit(http, api, body) for _ in range(ORDERS)]
        await asyncio.sleep(2.0)  # both workers' books have them (discovery every 50 ms)
        pool = await post(
            http,
            f"{api}/api/sim/pools",
            {
                "venue": "meteora",
                "baseMint": token["mint"],
                "quoteToken": "SOL",
                "baseAmount": "500000000",
                "quoteAmount": "100",
            },
        )
        streams = await asyncio.gather(*(follow(api, order_id, timeout=90) for order_id in ids))

    fills = []
    for stream in streams:
        statuses = [e["status"] for e in stream.events]
        assert statuses[:3] == ["pending", "open", "triggered"], statuses
        assert statuses.count("triggered") == 1, statuses
        assert statuses[-1] == "confirmed", stream.events[-1]
        fired = stream.events[2]
        assert (fired["pool"], fired["slot"]) == (pool["pool"], pool["slot"])
        fills.append(stream.events[-1])
    assert {f["triggerSlot"] for f in fills} == {pool["slot"]}
    assert len({f["txHash"] for f in fills}) == ORDERS
    fired_first = {e["order_id"] for e in first.events("order_triggered")}
    fired_second = {e["order_id"] for e in second.events("order_triggered")}
    assert fired_first | fired_second == set(ids)
    assert not fired_first & fired_second
    print(f"\nsniper multi-worker: fired {len(fired_first)} + {len(fired_second)}")
