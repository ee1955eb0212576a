"""Raydium CPMM (``raydium-cp-swap``): the Anchor constant-product pool with fee tiers.

Sources (raydium-io/raydium-cp-swap, ``programs/cp-swap/src``):

* ``curve/fees.rs``: ``FEE_RATE_DENOMINATOR_VALUE = 1_000_000``; the trading
  fee is ``ceil(amount * trade_fee_rate / 1e6)``; the protocol and fund fees
  are ``floor(trade_fee * rate / 1e6)`` (shares *of the trading fee*).
* ``curve/constant_product.rs`` ``swap_base_input_without_fees``:
  ``out = floor(in' * reserve_out / (reserve_in + in'))``.
* ``curve/calculator.rs`` ``swap_base_input``: ``in' = amount_in - trade_fee``.
* ``instructions/swap_base_input.rs``: reserves are the vault amounts minus the
  accrued protocol and fund fees (``vault_amount_without_fee``); the output
  must be > 0 and >= ``minimum_amount_out`` (``ExceededSlippage``); the
  protocol and fund fees are added to the pool state; 13 accounts.
* ``states/pool.rs`` (``PoolState``, 637 bytes with the discriminator) and
  ``states/config.rs`` (``AmmConfig``, 236 bytes).

Fee tiers on mainnet (trade_fee_rate): 100, 2500, 10000 (0.01 %, 0.25 %, 1 %);
protocol_fee_rate 120000 and fund_fee_rate 40000 (12 % and 4 % of the fee).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from order_engine.dex.anchor import account_discriminator, instruction_discriminator
from order_engine.dex.spl import TOKEN_PROGRAM_ID

_DEFAULT_KEY = Pubkey.default()
PROGRAM_ID = Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C")
# PDA of [b"vault_and_lp_mint_auth_seed"] under PROGRAM_ID, bump 253.
AUTHORITY = Pubkey.from_string("GpMZbSM2GgvTKHJirzeGfMFoaZ8UR2X7F4v8vHTvxFbL")
AUTH_BUMP = 253

FEE_RATE_DENOMINATOR = 1_000_000
FEE_TIERS = (100, 2_500, 10_000)
PROTOCOL_FEE_RATE = 120_000
FUND_FEE_RATE = 40_000
POOL_STATE_LEN = 637
AMM_CONFIG_LEN = 236
SWAP_ACCOUNTS = 13
STATUS_SWAP_DISABLED_BIT = 1 << 2

# ErrorCode variant names (Anchor reports the variant name).
EXCEEDED_SLIPPAGE = "ExceededSlippage"
NOT_APPROVED = "NotApproved"
INVALID_VAULT = "InvalidVault"
ZERO_TRADING_TOKENS = "ZeroTradingTokens"
REQUIRE_GT_VIOLATED = "RequireGtViolated"

POOL_STATE_DISCRIMINATOR = account_discriminator("PoolState")
AMM_CONFIG_DISCRIMINATOR = account_discriminator("AmmConfig")
OBSERVATION_DISCRIMINATOR = account_discriminator("ObservationState")
SWAP_BASE_INPUT_DISCRIMINATOR = instruction_discriminator("swap_base_input")

_CONFIG = struct.Struct("<8sBBHQQQQ32s32s128s")
_POOL_KEYS = 10  # amm_config .. observation_key, from offset 8
_POOL_TAIL = struct.Struct("<BBBBBQQQQQQQ")  # auth_bump .. recent_epoch, at 328
_SWAP = struct.Struct("<8sQQ")


@dataclass(frozen=True, slots=True)
class AmmConfig:
    trade_fee_rate: int
    protocol_fee_rate: int = PROTOCOL_FEE_RATE
    fund_fee_rate: int = FUND_FEE_RATE
    index: int = 0
    bump: int = 255


def encode_amm_config(config: AmmConfig) -> bytes:
    return _CONFIG.pack(
        AMM_CONFIG_DISCRIMINATOR,
        config.bump,
        0,
        config.index,
        config.trade_fee_rate,
        config.protocol_fee_rate,
        config.fund_fee_rate,
        150_000_000,  # create_pool_fee, lamports
        bytes(32),
        bytes(32),
        bytes(128),
    )


def decode_amm_config(data: bytes) -> AmmConfig:
    if len(data) != AMM_CONFIG_LEN or data[:8] != AMM_CONFIG_DISCRIMINATOR:
        raise ValueError("not a CPMM AmmConfig account")
    _d, bump, _disabled, index, trade, protocol, fund, _create, _po, _fo, _pad = _CONFIG.unpack(
        data
    )
    return AmmConfig(trade, protocol, fund, index, bump)


@dataclass(frozen=True, slots=True)
class PoolState:
    amm_config: Pubkey
    token_0_vault: Pubkey
    token_1_vault: Pubkey
    lp_mint: Pubkey
    token_0_mint: Pubkey
    token_1_mint: Pubkey
    observation_key: Pubkey
    mint_0_decimals: int
    mint_1_decimals: int
    pool_creator: Pubkey = _DEFAULT_KEY
    token_0_program: Pubkey = TOKEN_PROGRAM_ID
    token_1_program: Pubkey = TOKEN_PROGRAM_ID
    auth_bump: int = AUTH_BUMP
    status: int = 0
    lp_mint_decimals: int = 9
    lp_supply: int = 0
    protocol_fees_token_0: int = 0
    protocol_fees_token_1: int = 0
    fund_fees_token_0: int = 0
    fund_fees_token_1: int = 0
    open_time: int = 0
    recent_epoch: int = 0

    def reserves(self, vault_0: int, vault_1: int) -> tuple[int, int]:
        """``vault_amount_without_fee``: the vaults minus fees owed to the protocol."""
        return (
            vault_0 - (self.protocol_fees_token_0 + self.fund_fees_token_0),
            vault_1 - (self.protocol_fees_token_1 + self.fund_fees_token_1),
        )


def encode_pool_state(pool: PoolState) -> bytes:
    buf = bytearray(POOL_STATE_LEN)
    buf[:8] = POOL_STATE_DISCRIMINATOR
    keys = (
        pool.amm_config,
        pool.pool_creator,
        pool.token_0_vault,
        pool.token_1_vault,
        pool.lp_mint,
        pool.token_0_mint,
        pool.token_1_mint,
        pool.token_0_program,
        pool.token_1_program,
        pool.observation_key,
    )
    for index, key in enumerate(keys):
        buf[8 + 32 * index : 8 + 32 * (index + 1)] = bytes(key)
    _POOL_TAIL.pack_into(
        buf,
        8 + 32 * _POOL_KEYS,
        pool.auth_bump,
        pool.status,
        pool.lp_mint_decimals,
        pool.mint_0_decimals,
        pool.mint_1_decimals,
        pool.lp_supply,
        pool.protocol_fees_token_0,
        pool.protocol_fees_token_1,
        pool.fund_fees_token_0,
        pool.fund_fees_token_1,
        pool.open_time,
        pool.recent_epoch,
    )
    return bytes(buf)


def decode_pool_state(data: bytes) -> PoolState:
    if len(data) != POOL_STATE_LEN or data[:8] != POOL_STATE_DISCRIMINATOR:
        raise ValueError("not a CPMM PoolState account")
    k = [Pubkey.from_bytes(data[8 + 32 * i : 8 + 32 * (i + 1)]) for i in range(_POOL_KEYS)]
    tail = _POOL_TAIL.unpack_from(data, 8 + 32 * _POOL_KEYS)
    return PoolState(
        amm_config=k[0],
        pool_creator=k[1],
        token_0_vault=k[2],
        token_1_vault=k[3],
        lp_mint=k[4],
        token_0_mint=k[5],
        token_1_mint=k[6],
        token_0_program=k[7],
        token_1_program=k[8],
        observation_key=k[9],
        auth_bump=tail[0],
        status=tail[1],
        lp_mint_decimals=tail[2],
        mint_0_decimals=tail[3],
        mint_1_decimals=tail[4],
        lp_supply=tail[5],
        protocol_fees_token_0=tail[6],
        protocol_fees_token_1=tail[7],
        fund_fees_token_0=tail[8],
        fund_fees_token_1=tail[9],
        open_time=tail[10],
        recent_epoch=tail[11],
    )


@dataclass(frozen=True, slots=True)
class CpmmSwap:
    amount_out: int
    trade_fee: int
    protocol_fee: int
    fund_fee: int


def trading_fee(amount: int, trade_fee_rate: int) -> int:
    return -(-amount * trade_fee_rate // FEE_RATE_DENOMINATOR)


def swap_base_input(
    amount_in: int,
    reserve_in: int,
    reserve_out: int,
    trade_fee_rate: int,
    *,
    protocol_fee_rate: int = PROTOCOL_FEE_RATE,
    fund_fee_rate: int = FUND_FEE_RATE,
) -> CpmmSwap:
    trade_fee = -(-amount_in * trade_fee_rate // FEE_RATE_DENOMINATOR)
    net = amount_in - trade_fee
    return CpmmSwap(
        amount_out=net * reserve_out // (reserve_in + net),
        trade_fee=trade_fee,
        protocol_fee=trade_fee * protocol_fee_rate // FEE_RATE_DENOMINATOR,
        fund_fee=trade_fee * fund_fee_rate // FEE_RATE_DENOMINATOR,
    )


def encode_swap_base_input(amount_in: int, minimum_amount_out: int) -> bytes:
    return _SWAP.pack(SWAP_BASE_INPUT_DISCRIMINATOR, amount_in, minimum_amount_out)


def decode_swap_base_input(data: bytes) -> tuple[int, int]:
    if len(data) != _SWAP.size or data[:8] != SWAP_BASE_INPUT_DISCRIMINATOR:
        raise ValueError("not a swap_base_input instruction")
    _d, amount_in, minimum_out = _SWAP.unpack(data)
    return amount_in, minimum_out


@dataclass(frozen=True, slots=True)
class CpmmKeys:
    pool: Pubkey
    amm_config: Pubkey
    token_0_mint: Pubkey
    token_1_mint: Pubkey
    token_0_vault: Pubkey
    token_1_vault: Pubkey
    observation: Pubkey

    @classmethod
    def of(cls, pool: Pubkey, state: PoolState) -> CpmmKeys:
        return cls(
            pool,
            state.amm_config,
            state.token_0_mint,
            state.token_1_mint,
            state.token_0_vault,
            state.token_1_vault,
            state.observation_key,
        )


def swap_base_input_instruction(
    *,
    keys: CpmmKeys,
    input_mint: Pubkey,
    user_input: Pubkey,
    user_output: Pubkey,
    owner: Pubkey,
    amount_in: int,
    minimum_amount_out: int,
) -> Instruction:
    zero_for_one = input_mint == keys.token_0_mint
    if zero_for_one:
        in_vault, out_vault = keys.token_0_vault, keys.token_1_vault
        in_mint, out_mint = keys.token_0_mint, keys.token_1_mint
    else:
        in_vault, out_vault = keys.token_1_vault, keys.token_0_vault
        in_mint, out_mint = keys.token_1_mint, keys.token_0_mint

    def meta(key: Pubkey, writable: bool) -> AccountMeta:
        return AccountMeta(key, is_signer=False, is_writable=writable)

    accounts = [
        AccountMeta(owner, is_signer=True, is_writable=False),
        meta(AUTHORITY, False),
        meta(keys.amm_config, False),
        meta(keys.pool, True),
        meta(user_input, True),
        meta(user_output, True),
        meta(in_vault, True),
        meta(out_vault, True),
        meta(TOKEN_PROGRAM_ID, False),
        meta(TOKEN_PROGRAM_ID, False),
        meta(in_mint, False),
        meta(out_mint, False),
        meta(keys.observation, True),
    ]
    return Instruction(PROGRAM_ID, encode_swap_base_input(amount_in, minimum_amount_out), accounts)
