"""The genesis pools make the router's choice depend on size (domain/routing.py)."""

from __future__ import annotations

import pytest
from tests.unit.sim.simkit import route, snapshots

from order_engine.domain.routing import PoolSnapshot, best_single
from order_engine.domain.tokens import BONK, JUP, SOL, USDC, USDT
from order_engine.sim import Simulator


async def _sol_usdc(sim: Simulator) -> list[PoolSnapshot]:
    pools = await snapshots(sim, SOL.mint, USDC.mint)
    assert sorted(p.pool_kind for p in pools) == ["amm_v4", "dlmm"]
    return pools


@pytest.mark.parametrize("sol", [0.1, 1, 10, 50])
async def test_small_sol_orders_go_to_meteora_alone(sim: Simulator, sol: float) -> None:
    plan = route(await _sol_usdc(sim), SOL.to_base(sol))
    assert [leg.quote.venue for leg in plan.legs] == ["meteora"]


async def test_the_best_single_venue_flips_from_meteora_to_raydium_with_size(
    sim: Simulator,
) -> None:
    pools = await _sol_usdc(sim)
    assert best_single(pools, SOL.to_base(100))[0].venue == "meteora"
    large = best_single(pools, SOL.to_base(200))
    assert [q.venue for q in large] == ["raydium", "meteora"]  # both fill; Raydium pays more


@pytest.mark.parametrize("sol", [150, 500, 2_000])
async def test_a_split_beats_both_single_venues_in_between(sim: Simulator, sol: float) -> None:
    pools = await _sol_usdc(sim)
    amount = SOL.to_base(sol)
    plan = route(pools, amount)
    assert plan.is_split
    assert {leg.quote.venue for leg in plan.legs} == {"raydium", "meteora"}
    assert all(plan.expected_out > quote.amount_out for quote in best_single(pools, amount))
    assert sum(leg.quote.amount_in for leg in plan.legs) == amount


async def test_the_raydium_share_of_a_split_grows_with_size(sim: Simulator) -> None:
    pools = await _sol_usdc(sim)
    shares = []
    for sol in (150, 500, 2_000, 10_000):
        plan = route(pools, SOL.to_base(sol))
        shares.append(sum(x.share_bps for x in plan.legs if x.quote.venue == "raydium"))
    assert shares == sorted(shares)
    assert shares[-1] >= 9_000


async def test_an_order_too_large_for_meteoras_bins_goes_to_raydium_alone(sim: Simulator) -> None:
    plan = route(await _sol_usdc(sim), SOL.to_base(30_000))
    assert [leg.quote.venue for leg in plan.legs] == ["raydium"]


async def test_every_listed_pair_has_a_pool_on_both_venues(sim: Simulator) -> None:
    pairs = [(SOL, USDC), (SOL, USDT), (BONK, SOL), (JUP, USDC), (USDC, USDT)]
    for a, b in pairs:
        for venue in sim.venues:
            assert venue.has_pool(a.mint, b.mint)
            assert venue.has_pool(b.mint, a.mint)
            (pool,) = await venue.snapshots(a.mint, b.mint)
            assert pool.quote(10**a.decimals).amount_out > 0
    assert not any(v.has_pool(BONK.mint, USDT.mint) for v in sim.venues)
    assert await sim.venues[0].snapshots(BONK.mint, USDT.mint) == []


async def test_quotes_report_fee_and_price_impact(sim: Simulator) -> None:
    pools = await _sol_usdc(sim)
    raydium = next(p for p in pools if p.venue == "raydium").quote(SOL.to_base(1_000))
    assert raydium.fee == SOL.to_base(1_000) * 25 // 10_000
    assert 90 < raydium.price_impact_bps < 110  # ~1000 / 100_000 of the reserve
