"""SPL Token account and mint layouts (spl-token ``state.rs``)."""

from __future__ import annotations

from solders.pubkey import Pubkey

from order_engine.dex.sysvar import Clock, decode_clock, encode_clock
from order_engine.dex.token_accounts import (
    Mint,
    TokenAccount,
    decode_mint,
    decode_token_account,
    encode_mint,
    encode_token_account,
    token_account_amount,
)


def test_a_token_account_is_165_bytes_with_the_amount_at_offset_64() -> None:
    mint, owner = Pubkey.new_unique(), Pubkey.new_unique()
    raw = encode_token_account(TokenAccount(mint, owner, 123_456))
    assert len(raw) == 165
    assert raw[:32] == bytes(mint)
    assert raw[32:64] == bytes(owner)
    assert token_account_amount(raw) == 123_456
    assert raw[108] == 1  # AccountState::Initialized


def test_a_wrapped_sol_account_carries_its_rent_reserve_as_is_native() -> None:
    account = TokenAccount(Pubkey.new_unique(), Pubkey.new_unique(), 5, native_reserve=2_039_280)
    raw = encode_token_account(account)
    assert raw[109:113] == (1).to_bytes(4, "little")
    assert int.from_bytes(raw[113:121], "little") == 2_039_280
    assert decode_token_account(raw) == account


def test_a_mint_is_82_bytes_and_round_trips() -> None:
    raw = encode_mint(Mint(decimals=6, supply=10))
    assert len(raw) == 82
    assert raw[44] == 6
    assert decode_mint(raw) == Mint(6, 10)


def test_the_clock_sysvar_round_trips() -> None:
    clock = Clock(slot=864_001, unix_timestamp=1_735_700_000, epoch_start_timestamp=1)
    decoded = decode_clock(encode_clock(clock))
    assert decoded == clock
    assert decoded.epoch == 2
