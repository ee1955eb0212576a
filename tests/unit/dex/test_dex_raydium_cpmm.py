"""Raydium CPMM math and encodings, against raydium-io/raydium-cp-swap programs/cp-swap/src."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from order_engine.dex import raydium_cpmm as cpmm

reserves = st.integers(min_value=1_000, max_value=10**15)
amounts = st.integers(min_value=1, max_value=10**13)
tiers = st.sampled_from(cpmm.FEE_TIERS)


@pytest.mark.parametrize(
    ("amount", "reserve_in", "reserve_out", "expected"),
    [
        # curve/constant_product.rs `constant_product_swap_rounding` (no fee)
        (10, 4_000_000, 70_000_000_000, 174_999),
        (20, 30_000 - 20, 10_000, 6),
        (19, 30_000 - 20, 10_000, 6),
        (18, 30_000 - 20, 10_000, 6),
        (10, 20_000, 30_000, 14),
        (10, 20_000 - 9, 30_000, 14),
        (10, 20_000 - 10, 30_000, 15),
        (100, 60_000, 30_000, 49),
        (99, 60_000, 30_000, 49),
        (98, 60_000, 30_000, 48),
    ],
)
def test_the_fee_free_curve_matches_the_programs_rounding_vectors(
    amount: int, reserve_in: int, reserve_out: int, expected: int
) -> None:
    result = cpmm.swap_base_input(amount, reserve_in, reserve_out, 0)
    assert result.amount_out == expected
    assert result.trade_fee == 0


def test_a_25_bps_tier_swap_matches_the_hand_computed_fees() -> None:
    # trade_fee = ceil(1_000_000 * 2500 / 1e6) = 2500; protocol = floor(2500 * 0.12) = 300;
    # fund = floor(2500 * 0.04) = 100; out = floor(997_500 * 2e9 / (1e9 + 997_500))
    result = cpmm.swap_base_input(1_000_000, 10**9, 2 * 10**9, 2_500)
    assert (result.trade_fee, result.protocol_fee, result.fund_fee) == (2_500, 300, 100)
    assert result.amount_out == 997_500 * 2 * 10**9 // (10**9 + 997_500) == 1_993_011


def test_the_trading_fee_rounds_up() -> None:
    assert cpmm.trading_fee(12_345, 2_500) == 31  # 30.8625 -> 31
    assert cpmm.trading_fee(1, 100) == 1


def test_swap_base_input_data_is_the_anchor_discriminator_and_two_u64() -> None:
    data = cpmm.encode_swap_base_input(5, 4)
    assert data[:8] == bytes([143, 190, 90, 218, 196, 30, 51, 222])
    assert cpmm.decode_swap_base_input(data) == (5, 4)


def test_pool_state_and_config_have_their_on_chain_sizes_and_round_trip() -> None:
    keys = [Pubkey.new_unique() for _ in range(7)]
    state = cpmm.PoolState(
        amm_config=keys[0],
        token_0_vault=keys[1],
        token_1_vault=keys[2],
        lp_mint=keys[3],
        token_0_mint=keys[4],
        token_1_mint=keys[5],
        observation_key=keys[6],
        mint_0_decimals=5,
        mint_1_decimals=9,
        protocol_fees_token_1=42,
    )
    raw = cpmm.encode_pool_state(state)
    assert len(raw) == cpmm.POOL_STATE_LEN == 637
    assert raw[:8] == bytes([247, 237, 227, 245, 215, 195, 222, 70])
    assert raw[72:104] == bytes(keys[1])  # token_0_vault after discriminator, config, creator
    assert cpmm.decode_pool_state(raw) == state
    config = cpmm.AmmConfig(2_500, index=1)
    raw_config = cpmm.encode_amm_config(config)
    assert len(raw_config) == cpmm.AMM_CONFIG_LEN == 236
    assert cpmm.decode_amm_config(raw_config) == config


def test_reserves_exclude_the_fees_owed_to_the_protocol_and_fund() -> None:
    key = Pubkey.new_unique()
    state = cpmm.PoolState(
        key, key, key, key, key, key, key, 6, 6,
        protocol_fees_token_0=10, fund_fees_token_0=5, protocol_fees_token_1=1,
    )  # fmt: skip
    assert state.reserves(1_000, 2_000) == (985, 1_999)


def test_the_authority_is_the_vault_and_lp_mint_pda() -> None:
    derived, _ = Pubkey.find_program_address([b"vault_and_lp_mint_auth_seed"], cpmm.PROGRAM_ID)
    assert derived == cpmm.AUTHORITY


@given(amount=amounts, reserve_in=reserves, reserve_out=reserves, tier=tiers)
def test_k_never_decreases_and_fees_never_exceed_the_input(
    amount: int, reserve_in: int, reserve_out: int, tier: int
) -> None:
    r = cpmm.swap_base_input(amount, reserve_in, reserve_out, tier)
    assert 0 <= r.amount_out < reserve_out
    assert r.trade_fee <= amount
    assert r.protocol_fee + r.fund_fee <= r.trade_fee
    # The program checks (in + amount - trade_fee) * (out - amount_out) >= in * out.
    after = (reserve_in + amount - r.trade_fee) * (reserve_out - r.amount_out)
    assert after >= reserve_in * reserve_out


@given(amount=amounts, extra=amounts, reserve_in=reserves, reserve_out=reserves, tier=tiers)
def test_output_is_monotone_in_the_input(
    amount: int, extra: int, reserve_in: int, reserve_out: int, tier: int
) -> None:
    small = cpmm.swap_base_input(amount, reserve_in, reserve_out, tier).amount_out
    large = cpmm.swap_base_input(amount + extra, reserve_in, reserve_out, tier).amount_out
    assert large >= small


@given(amount=amounts, step=amounts, reserve_in=reserves, reserve_out=reserves, tier=tiers)
def test_output_is_concave_in_the_input_up_to_integer_rounding(
    amount: int, step: int, reserve_in: int, reserve_out: int, tier: int
) -> None:
    a, b, c = (
        cpmm.swap_base_input(amount + k * step, reserve_in, reserve_out, tier).amount_out
        for k in range(3)
    )
    tolerance = 2 + 2 * (-(-reserve_out // reserve_in))
    assert (b - a) + tolerance >= (c - b)
