"""The moving market: reference walks, background flow, arbitrage, and engine fills."""

from __future__ import annotations

import math

from solders.keypair import Keypair
from tests.unit.sim.simkit import SOL_MINT, Leg, build_swap, confirm, quiet_config, snapshots

from order_engine.domain.tokens import SOL, USDC
from order_engine.sim import Simulator, build_simulator
from order_engine.sim.genesis import price_in_base_units


def test_the_market_moves_over_simulated_time_and_pools_track_the_reference() -> None:
    sim = build_simulator(quiet_config(market_moves=True, seed=11))
    amm, dlmm = sim.pool("SOL/USDC", "amm_v4"), sim.pool("SOL/USDC", "dlmm")
    start_amm, start_dlmm = sim.pool_view(amm), sim.pool_view(dlmm)
    sim.advance_slots(1_500)  # ten simulated minutes
    assert sim.reference_price("SOL") != 150.0
    assert sim.market.trades > 500
    now_amm, now_dlmm = sim.pool_view(amm), sim.pool_view(dlmm)
    assert (now_amm.reserve_a, now_amm.reserve_b) != (start_amm.reserve_a, start_amm.reserve_b)
    assert now_dlmm.reserve_a != start_dlmm.reserve_a
    reference = price_in_base_units("SOL", "USDC", sim.market.prices)
    # Arbitrage keeps each pool inside its fee band around the reference (plus noise).
    assert abs(math.log(now_amm.price / reference)) < 0.0025 + 0.0020
    assert abs(math.log(now_dlmm.price / reference)) < 0.0004 + 0.0020


def test_the_reference_walk_is_reproducible_from_the_seed() -> None:
    one = build_simulator(quiet_config(market_moves=True, seed=5))
    two = build_simulator(quiet_config(market_moves=True, seed=5))
    one.advance_slots(300)
    two.advance_slots(300)
    assert one.market.prices == two.market.prices
    assert one.pool_view(one.pool("BONK/SOL", "cpmm")) == two.pool_view(
        two.pool("BONK/SOL", "cpmm")
    )


def test_bonk_is_walked_with_more_volatility_than_the_stables() -> None:
    sim = build_simulator(quiet_config(market_moves=True, seed=2))
    sim.advance_slots(3_000)
    bonk = abs(math.log(sim.reference_price("BONK") / 0.00002))
    usdt = abs(math.log(sim.reference_price("USDT") / 1.0))
    assert bonk > usdt


async def test_an_engine_fill_moves_the_pool_it_traded_against(
    sim: Simulator, wallet: Keypair
) -> None:
    listing = sim.pool("SOL/USDC", "amm_v4")
    before = sim.pool_view(listing)
    pool = next(p for p in await snapshots(sim, SOL.mint, USDC.mint) if p.pool_kind == "amm_v4")
    quote = pool.quote(SOL.to_base(100))
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim, wallet, [Leg(quote, 0)], blockhash=blockhash, input_mint=SOL_MINT,
        output_mint=USDC.mint,
    )  # fmt: skip
    await confirm(sim, await sim.chain.send_transaction(bytes(tx)))
    after = sim.pool_view(listing)
    assert after.reserve_a == before.reserve_a + SOL.to_base(100)
    assert after.reserve_b == before.reserve_b - quote.amount_out
    assert after.price < before.price


async def test_a_quote_goes_stale_while_the_market_moves() -> None:
    sim = build_simulator(quiet_config(market_moves=True, seed=4))
    first = {
        p.pool_id: p.quote(SOL.to_base(10)).amount_out
        for p in await snapshots(sim, SOL.mint, USDC.mint)
    }
    sim.advance_slots(30)
    later = {
        p.pool_id: p.quote(SOL.to_base(10)).amount_out
        for p in await snapshots(sim, SOL.mint, USDC.mint)
    }
    assert first != later


async def test_a_tight_slippage_bound_fails_from_market_movement_alone(wallet: Keypair) -> None:
    sim = build_simulator(quiet_config(market_moves=True, seed=9))
    trader = Keypair()
    sim.fund(trader.pubkey(), lamports=10_000 * 10**9, tokens={})
    failures = successes = 0
    for round_ in range(12):
        pool = next(p for p in await snapshots(sim, SOL.mint, USDC.mint) if p.pool_kind == "amm_v4")
        quote = pool.quote(SOL.to_base(1))
        blockhash = (await sim.chain.get_latest_blockhash()).blockhash
        tx = build_swap(
            sim, trader, [Leg(quote, quote.amount_out * 9_999 // 10_000)], blockhash=blockhash,
            input_mint=SOL_MINT, output_mint=USDC.mint, memo=f"r{round_}",
        )  # fmt: skip
        sim.advance_slots(3)  # the transaction is in flight while the market trades
        status = await confirm(sim, await sim.chain.send_transaction(bytes(tx)))
        if status.err == "ExceededSlippage":
            failures += 1
        else:
            assert status.err is None
            successes += 1
    assert failures > 0
    assert successes > 0
