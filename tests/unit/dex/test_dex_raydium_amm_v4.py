"""Raydium AMM v4 math and encodings, against raydium-io/raydium-amm program/src."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from order_engine.dex import raydium_amm_v4 as amm

U64 = 2**64 - 1
reserves = st.integers(min_value=1_000, max_value=10**15)
amounts = st.integers(min_value=1, max_value=10**13)


def test_one_sol_into_a_20k_sol_pool_matches_the_hand_computed_output() -> None:
    # fee = ceil(1e9 * 25 / 1e4) = 2_500_000; in' = 997_500_000
    # out = floor(3e12 * 997_500_000 / (2e13 + 997_500_000)) = floor(149_617_537.4...)
    out, fee = amm.swap_base_in(10**9, 20_000 * 10**9, 3_000_000 * 10**6)
    assert fee == 2_500_000
    assert out == 149_617_537


def test_the_fee_rounds_up_so_one_base_unit_still_pays_a_fee() -> None:
    assert amm.swap_fee(1, 25, 10_000) == 1
    assert amm.swap_fee(400, 25, 10_000) == 1
    assert amm.swap_fee(401, 25, 10_000) == 2
    out, fee = amm.swap_base_in(1, 10**9, 10**9)
    assert (out, fee) == (0, 1)


def test_swap_base_in_instruction_data_is_tag_9_then_two_little_endian_u64() -> None:
    data = amm.encode_swap_base_in(1_000, 990)
    assert data == bytes([9]) + (1_000).to_bytes(8, "little") + (990).to_bytes(8, "little")
    assert amm.decode_swap_base_in(data) == (1_000, 990)


def test_amm_info_encodes_to_752_bytes_with_vaults_at_their_program_offsets() -> None:
    keys = [Pubkey.new_unique() for _ in range(7)]
    info = amm.AmmInfo(
        coin_vault=keys[0],
        pc_vault=keys[1],
        coin_mint=keys[2],
        pc_mint=keys[3],
        lp_mint=keys[4],
        open_orders=keys[5],
        market=keys[6],
        target_orders=keys[0],
        coin_decimals=9,
        pc_decimals=6,
        need_take_pnl_coin=7,
    )
    raw = amm.encode_amm_info(info)
    assert len(raw) == amm.AMM_INFO_LEN == 752
    assert raw[336:368] == bytes(keys[0])  # coin_vault
    assert raw[368:400] == bytes(keys[1])  # pc_vault
    assert int.from_bytes(raw[192:200], "little") == 7  # need_take_pnl_coin
    assert int.from_bytes(raw[176:184], "little") == 25  # swap_fee_numerator
    assert amm.decode_amm_info(raw) == info


def test_the_authority_is_the_programs_amm_authority_pda() -> None:
    derived, bump = Pubkey.find_program_address([b"amm authority"], amm.PROGRAM_ID)
    assert derived == amm.AUTHORITY
    assert bump == amm.AUTHORITY_NONCE


@given(amount=amounts, reserve_in=reserves, reserve_out=reserves)
def test_k_never_decreases_and_output_stays_below_the_reserve(
    amount: int, reserve_in: int, reserve_out: int
) -> None:
    out, fee = amm.swap_base_in(amount, reserve_in, reserve_out)
    assert 0 <= out < reserve_out
    assert (reserve_in + amount) * (reserve_out - out) >= reserve_in * reserve_out
    assert fee <= amount


@given(amount=amounts, extra=amounts, reserve_in=reserves, reserve_out=reserves)
def test_output_is_monotone_in_the_input(
    amount: int, extra: int, reserve_in: int, reserve_out: int
) -> None:
    small, _ = amm.swap_base_in(amount, reserve_in, reserve_out)
    large, _ = amm.swap_base_in(amount + extra, reserve_in, reserve_out)
    assert large >= small


@given(amount=amounts, step=amounts, reserve_in=reserves, reserve_out=reserves)
def test_output_is_concave_in_the_input_up_to_integer_rounding(
    amount: int, step: int, reserve_in: int, reserve_out: int
) -> None:
    a, _ = amm.swap_base_in(amount, reserve_in, reserve_out)
    b, _ = amm.swap_base_in(amount + step, reserve_in, reserve_out)
    c, _ = amm.swap_base_in(amount + 2 * step, reserve_in, reserve_out)
    # floor() on the output and ceil() on the fee each move a result by at most one
    # output unit, or one input unit priced at the spot price.
    tolerance = 2 + 2 * (-(-reserve_out // reserve_in))
    assert (b - a) + tolerance >= (c - b)
