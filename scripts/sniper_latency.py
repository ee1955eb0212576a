"""How fast a sniper order catches a launch, at real time (SIM_TIME_SCALE=1).

    PYTHONPATH=. .venv/bin/python scripts/sniper_latency.py --launches 30 --venue meteora

Runs an embedded engine over loopback HTTP (SQLite in a temporary directory,
the in-process simulator at time scale 1: 0.4 s slots, RPC and venue
latencies as in docs/simulation.md). For each launch: a new token, one sniper
order for it (``priorityFee`` 1 000 000 micro-lamports, no filters that fail),
then the pool, created at a random point in a slot; the order's events give
the milliseconds from the pool's creation to ``triggered`` and ``submitted``,
and its fill the landing slot. Prints one JSON object: the distribution of
``landing slot - creation slot`` and the percentiles of both delays.

Not a test: the figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from tests.e2e.wire import submit, wait_for_status
from tests.support.harness import engine_settings, running_engine, serving


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p10": at(0.1), "p50": at(0.5), "p90": at(0.9), "max": round(ordered[-1], 1)}


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as response:
        payload: dict[str, Any] = await response.json()
        assert response.status == 201, payload
        return payload


async def main(launches: int, venue: str, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    settings = engine_settings(
        Path(tempfile.mkdtemp()),
        sim_time_scale=1.0,
        sim_seed=seed,
        watch_discover_s=0.05,
        log_level="WARNING",
    )
    gaps: Counter[int] = Counter()
    fired: list[float] = []
    sent: list[float] = []
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as http,
    ):
        for _ in range(launches):
            token = await post(
                http,
                f"{url}/api/sim/tokens",
                {"symbol": "NEWT", "supply": "1000000000", "mintAuthorityRevoked": True},
            )
            body = {
                "type": "sniper",
                "inputToken": "SOL",
                "outputToken": token["mint"],
                "amount": "0.5",
                "slippageBps": 1500,
                "priorityFee": 1_000_000,
            }
            order_id = await submit(http, url, body)
            await wait_for_status(engine, order_id, "open")
            await asyncio.sleep(rng.uniform(0, 0.4))  # a random point in a slot
            created_at = datetime.now(UTC)
            pool = await post(
                http,
                f"{url}/api/sim/pools",
                {
                    "venue": venue,
                    "baseMint": token["mint"],
                    "quoteToken": "SOL",
                    "baseAmount": "500000000",
                    "quoteAmount": "100",
                },
            )
            await wait_for_status(engine, order_id, "confirmed")
            order = await engine.repo.get(uuid.UUID(order_id))
            assert order is not None
            assert order.fill is not None
            gaps[int(order.fill["slot"]) - int(pool["slot"])] += 1
            at = {e.status.value: e.at for e in await engine.repo.events(uuid.UUID(order_id))}
            fired.append((at["triggered"] - created_at).total_seconds() * 1000)
            sent.append((at["submitted"] - created_at).total_seconds() * 1000)
    return {
        "venue": venue,
        "launches": launches,
        "landing_slot_minus_creation_slot": dict(sorted(gaps.items())),
        "ms_creation_to_triggered": percentiles(fired),
        "ms_creation_to_submitted": percentiles(sent),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=30)
    parser.add_argument("--venue", choices=("meteora", "raydium"), default="meteora")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.launches, args.venue, args.seed)), indent=2))
