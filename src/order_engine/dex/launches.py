"""Pool creation on the venues: the initialise instructions and the addresses that
witness a launch. Pure program knowledge, like the rest of ``dex``.

* Raydium CPMM ``initialize(init_amount_0: u64, init_amount_1: u64, open_time:
  u64)`` (raydium-io/raydium-cp-swap ``instructions/initialize.rs``), accounts
  in order: creator (signer), amm_config, authority, pool_state, token_0_mint,
  token_1_mint, lp_mint, creator_token_0, creator_token_1, creator_lp_token,
  token_0_vault, token_1_vault, create_pool_fee, observation_state,
  token_program, token_0_program, token_1_program, associated_token_program,
  system_program, rent. The pool is the PDA ``[b"pool", amm_config, mint_0,
  mint_1]`` with ``mint_0 < mint_1`` byte-wise; every creation pays the
  ``create_pool_fee`` account, which is why snipers follow that one address.
* Meteora DLMM ``initialize_lb_pair(active_id: i32, bin_step: u16)``
  (``idls/dlmm.json``): lb_pair, bin_array_bitmap_extension (optional),
  token_mint_x, token_mint_y, reserve_x, reserve_y, oracle, preset_parameter,
  funder (signer), token_program, system_program, rent, event_authority,
  program. ``initialize_bin_array(index: i64)``: lb_pair, bin_array, funder,
  system_program. ``add_liquidity_by_weight(LiquidityParameterByWeight)``:
  position, lb_pair, bin_array_bitmap_extension, user_token_x, user_token_y,
  reserve_x, reserve_y, token_x_mint, token_y_mint, bin_array_lower,
  bin_array_upper, sender (signer), token_x_program, token_y_program,
  event_authority, program. Every pair of one bin step names that step's
  ``preset_parameter`` account, the address a DLMM launch watcher follows.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID

from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex.anchor import account_discriminator, instruction_discriminator
from order_engine.dex.meteora_dlmm_math import MAX_BIN_ID, MIN_BIN_ID, StaticParameters
from order_engine.dex.spl import ATA_PROGRAM_ID, TOKEN_PROGRAM_ID, associated_token_address

RENT_SYSVAR_ID = Pubkey.from_string("SysvarRent111111111111111111111111111111111")
# Raydium CPMM's create-pool fee receiver (mainnet): every initialize pays it.
CPMM_CREATE_POOL_FEE = Pubkey.from_string("DNXgeM9EiiaAbaWvwjHj9fQQLAX5ZsfHyvmYUNRAdNC8")
CPMM_LAUNCH_FEE_TIER = 2_500  # the 0.25 % tier, the usual one for new tokens
DLMM_LAUNCH_BIN_STEP = 80
DLMM_LAUNCH_BASE_FACTOR = 3_125  # base fee 3125 * 80 * 10 = 0.25 %

CPMM_INITIALIZE = instruction_discriminator("initialize")
DLMM_INITIALIZE_LB_PAIR = instruction_discriminator("initialize_lb_pair")
DLMM_INITIALIZE_BIN_ARRAY = instruction_discriminator("initialize_bin_array")
DLMM_ADD_LIQUIDITY_BY_WEIGHT = instruction_discriminator("add_liquidity_by_weight")

_CPMM_INIT = struct.Struct("<8sQQQ")
_DLMM_INIT_PAIR = struct.Struct("<8siH")
_DLMM_INIT_ARRAY = struct.Struct("<8sq")
_DLMM_LIQ_HEAD = struct.Struct("<8sQQiiI")
_DLMM_LIQ_BIN = struct.Struct("<iH")
PRESET_PARAMETER_DISCRIMINATOR = account_discriminator("PresetParameter")
# bin_step, base_factor, filter_period, decay_period, reduction_factor,
# variable_fee_control, max_volatility_accumulator, min_bin_id, max_bin_id, protocol_share
_PRESET = struct.Struct("<8sHHHHHIIiiH")


def _pda(seeds: list[bytes], program: Pubkey) -> Pubkey:
    address, _bump = Pubkey.find_program_address(seeds, program)
    return address


def _meta(key: Pubkey, *, writable: bool = False, signer: bool = False) -> AccountMeta:
    return AccountMeta(key, is_signer=signer, is_writable=writable)


# --- Raydium CPMM -----------------------------------------------------------------------


def cpmm_config_address(index: int) -> Pubkey:
    return _pda([b"amm_config", index.to_bytes(2, "big")], cpmm.PROGRAM_ID)


@dataclass(frozen=True, slots=True)
class CpmmPoolAddresses:
    pool: Pubkey
    token_0_mint: Pubkey
    token_1_mint: Pubkey
    token_0_vault: Pubkey
    token_1_vault: Pubkey
    lp_mint: Pubkey
    observation: Pubkey


def cpmm_pool_addresses(config: Pubkey, mint_a: Pubkey, mint_b: Pubkey) -> CpmmPoolAddresses:
    m0, m1 = sorted((mint_a, mint_b), key=bytes)
    pool = _pda([b"pool", bytes(config), bytes(m0), bytes(m1)], cpmm.PROGRAM_ID)
    return CpmmPoolAddresses(
        pool=pool,
        token_0_mint=m0,
        token_1_mint=m1,
        token_0_vault=cpmm_vault(pool, m0),
        token_1_vault=cpmm_vault(pool, m1),
        lp_mint=_pda([b"pool_lp_mint", bytes(pool)], cpmm.PROGRAM_ID),
        observation=_pda([b"observation", bytes(pool)], cpmm.PROGRAM_ID),
    )


def cpmm_vault(pool: Pubkey, mint: Pubkey) -> Pubkey:
    return _pda([b"pool_vault", bytes(pool), bytes(mint)], cpmm.PROGRAM_ID)


def cpmm_initialize_instruction(
    *,
    creator: Pubkey,
    config: Pubkey,
    pool: CpmmPoolAddresses,
    init_amount_0: int,
    init_amount_1: int,
    open_time: int = 0,
) -> Instruction:
    data = _CPMM_INIT.pack(CPMM_INITIALIZE, init_amount_0, init_amount_1, open_time)
    accounts = [
        _meta(creator, writable=True, signer=True),
        _meta(config),
        _meta(cpmm.AUTHORITY),
        _meta(pool.pool, writable=True),
        _meta(pool.token_0_mint),
        _meta(pool.token_1_mint),
        _meta(pool.lp_mint, writable=True),
        _meta(associated_token_address(creator, pool.token_0_mint), writable=True),
        _meta(associated_token_address(creator, pool.token_1_mint), writable=True),
        _meta(associated_token_address(creator, pool.lp_mint), writable=True),
        _meta(pool.token_0_vault, writable=True),
        _meta(pool.token_1_vault, writable=True),
        _meta(CPMM_CREATE_POOL_FEE, writable=True),
        _meta(pool.observation, writable=True),
        _meta(TOKEN_PROGRAM_ID),
        _meta(TOKEN_PROGRAM_ID),
        _meta(TOKEN_PROGRAM_ID),
        _meta(ATA_PROGRAM_ID),
        _meta(SYSTEM_PROGRAM_ID),
        _meta(RENT_SYSVAR_ID),
    ]
    return Instruction(cpmm.PROGRAM_ID, data, accounts)


def decode_cpmm_initialize(data: bytes) -> tuple[int, int, int]:
    if len(data) != _CPMM_INIT.size or data[:8] != CPMM_INITIALIZE:
        raise ValueError("not a CPMM initialize instruction")
    _d, amount_0, amount_1, open_time = _CPMM_INIT.unpack(data)
    return amount_0, amount_1, open_time


# --- Meteora DLMM -----------------------------------------------------------------------


def dlmm_preset_parameter(bin_step: int, base_factor: int) -> Pubkey:
    """``[b"preset_parameter", bin_step u16 LE, base_factor u16 LE]``."""
    return _pda(
        [b"preset_parameter", bin_step.to_bytes(2, "little"), base_factor.to_bytes(2, "little")],
        dlmm.PROGRAM_ID,
    )


def encode_preset_parameter(bin_step: int, params: StaticParameters) -> bytes:
    return _PRESET.pack(
        PRESET_PARAMETER_DISCRIMINATOR,
        bin_step,
        params.base_factor,
        params.filter_period,
        params.decay_period,
        params.reduction_factor,
        params.variable_fee_control,
        params.max_volatility_accumulator,
        params.min_bin_id,
        params.max_bin_id,
        params.protocol_share,
    )


def decode_preset_parameter(data: bytes) -> tuple[int, StaticParameters]:
    """(bin_step, the static parameters every pair made from this preset gets)."""
    if len(data) != _PRESET.size or data[:8] != PRESET_PARAMETER_DISCRIMINATOR:
        raise ValueError("not a DLMM PresetParameter account")
    _d, step, base, filt, decay, reduction, vfc, max_va, low, high, share = _PRESET.unpack(data)
    return step, StaticParameters(
        base_factor=base,
        filter_period=filt,
        decay_period=decay,
        reduction_factor=reduction,
        variable_fee_control=vfc,
        max_volatility_accumulator=max_va,
        min_bin_id=low,
        max_bin_id=high,
        protocol_share=share,
    )


def launch_preset() -> tuple[int, StaticParameters]:
    """The preset new pairs are made from (bin step 80, 0.25 % base fee, a variable
    fee as on Meteora's memecoin presets)."""
    step = DLMM_LAUNCH_BIN_STEP
    return step, StaticParameters(
        base_factor=DLMM_LAUNCH_BASE_FACTOR,
        variable_fee_control=7_500,
        max_volatility_accumulator=150_000,
        min_bin_id=MIN_BIN_ID // step,
        max_bin_id=MAX_BIN_ID // step,
    )


def dlmm_position_address(lb_pair: Pubkey, owner: Pubkey, lower_bin: int) -> Pubkey:
    return _pda(
        [b"position", bytes(lb_pair), bytes(owner), lower_bin.to_bytes(4, "little", signed=True)],
        dlmm.PROGRAM_ID,
    )


def dlmm_initialize_lb_pair_instruction(
    *,
    funder: Pubkey,
    mint_x: Pubkey,
    mint_y: Pubkey,
    bin_step: int,
    base_factor: int,
    active_id: int,
) -> Instruction:
    pair = dlmm.lb_pair_address(mint_x, mint_y, bin_step)
    accounts = [
        _meta(pair, writable=True),
        _meta(dlmm.PROGRAM_ID),  # no bitmap extension: Anchor's None
        _meta(mint_x),
        _meta(mint_y),
        _meta(dlmm.reserve_address(pair, mint_x), writable=True),
        _meta(dlmm.reserve_address(pair, mint_y), writable=True),
        _meta(dlmm.oracle_address(pair), writable=True),
        _meta(dlmm_preset_parameter(bin_step, base_factor)),
        _meta(funder, writable=True, signer=True),
        _meta(TOKEN_PROGRAM_ID),
        _meta(SYSTEM_PROGRAM_ID),
        _meta(RENT_SYSVAR_ID),
        _meta(dlmm.EVENT_AUTHORITY),
        _meta(dlmm.PROGRAM_ID),
    ]
    data = _DLMM_INIT_PAIR.pack(DLMM_INITIALIZE_LB_PAIR, active_id, bin_step)
    return Instruction(dlmm.PROGRAM_ID, data, accounts)


def decode_dlmm_initialize_lb_pair(data: bytes) -> tuple[int, int]:
    if len(data) != _DLMM_INIT_PAIR.size or data[:8] != DLMM_INITIALIZE_LB_PAIR:
        raise ValueError("not a DLMM initialize_lb_pair instruction")
    _d, active_id, bin_step = _DLMM_INIT_PAIR.unpack(data)
    return active_id, bin_step


def dlmm_initialize_bin_array_instruction(
    *, funder: Pubkey, lb_pair: Pubkey, index: int
) -> Instruction:
    accounts = [
        _meta(lb_pair),
        _meta(dlmm.bin_array_address(lb_pair, index), writable=True),
        _meta(funder, writable=True, signer=True),
        _meta(SYSTEM_PROGRAM_ID),
    ]
    data = _DLMM_INIT_ARRAY.pack(DLMM_INITIALIZE_BIN_ARRAY, index)
    return Instruction(dlmm.PROGRAM_ID, data, accounts)


def decode_dlmm_initialize_bin_array(data: bytes) -> int:
    if len(data) != _DLMM_INIT_ARRAY.size or data[:8] != DLMM_INITIALIZE_BIN_ARRAY:
        raise ValueError("not a DLMM initialize_bin_array instruction")
    index: int = _DLMM_INIT_ARRAY.unpack(data)[1]
    return index


@dataclass(frozen=True, slots=True)
class LiquidityByWeight:
    amount_x: int
    amount_y: int
    active_id: int
    max_active_bin_slippage: int
    bins: tuple[tuple[int, int], ...]  # (bin_id, weight)


def dlmm_add_liquidity_by_weight_instruction(
    *,
    sender: Pubkey,
    lb_pair: Pubkey,
    mint_x: Pubkey,
    mint_y: Pubkey,
    liquidity: LiquidityByWeight,
) -> Instruction:
    lower_bin = min(b for b, _ in liquidity.bins)
    upper_bin = max(b for b, _ in liquidity.bins)
    lower, upper = dlmm.bin_array_index(lower_bin), dlmm.bin_array_index(upper_bin)
    accounts = [
        _meta(dlmm_position_address(lb_pair, sender, lower_bin), writable=True),
        _meta(lb_pair, writable=True),
        _meta(dlmm.PROGRAM_ID),
        _meta(associated_token_address(sender, mint_x), writable=True),
        _meta(associated_token_address(sender, mint_y), writable=True),
        _meta(dlmm.reserve_address(lb_pair, mint_x), writable=True),
        _meta(dlmm.reserve_address(lb_pair, mint_y), writable=True),
        _meta(mint_x),
        _meta(mint_y),
        _meta(dlmm.bin_array_address(lb_pair, lower), writable=True),
        _meta(dlmm.bin_array_address(lb_pair, upper), writable=True),
        _meta(sender, signer=True),
        _meta(TOKEN_PROGRAM_ID),
        _meta(TOKEN_PROGRAM_ID),
        _meta(dlmm.EVENT_AUTHORITY),
        _meta(dlmm.PROGRAM_ID),
    ]
    return Instruction(dlmm.PROGRAM_ID, encode_liquidity_by_weight(liquidity), accounts)


def encode_liquidity_by_weight(liquidity: LiquidityByWeight) -> bytes:
    head = _DLMM_LIQ_HEAD.pack(
        DLMM_ADD_LIQUIDITY_BY_WEIGHT,
        liquidity.amount_x,
        liquidity.amount_y,
        liquidity.active_id,
        liquidity.max_active_bin_slippage,
        len(liquidity.bins),
    )
    return head + b"".join(_DLMM_LIQ_BIN.pack(b, w) for b, w in liquidity.bins)


def decode_liquidity_by_weight(data: bytes) -> LiquidityByWeight:
    if len(data) < _DLMM_LIQ_HEAD.size or data[:8] != DLMM_ADD_LIQUIDITY_BY_WEIGHT:
        raise ValueError("not a DLMM add_liquidity_by_weight instruction")
    _d, amount_x, amount_y, active, slippage, count = _DLMM_LIQ_HEAD.unpack_from(data)
    if len(data) != _DLMM_LIQ_HEAD.size + count * _DLMM_LIQ_BIN.size:
        raise ValueError(f"add_liquidity_by_weight: {count} bins do not match the data length")
    bins = tuple(
        _DLMM_LIQ_BIN.unpack_from(data, _DLMM_LIQ_HEAD.size + i * _DLMM_LIQ_BIN.size)
        for i in range(count)
    )
    return LiquidityByWeight(amount_x, amount_y, active, slippage, bins)


def spot_weights(active_id: int, span: int) -> tuple[tuple[int, int], ...]:
    """The SDK's "spot" strategy: equal weight in every bin within ``span`` of the
    active one."""
    return tuple((active_id + d, 1) for d in range(-span, span + 1))


def launch_witnesses() -> Sequence[tuple[str, Pubkey]]:
    """(venue, address) pairs that every pool creation on that venue names, as
    ``logsSubscribe(mentions=[address])`` / ``getSignaturesForAddress`` follow them."""
    return (
        ("raydium", CPMM_CREATE_POOL_FEE),
        ("meteora", dlmm_preset_parameter(DLMM_LAUNCH_BIN_STEP, DLMM_LAUNCH_BASE_FACTOR)),
    )
