"""Each sniper filter on its own: a pool that fails one is named by it, and a pool
that passes them all passes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from order_engine.adapters.venues.snapshots import CpmmSnapshot
from order_engine.app.sniper_filters import (
    FREEZE_AUTHORITY,
    MIN_LIQUIDITY,
    MINT_AUTHORITY,
    PRICE_IMPACT,
    SniperFilters,
    check_impact,
    check_static,
    trades_pair,
)
from order_engine.ports.launches import MintInfo, PoolLaunch

SOL = "So11111111111111111111111111111111111111112"
NEWT = "6gRqgDBMNEoT3BsGxMkdMAHzwTQxfsnyRwnQH196F2P8"
CREATOR = "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1"


def launch(*, mint_authority: str | None = None, freeze: str | None = None) -> PoolLaunch:
    return PoolLaunch(
        venue="raydium",
        pool="59MpsF5Gro3bovx8p61NayXpDhTKzqSGyANepbxM7SRV",
        kind="cpmm",
        mint_a=SOL,
        mint_b=NEWT,
        slot=10,
        signature="sig",
        seen_slot=10,
        reserves={SOL: 100 * 10**9, NEWT: 5 * 10**14},
        mints={
            SOL: MintInfo(9, 0, None, None),
            NEWT: MintInfo(6, 10**15, mint_authority, freeze),
        },
    )


def static(filters: SniperFilters, pool: PoolLaunch | None = None) -> str | None:
    return check_static(pool or launch(), filters, input_mint=SOL, output_mint=NEWT).failed


def test_a_pool_of_another_pair_is_not_the_orders_business() -> None:
    assert trades_pair(launch(), SOL, NEWT)
    assert trades_pair(launch(), NEWT, SOL)
    assert not trades_pair(launch(), SOL, "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")


def test_a_held_mint_authority_fails_only_when_revocation_is_required() -> None:
    held = launch(mint_authority=CREATOR)
    assert static(SniperFilters(require_mint_authority_revoked=True), held) == MINT_AUTHORITY
    assert static(SniperFilters(), held) is None
    assert static(SniperFilters(require_mint_authority_revoked=True)) is None


def test_a_held_freeze_authority_fails_only_when_revocation_is_required() -> None:
    held = launch(freeze=CREATOR)
    assert static(SniperFilters(require_freeze_authority_revoked=True), held) == FREEZE_AUTHORITY
    assert static(SniperFilters(), held) is None
    assert static(SniperFilters(require_freeze_authority_revoked=True)) is None


@pytest.mark.parametrize(
    ("needed", "failed"), [(100 * 10**9, None), (100 * 10**9 + 1, MIN_LIQUIDITY)]
)
def test_liquidity_is_counted_in_the_input_token_on_the_pools_side(
    needed: int, failed: str | None
) -> None:
    assert static(SniperFilters(min_liquidity=needed)) == failed


def test_the_first_failing_filter_is_the_one_named() -> None:
    both = launch(mint_authority=CREATOR, freeze=CREATOR)
    filters = SniperFilters(
        require_mint_authority_revoked=True, require_freeze_authority_revoked=True
    )
    verdict = check_static(both, filters, input_mint=SOL, output_mint=NEWT)
    assert verdict.failed == MINT_AUTHORITY
    assert CREATOR in verdict.reason


def pool_snapshot() -> CpmmSnapshot:
    return CpmmSnapshot(
        venue="raydium",
        pool_id="59MpsF5Gro3bovx8p61NayXpDhTKzqSGyANepbxM7SRV",
        input_mint=SOL,
        output_mint=NEWT,
        reserve_in=100 * 10**9,
        reserve_out=5 * 10**14,
        trade_fee_rate=2_500,
    )


def test_price_impact_for_the_orders_amount_fails_above_the_bound() -> None:
    # 10 SOL into 100: about 9 % of the price moves.
    big = check_impact(pool_snapshot(), 10 * 10**9, 500)
    small = check_impact(pool_snapshot(), 10**8, 500)
    assert big.failed == PRICE_IMPACT
    assert big.price_impact_bps is not None
    assert big.price_impact_bps > Decimal(500)
    assert small.passed
    assert small.price_impact_bps is not None
    assert small.price_impact_bps < Decimal(20)


def test_without_an_impact_bound_any_fillable_amount_passes() -> None:
    assert check_impact(pool_snapshot(), 10 * 10**9, None).passed
