"""Raydium AMM v4 (the constant-product pool with an OpenBook market attached).

Sources (raydium-io/raydium-amm):

* ``program/src/math.rs`` ``Calculator::swap_token_amount_base_in``:
  ``out = reserve_out * in' / (reserve_in + in')`` (U128, floor).
* ``program/src/processor.rs`` ``process_swap_base_in``: the fee is
  ``ceil(amount_in * swap_fee_numerator / swap_fee_denominator)`` and ``in' =
  amount_in - fee``; reserves are the vault amounts minus ``need_take_pnl``;
  the checks, in order, are ``InsufficientFunds`` (user balance < amount_in),
  ``ExceededSlippage`` (out < minimum_amount_out), ``InvalidInput`` (zero in
  or out) and ``InsufficientFunds`` (out >= reserve_out).
* ``program/src/state.rs``: ``AmmInfo`` (752 bytes, packed), fees initialised
  to swap_fee 25/10000.
* ``program/src/instruction.rs``: ``SwapBaseIn`` is tag 9 followed by
  ``amount_in: u64, minimum_amount_out: u64``, with 17 accounts (18 with the
  optional target-orders account).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from order_engine.dex.spl import TOKEN_PROGRAM_ID

_DEFAULT_KEY = Pubkey.default()
PROGRAM_ID = Pubkey.from_string("675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8")
# PDA of [b"amm authority"] under PROGRAM_ID, bump 254 (stored in AmmInfo.nonce).
AUTHORITY = Pubkey.from_string("5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1")
AUTHORITY_NONCE = 254
OPENBOOK_PROGRAM_ID = Pubkey.from_string("srmqPvymJeFKQ4zGQed1GFppgkRHL9kaELCbyksJtPX")

AMM_INFO_LEN = 752
SWAP_BASE_IN_TAG = 9
SWAP_BASE_IN_ACCOUNTS = 17
SWAP_FEE_NUMERATOR = 25
SWAP_FEE_DENOMINATOR = 10_000
STATUS_SWAP_ONLY = 6

# AmmError variant names, as the program reports them.
EXCEEDED_SLIPPAGE = "ExceededSlippage"
INSUFFICIENT_FUNDS = "InsufficientFunds"
INVALID_INPUT = "InvalidInput"
INVALID_USER_TOKEN = "InvalidUserToken"  # noqa: S105 - an error name
INVALID_COIN_VAULT = "InvalidCoinVault"
INVALID_PC_VAULT = "InvalidPCVault"
INVALID_SIGN_ACCOUNT = "InvalidSignAccount"
WRONG_ACCOUNTS_NUMBER = "WrongAccountsNumber"
INVALID_STATUS = "InvalidStatus"

_U64 = struct.Struct("<Q")
_HEAD = struct.Struct("<16Q")  # status .. sys_decimal_value
_FEES = struct.Struct("<8Q")  # offset 128
_PNL = struct.Struct("<2Q")  # need_take_pnl_coin, need_take_pnl_pc at 192
_KEYS_OFFSET = 336  # coin_vault .. target_orders: 9 keys
_OWNER_OFFSET = 688
_LP_AMOUNT_OFFSET = 720
_SWAP = struct.Struct("<BQQ")


@dataclass(frozen=True, slots=True)
class AmmInfo:
    coin_vault: Pubkey
    pc_vault: Pubkey
    coin_mint: Pubkey
    pc_mint: Pubkey
    lp_mint: Pubkey
    open_orders: Pubkey
    market: Pubkey
    target_orders: Pubkey
    coin_decimals: int
    pc_decimals: int
    amm_owner: Pubkey = _DEFAULT_KEY
    market_program: Pubkey = OPENBOOK_PROGRAM_ID
    status: int = STATUS_SWAP_ONLY
    nonce: int = AUTHORITY_NONCE
    swap_fee_numerator: int = SWAP_FEE_NUMERATOR
    swap_fee_denominator: int = SWAP_FEE_DENOMINATOR
    trade_fee_numerator: int = 25
    trade_fee_denominator: int = 10_000
    need_take_pnl_coin: int = 0
    need_take_pnl_pc: int = 0
    lp_amount: int = 0


def encode_amm_info(info: AmmInfo) -> bytes:
    buf = bytearray(AMM_INFO_LEN)
    sys_decimal_value = 10 ** max(info.coin_decimals, info.pc_decimals)
    _HEAD.pack_into(
        buf,
        0,
        info.status,
        info.nonce,
        7,  # order_num
        3,  # depth
        info.coin_decimals,
        info.pc_decimals,
        1,  # state: IdleState
        1,  # reset_flag: ResetNo
        0,  # min_size
        500,  # vol_max_cut_ratio
        sys_decimal_value * 5 // 1000,  # amount_wave
        0,
        0,
        1,  # min_price_multiplier
        1_000_000_000,  # max_price_multiplier
        sys_decimal_value,
    )
    _FEES.pack_into(
        buf,
        128,
        5,
        10_000,  # min_separate
        info.trade_fee_numerator,
        info.trade_fee_denominator,
        12,
        100,  # pnl
        info.swap_fee_numerator,
        info.swap_fee_denominator,
    )
    _PNL.pack_into(buf, 192, info.need_take_pnl_coin, info.need_take_pnl_pc)
    keys = (
        info.coin_vault,
        info.pc_vault,
        info.coin_mint,
        info.pc_mint,
        info.lp_mint,
        info.open_orders,
        info.market,
        info.market_program,
        info.target_orders,
    )
    for index, key in enumerate(keys):
        start = _KEYS_OFFSET + 32 * index
        buf[start : start + 32] = bytes(key)
    buf[_OWNER_OFFSET : _OWNER_OFFSET + 32] = bytes(info.amm_owner)
    _U64.pack_into(buf, _LP_AMOUNT_OFFSET, info.lp_amount)
    return bytes(buf)


def decode_amm_info(data: bytes) -> AmmInfo:
    if len(data) != AMM_INFO_LEN:
        raise ValueError(f"AmmInfo: expected {AMM_INFO_LEN} bytes, got {len(data)}")
    head = _HEAD.unpack_from(data, 0)
    fees = _FEES.unpack_from(data, 128)
    pnl_coin, pnl_pc = _PNL.unpack_from(data, 192)
    keys = [
        Pubkey.from_bytes(data[_KEYS_OFFSET + 32 * i : _KEYS_OFFSET + 32 * (i + 1)])
        for i in range(9)
    ]
    return AmmInfo(
        coin_vault=keys[0],
        pc_vault=keys[1],
        coin_mint=keys[2],
        pc_mint=keys[3],
        lp_mint=keys[4],
        open_orders=keys[5],
        market=keys[6],
        market_program=keys[7],
        target_orders=keys[8],
        coin_decimals=head[4],
        pc_decimals=head[5],
        amm_owner=Pubkey.from_bytes(data[_OWNER_OFFSET : _OWNER_OFFSET + 32]),
        status=head[0],
        nonce=head[1],
        trade_fee_numerator=fees[2],
        trade_fee_denominator=fees[3],
        swap_fee_numerator=fees[6],
        swap_fee_denominator=fees[7],
        need_take_pnl_coin=pnl_coin,
        need_take_pnl_pc=pnl_pc,
        lp_amount=_U64.unpack_from(data, _LP_AMOUNT_OFFSET)[0],
    )


def swap_fee(amount_in: int, numerator: int, denominator: int) -> int:
    """``checked_ceil_div(amount_in * numerator, denominator)``."""
    return -(-amount_in * numerator // denominator)


def swap_base_in(
    amount_in: int,
    reserve_in: int,
    reserve_out: int,
    numerator: int = SWAP_FEE_NUMERATOR,
    denominator: int = SWAP_FEE_DENOMINATOR,
) -> tuple[int, int]:
    """(amount_out, fee) for an exact-in swap; the fee is in input units."""
    fee = -(-amount_in * numerator // denominator)
    net = amount_in - fee
    return reserve_out * net // (reserve_in + net), fee


def encode_swap_base_in(amount_in: int, minimum_amount_out: int) -> bytes:
    return _SWAP.pack(SWAP_BASE_IN_TAG, amount_in, minimum_amount_out)


def decode_swap_base_in(data: bytes) -> tuple[int, int]:
    if len(data) != _SWAP.size or data[0] != SWAP_BASE_IN_TAG:
        raise ValueError("not a SwapBaseIn instruction (tag 9, two u64)")
    _tag, amount_in, minimum_out = _SWAP.unpack(data)
    return amount_in, minimum_out


@dataclass(frozen=True, slots=True)
class AmmKeys:
    """Every account a v4 swap passes besides the user's: the pool's own keys and the
    OpenBook market's (real clients read them from the pool and market accounts, or
    from Raydium's pool-keys API)."""

    amm: Pubkey
    open_orders: Pubkey
    coin_vault: Pubkey
    pc_vault: Pubkey
    market: Pubkey
    market_bids: Pubkey
    market_asks: Pubkey
    market_event_queue: Pubkey
    market_coin_vault: Pubkey
    market_pc_vault: Pubkey
    market_vault_signer: Pubkey
    market_program: Pubkey = OPENBOOK_PROGRAM_ID


def swap_base_in_instruction(
    *,
    keys: AmmKeys,
    user_source: Pubkey,
    user_destination: Pubkey,
    owner: Pubkey,
    amount_in: int,
    minimum_amount_out: int,
) -> Instruction:
    def meta(key: Pubkey, writable: bool = True) -> AccountMeta:
        return AccountMeta(key, is_signer=False, is_writable=writable)

    accounts = [
        meta(TOKEN_PROGRAM_ID, False),
        meta(keys.amm),
        meta(AUTHORITY, False),
        meta(keys.open_orders),
        meta(keys.coin_vault),
        meta(keys.pc_vault),
        meta(keys.market_program, False),
        meta(keys.market),
        meta(keys.market_bids),
        meta(keys.market_asks),
        meta(keys.market_event_queue),
        meta(keys.market_coin_vault),
        meta(keys.market_pc_vault),
        meta(keys.market_vault_signer, False),
        meta(user_source),
        meta(user_destination),
        AccountMeta(owner, is_signer=True, is_writable=False),
    ]
    return Instruction(PROGRAM_ID, encode_swap_base_in(amount_in, minimum_amount_out), accounts)
