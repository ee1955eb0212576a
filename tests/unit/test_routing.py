"""Route selection over real constant-product pool snapshots (pure math, no I/O)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_engine.adapters.venues.snapshots import AmmV4Snapshot, CpmmSnapshot
from order_engine.app.executor import check_price_impact, floored
from order_engine.app.txbuilder import leg_minimums
from order_engine.domain.errors import (
    ErrorCode,
    InsufficientLiquidityError,
    NoRouteError,
    PermanentError,
)
from order_engine.domain.routing import (
    BPS,
    PoolSnapshot,
    RoutePlan,
    RouterConfig,
    best_single,
    ensure_plan,
    greedy_split,
    min_amount_out,
    plan_direct,
    plan_two_hop,
    split_two,
)
from order_engine.settings import Settings

SOL, USDC, BONK = "sol-mint", "usdc-mint", "bonk-mint"
CFG = RouterConfig()


def amm(venue: str, reserve_in: int, reserve_out: int, pool: str = "") -> AmmV4Snapshot:
    return AmmV4Snapshot(
        venue=venue,
        pool_id=pool or f"{venue}-amm",
        input_mint=SOL,
        output_mint=USDC,
        reserve_in=reserve_in,
        reserve_out=reserve_out,
    )


def cpmm(venue: str, reserve_in: int, reserve_out: int, fee_rate: int) -> CpmmSnapshot:
    return CpmmSnapshot(
        venue=venue,
        pool_id=f"{venue}-cpmm",
        input_mint=SOL,
        output_mint=USDC,
        reserve_in=reserve_in,
        reserve_out=reserve_out,
        trade_fee_rate=fee_rate,
    )


# 10k SOL / 1.5M USDC, in base units.
DEEP = (10_000 * 10**9, 1_500_000 * 10**6)
SHALLOW = (500 * 10**9, 75_000 * 10**6)


def test_min_amount_out_floors_the_expected_output_by_the_slippage() -> None:
    assert min_amount_out(10_000, 50) == 9_950
    assert min_amount_out(999, 50) == 994  # floor, never rounds up
    assert min_amount_out(10_000, 5000) == 5_000


def test_single_quotes_come_best_output_first() -> None:
    quotes = best_single([amm("a", *SHALLOW), amm("b", *DEEP)], 10 * 10**9)
    assert [q.venue for q in quotes] == ["b", "a"]
    assert quotes[0].amount_out > quotes[1].amount_out


def test_a_cheaper_shallow_pool_wins_small_orders_and_a_deep_pool_wins_large_ones() -> None:
    pools: list[PoolSnapshot] = [
        amm("deep", *DEEP),
        cpmm("cheap", *SHALLOW, fee_rate=100),
    ]  # 25 bps vs 1 bp
    small = plan_direct(pools, 10**7, 50, CFG)
    large = plan_direct(pools, 2_000 * 10**9, 50, CFG)
    assert small is not None
    assert large is not None
    assert small.venue == "cheap"
    assert not small.is_split
    assert best_single(pools, 2_000 * 10**9)[0].venue == "deep"
    assert max(large.legs, key=lambda leg: leg.share_bps).quote.venue == "deep"


def test_two_identical_pools_split_evenly_and_beat_either_alone() -> None:
    pools: list[PoolSnapshot] = [amm("a", *DEEP), amm("b", *DEEP)]
    amount = 1_000 * 10**9
    plan = plan_direct(pools, amount, 50, CFG)
    assert plan is not None
    assert plan.is_split
    shares = sorted(leg.share_bps for leg in plan.legs)
    assert shares == [5_000, 5_000]
    assert plan.expected_out > best_single(pools, amount)[0].amount_out
    assert "split across 2 pools" in plan.reason


def test_a_split_is_within_one_slice_of_the_brute_force_optimum() -> None:
    pools: list[PoolSnapshot] = [
        amm("a", *DEEP),
        cpmm("b", 3_000 * 10**9, 450_000 * 10**6, fee_rate=500),
    ]
    amount = 800 * 10**9
    split = greedy_split(pools, amount, slices=50)
    assert split is not None
    greedy_out = sum(q.amount_out for q in split)
    step = amount // 1_000
    best = max(
        pools[0].quote(k * step).amount_out + pools[1].quote(amount - k * step).amount_out
        for k in range(1, 1_000)
    )
    # Greedy over 50 slices of 2% loses at most a sliver against a 0.1% grid.
    assert greedy_out <= best + 1
    assert (best - greedy_out) * BPS / best < 1


def test_a_split_that_gains_less_than_the_threshold_is_not_taken() -> None:
    pools: list[PoolSnapshot] = [amm("a", *DEEP), amm("b", *SHALLOW)]
    plan = plan_direct(pools, 10**9, 50, RouterConfig(split_min_gain_bps=10_000))
    assert plan is not None
    assert not plan.is_split
    assert "best net output on a/amm_v4" in plan.reason


def test_plan_shares_sum_to_the_whole_order() -> None:
    pools: list[PoolSnapshot] = [amm("a", *DEEP), amm("b", *SHALLOW)]
    plan = plan_direct(pools, 300 * 10**9, 50, CFG)
    assert plan is not None
    assert sum(leg.share_bps for leg in plan.legs) == BPS
    assert sum(leg.quote.amount_in for leg in plan.legs) == plan.amount_in


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=10**6, max_value=5_000 * 10**9))
def test_the_chosen_plan_never_yields_less_than_the_best_single_pool(amount: int) -> None:
    pools: list[PoolSnapshot] = [amm("a", *DEEP), cpmm("b", *SHALLOW, fee_rate=100)]
    plan = plan_direct(pools, amount, 50, CFG)
    singles = best_single(pools, amount)
    assert plan is not None
    if singles:
        assert plan.expected_out >= singles[0].amount_out
    assert plan.min_out == min_amount_out(plan.expected_out, 50)


def test_an_amount_no_pool_can_fill_is_insufficient_liquidity_not_no_route() -> None:
    # A constant-product pool always pays something; one lamport in pays nothing (the fee eats it).
    pools: list[PoolSnapshot] = [amm("a", *DEEP)]
    plan = plan_direct(pools, 1, 50, CFG)
    with pytest.raises(InsufficientLiquidityError):
        ensure_plan(plan, "SOL/USDC", had_pools=True)
    with pytest.raises(NoRouteError):
        ensure_plan(None, "SOL/USDC", had_pools=False)


def test_a_two_hop_route_spends_the_first_hops_guaranteed_minimum() -> None:
    first = [
        AmmV4Snapshot(
            venue="a",
            pool_id="bonk-sol",
            input_mint=BONK,
            output_mint=SOL,
            reserve_in=10**15,
            reserve_out=10_000 * 10**9,
        )
    ]
    second = [amm("b", *DEEP)]
    plan = plan_two_hop(first, second, 10**11, 100, via="SOL")
    assert plan is not None
    assert len(plan.hops) == 2
    hop1, hop2 = plan.hops
    assert hop2[0].quote.amount_in == min_amount_out(hop1[0].quote.amount_out, 50)
    assert plan.min_out <= min_amount_out(plan.expected_out, 50)
    assert plan.reason == "no direct pool; two hops via SOL"


def test_leg_minimums_cover_each_hop_and_never_exceed_the_plan_minimum() -> None:
    pools: list[PoolSnapshot] = [amm("a", *DEEP), amm("b", *SHALLOW)]
    plan = plan_direct(pools, 300 * 10**9, 75, CFG)
    assert plan is not None
    assert plan.is_split
    (mins,) = leg_minimums(plan)
    # The floor is a promise about the sum: flooring's shortfall is handed to the legs.
    assert sum(mins) == plan.min_out
    for leg, leg_min in zip(plan.legs, mins, strict=True):
        assert leg_min < leg.quote.amount_out


def test_a_minimum_above_the_expected_output_stays_above_it_so_the_swap_fails_on_chain() -> None:
    pools = [amm("a", *DEEP), amm("b", *SHALLOW)]
    plan = plan_direct(pools, 300 * 10**9, 75, CFG)
    assert plan is not None
    (mins,) = leg_minimums(dataclasses.replace(plan, min_out=plan.expected_out + 10))
    assert sum(mins) > plan.expected_out
    assert any(m > leg.quote.amount_out for leg, m in zip(plan.legs, mins, strict=True))


def test_an_orders_floor_raises_the_plans_minimum_and_a_route_below_it_is_refused() -> None:
    pools = [amm("a", *DEEP), amm("b", *SHALLOW)]
    plan = plan_direct(pools, 300 * 10**9, 75, CFG)
    assert plan is not None
    assert floored(plan, None) is plan
    assert floored(plan, plan.min_out - 1) is plan  # slippage is already tighter
    limit = floored(plan, plan.expected_out)
    assert limit.min_out == plan.expected_out
    assert sum(leg_minimums(limit)[0]) == plan.expected_out
    with pytest.raises(PermanentError) as refused:
        floored(plan, plan.expected_out + 1)
    assert refused.value.code is ErrorCode.SLIPPAGE_EXCEEDED
    assert "nothing was signed" in refused.value.message


def test_a_minimum_above_the_expected_output_is_kept_so_the_chain_refuses_the_swap() -> None:
    # A caller may ask for more than the quote on purpose (the venue contract tests
    # do, to see the slippage error): spreading the floor must never lower it.
    pools = [amm("a", *DEEP)]
    plan = plan_direct(pools, 10**9, 50, CFG)
    assert plan is not None
    above = dataclasses.replace(plan, min_out=plan.expected_out + 1)
    assert leg_minimums(above) == [[plan.expected_out + 1]]


class _Counting:
    """A snapshot that counts how often the search evaluates it."""

    def __init__(self, inner: AmmV4Snapshot | CpmmSnapshot) -> None:
        self.inner = inner
        self.evaluations = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def amount_out(self, amount_in: int) -> int:
        self.evaluations += 1
        return self.inner.amount_out(amount_in)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=10**8, max_value=8_000 * 10**9))
def test_the_bisected_two_pool_split_matches_the_greedy_slices_with_a_few_evaluations(
    amount: int,
) -> None:
    pools = [_Counting(amm("a", *DEEP)), _Counting(cpmm("b", *SHALLOW, fee_rate=100))]
    bisected = split_two(pools, amount, slices=50)  # type: ignore[arg-type]
    greedy = greedy_split([p.inner for p in pools], amount, slices=50)
    assert (bisected is None) == (greedy is None)
    if bisected is not None and greedy is not None:
        out, best = sum(q.amount_out for q in bisected), sum(q.amount_out for q in greedy)
        assert sum(q.amount_in for q in bisected) == amount
        # The same grid optimum, up to the last slice's remainder greedy places.
        assert abs(out - best) * BPS <= best
    assert sum(p.evaluations for p in pools) <= 4 * 7


def test_a_route_past_the_price_impact_bound_is_refused_before_signing_and_names_the_impact() -> (
    None
):
    plan = RoutePlan(
        hops=(),
        amount_in=1,
        expected_out=1,
        min_out=1,
        price_impact_bps=Decimal("9983.31"),
        reason="test",
    )
    with pytest.raises(PermanentError) as refused:
        check_price_impact(plan, 1_000)
    assert refused.value.code is ErrorCode.PRICE_IMPACT_TOO_HIGH
    assert "9983.31 bps" in refused.value.message
    check_price_impact(plan, 0)  # 0: no bound
    check_price_impact(plan, 10_000)
    assert Settings(_env_file=None).max_price_impact_bps == 1_000
