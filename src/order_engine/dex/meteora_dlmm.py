"""Meteora DLMM (``lb_clmm``): program id, account layouts, PDAs and the swap instruction.

Sources (MeteoraAg/dlmm-sdk):

* ``idls/dlmm.json`` (program ``LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo``):
  ``swap(amount_in: u64, min_amount_out: u64)`` and its accounts, in order:
  lb_pair, bin_array_bitmap_extension (optional), reserve_x, reserve_y,
  user_token_in, user_token_out, token_x_mint, token_y_mint, oracle,
  host_fee_in (optional), user (signer), token_x_program, token_y_program,
  event_authority, program; the bin arrays to walk follow as remaining accounts.
* ``LbPair`` (904 bytes with the discriminator; zero-copy, ``repr(C)``) and
  ``BinArray`` (``index: i64, version: u8, _padding: [u8; 7], lb_pair,
  bins: [Bin; 70]``, a ``Bin`` being 144 bytes), as in ``commons`` and the IDL.
* ``commons/src/pda.rs`` / ``seeds.rs``: bin array PDA ``[b"bin_array",
  lb_pair, index as i64 LE]``, oracle ``[b"oracle", lb_pair]``; the pair
  ``[min(mint_x, mint_y), max(...), bin_step LE]``, reserves ``[lb_pair, mint]``.
* ``commons/src/constants.rs``: 70 bins per array, bitmap of 1024 arrays
  (``BIN_ARRAY_BITMAP_SIZE = 512``, array ``i`` at bit ``i + 512``).
* ``programs/lb_clmm/src/errors.rs``: ``ExceededAmountSlippageTolerance``,
  ``PairInsufficientLiquidity``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import lru_cache

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from order_engine.dex.anchor import (
    account_discriminator,
    event_authority,
    instruction_discriminator,
)
from order_engine.dex.meteora_dlmm_math import (
    MAX_BIN_ID,
    MIN_BIN_ID,
    StaticParameters,
    VariableParameters,
    price_from_id,
)
from order_engine.dex.spl import TOKEN_PROGRAM_ID

_DEFAULT_KEY = Pubkey.default()
PROGRAM_ID = Pubkey.from_string("LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo")
EVENT_AUTHORITY = event_authority(PROGRAM_ID)

LB_PAIR_LEN = 904
BIN_LEN = 144
MAX_BIN_PER_ARRAY = 70
BIN_ARRAY_LEN = 56 + BIN_LEN * MAX_BIN_PER_ARRAY
BIN_ARRAY_BITMAP_SIZE = 512
ORACLE_LEN = 32
SWAP_FIXED_ACCOUNTS = 15

EXCEEDED_AMOUNT_SLIPPAGE_TOLERANCE = "ExceededAmountSlippageTolerance"
PAIR_INSUFFICIENT_LIQUIDITY = "PairInsufficientLiquidity"
BIN_ARRAY_NOT_FOUND = "BinArrayNotFound"
INSUFFICIENT_OUT_AMOUNT = "InsufficientOutAmount"
INVALID_TOKEN_MINT = "InvalidTokenMint"  # noqa: S105 - an error name
POOL_DISABLED = "PoolDisabled"

LB_PAIR_DISCRIMINATOR = account_discriminator("LbPair")
BIN_ARRAY_DISCRIMINATOR = account_discriminator("BinArray")
ORACLE_DISCRIMINATOR = account_discriminator("Oracle")
SWAP_DISCRIMINATOR = instruction_discriminator("swap")

_STATIC = struct.Struct("<HHHHIIiiHB5x")  # 32 bytes at offset 8
_VARIABLE = struct.Struct("<IIi4xq8x")  # 32 bytes at offset 40
_CORE = struct.Struct("<B2sBiHBB2sBB")  # 16 bytes at offset 72: bump .. on/off control
_FEES = struct.Struct("<QQ")  # protocol_fee at 216
_BITMAP = struct.Struct("<16Q")  # at 584
_I64 = struct.Struct("<q")
_BIN_AMOUNTS = struct.Struct("<QQ")
_BIN = struct.Struct("<QQ16s16s")  # amounts, price (u128 LE), liquidity_supply
_SWAP = struct.Struct("<8sQQ")
_OFF_MINTS, _OFF_FEES, _OFF_ORACLE, _OFF_BITMAP, _OFF_LAST = 88, 216, 552, 584, 712
_OFF_CREATOR = 848


@dataclass(frozen=True, slots=True)
class LbPair:
    parameters: StaticParameters
    v_parameters: VariableParameters
    active_id: int
    bin_step: int
    token_x_mint: Pubkey
    token_y_mint: Pubkey
    reserve_x: Pubkey
    reserve_y: Pubkey
    oracle: Pubkey
    bin_array_bitmap: tuple[int, ...] = field(default=(0,) * 16)
    protocol_fee_x: int = 0
    protocol_fee_y: int = 0
    status: int = 0  # 0 = enabled
    pair_type: int = 0  # 0 = permissionless
    bump: int = 255
    last_updated_at: int = 0
    creator: Pubkey = _DEFAULT_KEY

    def bin_array_indices(self) -> list[int]:
        """Indices of the bin arrays the bitmap marks as holding liquidity, ascending."""
        found: list[int] = []
        for limb_index, limb in enumerate(self.bin_array_bitmap):
            bits = limb
            while bits:
                low = bits & -bits
                found.append(limb_index * 64 + low.bit_length() - 1 - BIN_ARRAY_BITMAP_SIZE)
                bits ^= low
        return found


def encode_lb_pair(pair: LbPair) -> bytes:
    buf = bytearray(LB_PAIR_LEN)
    buf[:8] = LB_PAIR_DISCRIMINATOR
    p = pair.parameters
    _STATIC.pack_into(
        buf,
        8,
        p.base_factor,
        p.filter_period,
        p.decay_period,
        p.reduction_factor,
        p.variable_fee_control,
        p.max_volatility_accumulator,
        p.min_bin_id,
        p.max_bin_id,
        p.protocol_share,
        p.base_fee_power_factor,
    )
    write_variable_parameters(buf, pair.v_parameters)
    _CORE.pack_into(
        buf,
        72,
        pair.bump,
        pair.bin_step.to_bytes(2, "little"),
        pair.pair_type,
        pair.active_id,
        pair.bin_step,
        pair.status,
        0,
        bytes(2),
        0,
        0,
    )
    for index, key in enumerate(
        (pair.token_x_mint, pair.token_y_mint, pair.reserve_x, pair.reserve_y)
    ):
        buf[_OFF_MINTS + 32 * index : _OFF_MINTS + 32 * (index + 1)] = bytes(key)
    _FEES.pack_into(buf, _OFF_FEES, pair.protocol_fee_x, pair.protocol_fee_y)
    buf[_OFF_ORACLE : _OFF_ORACLE + 32] = bytes(pair.oracle)
    _BITMAP.pack_into(buf, _OFF_BITMAP, *pair.bin_array_bitmap)
    _I64.pack_into(buf, _OFF_LAST, pair.last_updated_at)
    buf[_OFF_CREATOR : _OFF_CREATOR + 32] = bytes(pair.creator)
    return bytes(buf)


def write_variable_parameters(buf: bytearray, v: VariableParameters) -> None:
    _VARIABLE.pack_into(
        buf,
        40,
        v.volatility_accumulator,
        v.volatility_reference,
        v.index_reference,
        v.last_update_timestamp,
    )


def write_swap_state(
    buf: bytearray, active_id: int, v: VariableParameters, protocol_fee: tuple[int, int]
) -> None:
    """Patch what a swap changes in an ``LbPair``: v-parameters, active id, protocol fee."""
    write_variable_parameters(buf, v)
    struct.pack_into("<i", buf, 76, active_id)
    _FEES.pack_into(buf, _OFF_FEES, *protocol_fee)


# Decoding is pure, and between two trades an account's bytes do not change: the
# venue client and the simulated program both decode the same few accounts for
# every quote and swap, so the decoded values are kept per account content.
_DECODED = 512


def decode_lb_pair(data: bytes) -> LbPair:
    return _decode_lb_pair(bytes(data))


@lru_cache(maxsize=_DECODED)
def _decode_lb_pair(data: bytes) -> LbPair:
    if len(data) != LB_PAIR_LEN or data[:8] != LB_PAIR_DISCRIMINATOR:
        raise ValueError("not a DLMM LbPair account")
    s = _STATIC.unpack_from(data, 8)
    va, vr, iref, last = _VARIABLE.unpack_from(data, 40)
    bump, _seed, pair_type, active_id, bin_step, status, *_rest = _CORE.unpack_from(data, 72)
    keys = [
        Pubkey.from_bytes(data[_OFF_MINTS + 32 * i : _OFF_MINTS + 32 * (i + 1)]) for i in range(4)
    ]
    fee_x, fee_y = _FEES.unpack_from(data, _OFF_FEES)
    return LbPair(
        parameters=StaticParameters(*s),
        v_parameters=VariableParameters(va, vr, iref, last),
        active_id=active_id,
        bin_step=bin_step,
        token_x_mint=keys[0],
        token_y_mint=keys[1],
        reserve_x=keys[2],
        reserve_y=keys[3],
        oracle=Pubkey.from_bytes(data[_OFF_ORACLE : _OFF_ORACLE + 32]),
        bin_array_bitmap=_BITMAP.unpack_from(data, _OFF_BITMAP),
        protocol_fee_x=fee_x,
        protocol_fee_y=fee_y,
        status=status,
        pair_type=pair_type,
        bump=bump,
        last_updated_at=_I64.unpack_from(data, _OFF_LAST)[0],
        creator=Pubkey.from_bytes(data[_OFF_CREATOR : _OFF_CREATOR + 32]),
    )


def bitmap_with(bitmap: tuple[int, ...], indices: list[int]) -> tuple[int, ...]:
    limbs = list(bitmap)
    for index in indices:
        offset = index + BIN_ARRAY_BITMAP_SIZE
        if not 0 <= offset < 1024:
            raise ValueError(f"bin array {index} is outside the internal bitmap")
        limbs[offset // 64] |= 1 << (offset % 64)
    return tuple(limbs)


def bin_array_index(bin_id: int) -> int:
    """``BinArray::bin_id_to_bin_array_index``: floor(bin_id / 70)."""
    return bin_id // MAX_BIN_PER_ARRAY


def bin_array_bounds(index: int) -> tuple[int, int]:
    lower = index * MAX_BIN_PER_ARRAY
    return lower, lower + MAX_BIN_PER_ARRAY - 1


def encode_bin_array(
    index: int, lb_pair: Pubkey, bin_step: int, amounts: list[tuple[int, int]]
) -> bytes:
    """A ``BinArray`` holding ``amounts[i] = (x, y)`` for bin ``index * 70 + i``."""
    if len(amounts) != MAX_BIN_PER_ARRAY:
        raise ValueError(f"a bin array holds {MAX_BIN_PER_ARRAY} bins, got {len(amounts)}")
    buf = bytearray(BIN_ARRAY_LEN)
    buf[:8] = BIN_ARRAY_DISCRIMINATOR
    _I64.pack_into(buf, 8, index)
    buf[16] = 1  # version
    buf[24:56] = bytes(lb_pair)
    lower, _upper = bin_array_bounds(index)
    for slot, (amount_x, amount_y) in enumerate(amounts):
        bin_id = lower + slot
        price = price_from_id(bin_id, bin_step) if MIN_BIN_ID <= bin_id <= MAX_BIN_ID else 0
        # Liquidity shares are tracked in Y terms, scaled by 2^64, as the program does.
        liquidity = (amount_x * price + (amount_y << 64)) if price else 0
        _BIN.pack_into(
            buf,
            56 + BIN_LEN * slot,
            amount_x,
            amount_y,
            price.to_bytes(16, "little"),
            min(liquidity, (1 << 128) - 1).to_bytes(16, "little"),
        )
    return bytes(buf)


def decode_bin_array(data: bytes) -> tuple[int, Pubkey, list[tuple[int, int]]]:
    """(index, lb_pair, [(amount_x, amount_y)] * 70)."""
    index, pair, amounts = _decode_bin_array(bytes(data))
    return index, pair, list(amounts)  # the caller's own list: the cached tuple stays intact


@lru_cache(maxsize=_DECODED)
def _decode_bin_array(data: bytes) -> tuple[int, Pubkey, tuple[tuple[int, int], ...]]:
    if len(data) != BIN_ARRAY_LEN or data[:8] != BIN_ARRAY_DISCRIMINATOR:
        raise ValueError("not a DLMM BinArray account")
    index = _I64.unpack_from(data, 8)[0]
    amounts = tuple(
        _BIN_AMOUNTS.unpack_from(data, 56 + BIN_LEN * i) for i in range(MAX_BIN_PER_ARRAY)
    )
    return index, Pubkey.from_bytes(data[24:56]), amounts


def write_bin_amounts(buf: bytearray, slot: int, amount_x: int, amount_y: int) -> None:
    _BIN_AMOUNTS.pack_into(buf, 56 + BIN_LEN * slot, amount_x, amount_y)


def read_bin_amounts(data: bytes | bytearray, slot: int) -> tuple[int, int]:
    x, y = _BIN_AMOUNTS.unpack_from(data, 56 + BIN_LEN * slot)
    return x, y


def encode_oracle() -> bytes:
    """A freshly initialised ``Oracle`` header (idx, active_size, length = 0)."""
    return ORACLE_DISCRIMINATOR + bytes(ORACLE_LEN - 8)


@lru_cache(maxsize=4096)
def bin_array_address(lb_pair: Pubkey, index: int) -> Pubkey:
    address, _bump = Pubkey.find_program_address(
        [b"bin_array", bytes(lb_pair), index.to_bytes(8, "little", signed=True)], PROGRAM_ID
    )
    return address


def lb_pair_address(mint_x: Pubkey, mint_y: Pubkey, bin_step: int) -> Pubkey:
    low, high = sorted((bytes(mint_x), bytes(mint_y)))
    address, _bump = Pubkey.find_program_address(
        [low, high, bin_step.to_bytes(2, "little")], PROGRAM_ID
    )
    return address


def reserve_address(lb_pair: Pubkey, mint: Pubkey) -> Pubkey:
    address, _bump = Pubkey.find_program_address([bytes(lb_pair), bytes(mint)], PROGRAM_ID)
    return address


def oracle_address(lb_pair: Pubkey) -> Pubkey:
    address, _bump = Pubkey.find_program_address([b"oracle", bytes(lb_pair)], PROGRAM_ID)
    return address


def encode_swap(amount_in: int, min_amount_out: int) -> bytes:
    return _SWAP.pack(SWAP_DISCRIMINATOR, amount_in, min_amount_out)


def decode_swap(data: bytes) -> tuple[int, int]:
    if len(data) != _SWAP.size or data[:8] != SWAP_DISCRIMINATOR:
        raise ValueError("not a DLMM swap instruction")
    _d, amount_in, min_out = _SWAP.unpack(data)
    return amount_in, min_out


@dataclass(frozen=True, slots=True)
class DlmmKeys:
    lb_pair: Pubkey
    token_x_mint: Pubkey
    token_y_mint: Pubkey
    reserve_x: Pubkey
    reserve_y: Pubkey
    oracle: Pubkey

    @classmethod
    def of(cls, lb_pair: Pubkey, pair: LbPair) -> DlmmKeys:
        return cls(
            lb_pair,
            pair.token_x_mint,
            pair.token_y_mint,
            pair.reserve_x,
            pair.reserve_y,
            pair.oracle,
        )


def swap_instruction(
    *,
    keys: DlmmKeys,
    user_token_in: Pubkey,
    user_token_out: Pubkey,
    user: Pubkey,
    bin_arrays: list[Pubkey],
    amount_in: int,
    min_amount_out: int,
) -> Instruction:
    def meta(key: Pubkey, writable: bool) -> AccountMeta:
        return AccountMeta(key, is_signer=False, is_writable=writable)

    accounts = [
        meta(keys.lb_pair, True),
        meta(PROGRAM_ID, False),  # bin_array_bitmap_extension: None
        meta(keys.reserve_x, True),
        meta(keys.reserve_y, True),
        meta(user_token_in, True),
        meta(user_token_out, True),
        meta(keys.token_x_mint, False),
        meta(keys.token_y_mint, False),
        meta(keys.oracle, True),
        meta(PROGRAM_ID, False),  # host_fee_in: None
        AccountMeta(user, is_signer=True, is_writable=False),
        meta(TOKEN_PROGRAM_ID, False),
        meta(TOKEN_PROGRAM_ID, False),
        meta(EVENT_AUTHORITY, False),
        meta(PROGRAM_ID, False),
        *(meta(address, True) for address in bin_arrays),
    ]
    return Instruction(PROGRAM_ID, encode_swap(amount_in, min_amount_out), accounts)
