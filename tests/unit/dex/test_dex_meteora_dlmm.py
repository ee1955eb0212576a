"""Meteora DLMM math and layouts, against MeteoraAg/dlmm-sdk (program sources and commons)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex.meteora_dlmm_math import (
    MAX_FEE_RATE,
    ONE,
    U128_MAX,
    DlmmError,
    DlmmSwap,
    StaticParameters,
    VariableParameters,
    fee_for_amount,
    fee_from_amount,
    pow_q64,
    price_from_id,
    swap_exact_in,
    total_fee_rate,
    variable_fee_rate,
)


def test_pow_matches_the_programs_own_vector() -> None:
    # u64x64_math.rs test_pow: bin_step 15, bin_id 3333
    base = ONE + (15 << 64) // 10_000
    assert pow_q64(base, 3333) == 2_726_140_093_009_341_558_707


@pytest.mark.parametrize(
    ("bin_id", "decimal_1e12"), [(5555, 257_810_379_178_651), (-5555, 3_878_819_786)]
)
def test_price_from_id_matches_the_programs_decimal_vectors(bin_id: int, decimal_1e12: int) -> None:
    # price_math.rs tests: to_decimal(price) = price * 1e12 >> 64, bin_step 10
    assert (price_from_id(bin_id, 10) * 10**12) >> 64 == decimal_1e12


def test_bin_zero_is_price_one_and_bin_minus_one_is_the_inverted_base() -> None:
    assert price_from_id(0, 10) == ONE
    base = ONE + (10 << 64) // 10_000
    assert price_from_id(-1, 10) == U128_MAX // base


def test_base_and_variable_fees_follow_the_1e9_formulas() -> None:
    params = StaticParameters(base_factor=10_000, variable_fee_control=40_000)
    # base = 10_000 * 4 * 10 = 400_000 (4 bps); variable at va = 0 is 0
    assert total_fee_rate(params, 4, 0) == 400_000
    # variable = ceil(40_000 * (50_000 * 10)^2 / 1e11) = 100_000
    assert variable_fee_rate(params, 10, 50_000) == 100_000
    # the total is capped at 10 %
    assert total_fee_rate(StaticParameters(base_factor=60_000), 400, 0) == MAX_FEE_RATE


def test_the_fee_inside_an_amount_and_on_top_of_it_both_round_up() -> None:
    assert fee_from_amount(100, 1_000_000) == 1  # ceil(0.1)
    assert fee_for_amount(1_000, 1_000_000) == 2  # ceil(1000 * 1e6 / 999e6) = ceil(1.001)


def _walk(amount: int, bins: dict[int, tuple[int, int]], *, swap_for_y: bool = True) -> DlmmSwap:
    side = 1 if swap_for_y else 0
    holding = [i for i, b in bins.items() if b[side]]
    return swap_exact_in(
        amount_in=amount,
        swap_for_y=swap_for_y,
        active_id=0,
        bin_step=10,
        params=StaticParameters(base_factor=10_000),
        v_params=VariableParameters(),
        now=100,
        get_bin=lambda i: bins.get(i, (0, 0)),
        liquidity_bound=(min(holding) if swap_for_y else max(holding)) if holding else None,
        record_fills=True,
    )


def test_a_swap_inside_one_bin_pays_the_fee_then_converts_at_the_bin_price() -> None:
    # fee = ceil(100 * 0.1%) = 1; out = floor(99 * price(0) >> 64) = 99
    result = swap_exact_in(
        amount_in=100,
        swap_for_y=True,
        active_id=0,
        bin_step=10,
        params=StaticParameters(base_factor=10_000),
        v_params=VariableParameters(),
        now=100,
        get_bin=lambda _i: (0, 1_000),
        liquidity_bound=0,
    )
    assert (result.amount_out, result.fee, result.end_active_id) == (99, 1, 0)


def test_a_swap_that_empties_a_bin_continues_in_the_next_one_down() -> None:
    result = _walk(2_000, {0: (0, 1_000), -1: (0, 5_000)})
    # bin 0: max_in 1000 + fee ceil(1000 * 1e6 / 999e6) = 2 -> empties it (out 1000)
    # bin -1: 998 left, fee 1, out = floor(997 * price(-1) >> 64) = 996
    assert [(f.bin_id, f.amount_in, f.amount_out, f.fee) for f in result.fills] == [
        (0, 1_000, 1_000, 2),
        (-1, 997, 996, 1),
    ]
    assert (result.amount_out, result.fee, result.end_active_id) == (1_996, 3, -1)
    assert result.v_params.volatility_accumulator == 10_000  # one bin crossed


def test_running_out_of_bins_is_pair_insufficient_liquidity() -> None:
    with pytest.raises(DlmmError) as info:
        _walk(10_000, {0: (0, 1_000), -1: (0, 1_000)})
    assert info.value.name == "PairInsufficientLiquidity"


def test_lb_pair_layout_is_904_bytes_with_fields_at_their_offsets() -> None:
    keys = [Pubkey.new_unique() for _ in range(5)]
    pair = dlmm.LbPair(
        parameters=StaticParameters(base_factor=10_000, variable_fee_control=7),
        v_parameters=VariableParameters(3, 2, -4744, 1_700_000_000),
        active_id=-4744,
        bin_step=4,
        token_x_mint=keys[0],
        token_y_mint=keys[1],
        reserve_x=keys[2],
        reserve_y=keys[3],
        oracle=keys[4],
        bin_array_bitmap=dlmm.bitmap_with((0,) * 16, [-68, -67]),
        protocol_fee_x=11,
    )
    raw = dlmm.encode_lb_pair(pair)
    assert len(raw) == dlmm.LB_PAIR_LEN == 904
    assert raw[:8] == bytes([33, 11, 49, 98, 181, 101, 177, 13])
    assert int.from_bytes(raw[76:80], "little", signed=True) == -4744  # active_id
    assert int.from_bytes(raw[80:82], "little") == 4  # bin_step
    assert raw[88:120] == bytes(keys[0])  # token_x_mint
    assert raw[552:584] == bytes(keys[4])  # oracle
    decoded = dlmm.decode_lb_pair(raw)
    assert decoded == pair
    assert decoded.bin_array_indices() == [-68, -67]


def test_bin_arrays_hold_70_bins_of_144_bytes_and_index_by_floor_division() -> None:
    assert dlmm.BIN_ARRAY_LEN == 10_136
    assert dlmm.bin_array_index(-1) == -1
    assert dlmm.bin_array_index(-70) == -1
    assert dlmm.bin_array_index(-71) == -2
    assert dlmm.bin_array_index(69) == 0
    pair = Pubkey.new_unique()
    amounts = [(i, 2 * i) for i in range(70)]
    raw = dlmm.encode_bin_array(-2, pair, 4, amounts)
    assert dlmm.decode_bin_array(raw) == (-2, pair, amounts)
    assert dlmm.read_bin_amounts(raw, 69) == (69, 138)


def test_swap_instruction_uses_the_idl_discriminator_and_the_real_event_authority() -> None:
    assert dlmm.encode_swap(1, 2)[:8] == bytes([248, 198, 158, 145, 225, 117, 135, 200])
    assert str(dlmm.EVENT_AUTHORITY) == "D1ZN9Wj1fRSUQfCjhvnu1hqDMT7hzjzBBpi12nVniYD6"


ladder = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=12)


@given(ys=ladder, amount=st.integers(min_value=1, max_value=10**10))
def test_bins_are_consumed_in_order_and_each_one_passed_is_emptied(
    ys: list[int], amount: int
) -> None:
    bins = {-i: (0, y) for i, y in enumerate(ys)}
    try:
        result = _walk(amount, bins)
    except DlmmError:
        assert amount > 0
        return
    fills = result.fills
    ids = [f.bin_id for f in fills]
    assert ids == sorted(ids, reverse=True)  # walking down when selling X
    for fill in fills[:-1]:
        assert fill.amount_out == bins[fill.bin_id][1]  # every bin but the last is emptied
    assert result.amount_out <= sum(ys)
    assert result.fee <= amount * MAX_FEE_RATE // 10**9 + len(fills)


@given(
    ys=ladder,
    amount=st.integers(min_value=1, max_value=10**9),
    extra=st.integers(min_value=1, max_value=10**9),
)
def test_output_is_monotone_in_the_input(ys: list[int], amount: int, extra: int) -> None:
    bins = {-i: (0, y) for i, y in enumerate(ys)}
    try:
        large = _walk(amount + extra, bins)
    except DlmmError:
        return
    small = _walk(amount, bins)
    assert large.amount_out >= small.amount_out
