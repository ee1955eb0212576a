"""``order-engine bench-sim``: the simulator's hot path, measured.

* ``quotes_per_s``: local quotes on a pool snapshot (the program math), per
  venue type, cycling through order sizes from 0.01 % to 2 % of the pool;
* ``snapshots_per_s``: a venue client reading and decoding pool state through
  the Chain port (no simulated latency, no faults);
* ``routing_decisions_per_s``: ``domain.routing.plan_direct`` over snapshots
  (a single pool of each type, and the two-venue pairs where splits are tried).

``seconds`` is the measuring time per venue type (split between its quotes and
its single-pool routing); the two-venue pairs and the snapshot reads share one
more ``seconds``, so a run takes about four times ``seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from order_engine.domain.routing import PoolSnapshot, RouterConfig, plan_direct
from order_engine.domain.tokens import BONK, SOL, USDC, Token
from order_engine.sim import SimConfig, Simulator, build_simulator

_SIZES_SOL = (0.05, 0.5, 2, 10, 40, 120, 300)
_SIZES_BONK = (10**6, 10**7, 5 * 10**7, 2 * 10**8, 10**9)


def _rate(work: Callable[[int], object], budget_s: float) -> float:
    """Calls per second of ``work(i)`` over about ``budget_s`` seconds."""
    calls = 0
    start = time.perf_counter()
    deadline = start + budget_s
    while True:
        for _ in range(64):
            work(calls)
            calls += 1
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def _quoting(pool: PoolSnapshot, amounts: list[int]) -> Callable[[int], object]:
    def work(i: int) -> object:
        return pool.quote(amounts[i % len(amounts)])

    return work


def _routing(
    pools: list[PoolSnapshot], amounts: list[int], config: RouterConfig
) -> Callable[[int], object]:
    def work(i: int) -> object:
        return plan_direct(pools, amounts[i % len(amounts)], 50, config)

    return work


async def _snapshots(sim: Simulator, token_in: Token, token_out: Token) -> list[PoolSnapshot]:
    pools: list[PoolSnapshot] = []
    for venue in sim.venues:
        pools += await venue.snapshots(token_in.mint, token_out.mint)
    return pools


async def run_sim_benchmark(seconds: float) -> dict[str, Any]:
    sim = build_simulator(
        SimConfig(
            time_scale=0.0,
            seed=1,
            transient_failure_rate=0.0,
            rate_limit_rate=0.0,
            send_timeout_rate=0.0,
            market_moves=False,
        )
    )
    sol_usdc = await _snapshots(sim, SOL, USDC)
    bonk_sol = await _snapshots(sim, BONK, SOL)
    by_kind = {p.pool_kind: p for p in [*sol_usdc, *bonk_sol]}
    sol_sizes = [SOL.to_base(s) for s in _SIZES_SOL]
    bonk_sizes = [BONK.to_base(s) for s in _SIZES_BONK]
    sizes = {"amm_v4": sol_sizes, "dlmm": sol_sizes, "cpmm": bonk_sizes}
    per_type = max(seconds, 0.04) / 2  # quotes, then routing, for each venue type
    shared = max(seconds, 0.04) / 4  # two pair routings and two venues' reads

    quotes: dict[str, float] = {}
    for kind in ("amm_v4", "cpmm", "dlmm"):
        pool, amounts = by_kind[kind], sizes[kind]
        quotes[kind] = _rate(_quoting(pool, amounts), per_type)

    config = RouterConfig()
    routing: dict[str, float] = {}
    cases: dict[str, tuple[list[PoolSnapshot], list[int]]] = {
        "amm_v4": ([by_kind["amm_v4"]], sol_sizes),
        "cpmm": ([by_kind["cpmm"]], bonk_sizes),
        "dlmm": ([by_kind["dlmm"]], sol_sizes),
        "amm_v4+dlmm (SOL/USDC)": (sol_usdc, sol_sizes),
        "cpmm+dlmm (BONK/SOL)": (bonk_sol, bonk_sizes),
    }
    for name, (pools, amounts) in cases.items():
        budget = per_type if len(pools) == 1 else shared
        routing[name] = _rate(_routing(pools, amounts, config), budget)

    reads: dict[str, float] = {}
    for venue in sim.venues:
        reads[venue.name] = await _async_rate(venue.snapshots, SOL.mint, USDC.mint, shared)
    return {
        "seconds": round(seconds, 3),
        "quotes_per_s": {k: round(v) for k, v in quotes.items()},
        "routing_decisions_per_s": {k: round(v, 1) for k, v in routing.items()},
        "snapshots_per_s": {k: round(v) for k, v in reads.items()},
    }


async def _async_rate(
    call: Callable[[str, str], Any], mint_in: str, mint_out: str, budget_s: float
) -> float:
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < budget_s:
        await call(mint_in, mint_out)
        calls += 1
    return calls / (time.perf_counter() - start)
