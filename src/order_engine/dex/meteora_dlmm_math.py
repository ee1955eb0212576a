"""Meteora DLMM swap math: bin prices, dynamic fees and the exact-in bin walk.

Sources (MeteoraAg/dlmm-sdk):

* ``programs/lb_clmm/src/math/u64x64_math.rs`` ``pow`` and
  ``math/price_math.rs`` ``get_price_from_id``: the price of bin ``id`` is
  ``(1 + bin_step/10^4)^id`` in Q64.64, by binary exponentiation on u128 with
  the base inverted when it is >= 1 (19 exponent bits, ``MAX_EXPONENTIAL``).
* ``commons/src/extensions/lb_pair.rs`` and ``programs/lb_clmm/src/state/
  lb_pair.rs``: base fee ``base_factor * bin_step * 10 * 10^power`` and
  variable fee ``ceil(vfc * (va * bin_step)^2 / 1e11)``, both in 1e9 units,
  total capped at ``MAX_FEE_RATE`` (10 %); ``compute_fee_from_amount`` =
  ``ceil(amount * rate / 1e9)`` (fee inside the amount) and ``compute_fee`` =
  ``ceil(amount * rate / (1e9 - rate))`` (fee on top of the amount).
* ``programs/lb_clmm/src/state/parameters.rs``: ``update_references`` (the
  filter and decay periods, ``va_ref = va * reduction_factor / 10^4``) and
  ``update_volatility_accumulator`` (``va = min(va_ref + |index_ref - id| *
  10^4, max_va)``), called before each bin.
* ``commons/src/extensions/bin.rs`` ``Bin::swap`` and ``commons/src/quote.rs``
  ``quote_exact_in``: within a bin ``out = floor(in' * price >> 64)`` (X for Y)
  or ``floor((in' << 64) / price)`` (Y for X); a bin is emptied when the input
  left exceeds its ``max_amount_in + fee``, otherwise it takes the rest; the
  active bin then moves one step (down when selling X for Y).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

SCALE_OFFSET = 64
ONE = 1 << SCALE_OFFSET
U128_MAX = (1 << 128) - 1
U64_MAX = (1 << 64) - 1
BASIS_POINT_MAX = 10_000
FEE_PRECISION = 1_000_000_000
MAX_FEE_RATE = 100_000_000
MAX_EXPONENTIAL = 0x80000
MIN_BIN_ID = -443_636
MAX_BIN_ID = 443_636

PAIR_INSUFFICIENT_LIQUIDITY = "PairInsufficientLiquidity"
MATH_OVERFLOW = "MathOverflow"


class DlmmError(Exception):
    """A program error, named as LBError names it (e.g. ``PairInsufficientLiquidity``)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def pow_q64(base: int, exp: int) -> int | None:
    """``u64x64_math::pow``: ``base^exp`` in Q64.64 with u128 overflow as ``None``."""
    if exp == 0:
        return ONE
    invert = exp < 0
    exp = -exp if invert else exp
    if exp >= MAX_EXPONENTIAL:
        return None
    squared = base
    result = ONE
    if squared >= result:
        squared = U128_MAX // squared
        invert = not invert
    for bit in range(19):
        if bit:
            squared = squared * squared
            if squared > U128_MAX:
                return None
            squared >>= SCALE_OFFSET
        if exp & (1 << bit):
            result = result * squared
            if result > U128_MAX:
                return None
            result >>= SCALE_OFFSET
    if result == 0:
        return None
    return U128_MAX // result if invert else result


@lru_cache(maxsize=65_536)
def price_from_id(bin_id: int, bin_step: int) -> int:
    """``get_price_from_id``: Q64.64 price of token X in token Y base units."""
    base = ONE + (bin_step << SCALE_OFFSET) // BASIS_POINT_MAX
    price = pow_q64(base, bin_id)
    if price is None:
        raise DlmmError(MATH_OVERFLOW, f"price of bin {bin_id} at bin step {bin_step}")
    return price


@dataclass(frozen=True, slots=True)
class StaticParameters:
    base_factor: int
    filter_period: int = 30
    decay_period: int = 600
    reduction_factor: int = 5_000
    variable_fee_control: int = 0
    max_volatility_accumulator: int = 350_000
    min_bin_id: int = MIN_BIN_ID
    max_bin_id: int = MAX_BIN_ID
    protocol_share: int = 500
    base_fee_power_factor: int = 0


@dataclass(slots=True)
class VariableParameters:
    volatility_accumulator: int = 0
    volatility_reference: int = 0
    index_reference: int = 0
    last_update_timestamp: int = 0

    def copy(self) -> VariableParameters:
        return VariableParameters(
            self.volatility_accumulator,
            self.volatility_reference,
            self.index_reference,
            self.last_update_timestamp,
        )

    def update_references(self, active_id: int, now: int, params: StaticParameters) -> None:
        elapsed = now - self.last_update_timestamp
        if elapsed >= params.filter_period:
            self.index_reference = active_id
            if elapsed < params.decay_period:
                self.volatility_reference = (
                    self.volatility_accumulator * params.reduction_factor // BASIS_POINT_MAX
                )
            else:
                self.volatility_reference = 0

    def update_volatility_accumulator(self, active_id: int, params: StaticParameters) -> None:
        accumulated = (
            self.volatility_reference + abs(self.index_reference - active_id) * BASIS_POINT_MAX
        )
        self.volatility_accumulator = min(accumulated, params.max_volatility_accumulator)


def base_fee_rate(params: StaticParameters, bin_step: int) -> int:
    power: int = 10**params.base_fee_power_factor
    return params.base_factor * bin_step * 10 * power


def variable_fee_rate(params: StaticParameters, bin_step: int, volatility_accumulator: int) -> int:
    if params.variable_fee_control <= 0:
        return 0
    square = (volatility_accumulator * bin_step) ** 2
    return -(-params.variable_fee_control * square // 100_000_000_000)


def total_fee_rate(params: StaticParameters, bin_step: int, volatility_accumulator: int) -> int:
    total = base_fee_rate(params, bin_step) + variable_fee_rate(
        params, bin_step, volatility_accumulator
    )
    return min(total, MAX_FEE_RATE)


def fee_from_amount(amount_with_fees: int, rate: int) -> int:
    """``compute_fee_from_amount``: the fee inside ``amount_with_fees`` (ceil)."""
    return (amount_with_fees * rate + FEE_PRECISION - 1) // FEE_PRECISION


def fee_for_amount(amount: int, rate: int) -> int:
    """``compute_fee``: the fee to add on top of ``amount`` (ceil)."""
    denominator = FEE_PRECISION - rate
    return (amount * rate + denominator - 1) // denominator


def amount_out_in_bin(amount_in: int, price: int, swap_for_y: bool) -> int:
    """``Bin::get_amount_out`` rounding down."""
    if swap_for_y:
        return (price * amount_in) >> SCALE_OFFSET
    return (amount_in << SCALE_OFFSET) // price


def max_amount_in_bin(amount_x: int, amount_y: int, price: int, swap_for_y: bool) -> int:
    """``Bin::get_max_amount_in`` rounding up (the input that empties the bin)."""
    if swap_for_y:
        return -(-(amount_y << SCALE_OFFSET) // price)
    return (amount_x * price + ONE - 1) >> SCALE_OFFSET


@dataclass(frozen=True, slots=True)
class BinFill:
    bin_id: int
    amount_in: int  # into the bin's reserves, fee excluded
    amount_out: int
    fee: int


@dataclass(frozen=True, slots=True)
class DlmmSwap:
    amount_in: int
    amount_out: int
    fee: int
    protocol_fee: int
    end_active_id: int
    v_params: VariableParameters
    fills: tuple[BinFill, ...] = field(default=())


BinReader = Callable[[int], tuple[int, int]]


def swap_exact_in(  # noqa: PLR0915 - the bin loop is inlined: it is the quote hot path
    *,
    amount_in: int,
    swap_for_y: bool,
    active_id: int,
    bin_step: int,
    params: StaticParameters,
    v_params: VariableParameters,
    now: int,
    get_bin: BinReader,
    liquidity_bound: int | None,
    record_fills: bool = False,
) -> DlmmSwap:
    """Walk bins from ``active_id`` until ``amount_in`` is used (``quote_exact_in``).

    ``liquidity_bound`` is the last bin, in the direction of the swap, that holds
    the output token; walking past it with input left raises
    ``PairInsufficientLiquidity``. ``v_params`` is not modified.
    """
    if liquidity_bound is None:
        raise DlmmError(PAIR_INSUFFICIENT_LIQUIDITY, "no bin holds the output token")
    v = v_params.copy()
    v.update_references(active_id, now, params)
    step = -1 if swap_for_y else 1
    lowest = max(params.min_bin_id, MIN_BIN_ID)
    highest = min(params.max_bin_id, MAX_BIN_ID)
    base_fee = base_fee_rate(params, bin_step)
    vfc = params.variable_fee_control
    max_va = params.max_volatility_accumulator
    share = params.protocol_share
    left = amount_in
    total_out = total_fee = total_protocol = 0
    fills: list[BinFill] = []
    active = active_id
    while left > 0:
        if (active < liquidity_bound) if swap_for_y else (active > liquidity_bound):
            raise DlmmError(
                PAIR_INSUFFICIENT_LIQUIDITY,
                f"bins exhausted at bin {active} with {left} input left",
            )
        va = min(v.volatility_reference + abs(v.index_reference - active) * 10_000, max_va)
        v.volatility_accumulator = va
        amount_x, amount_y = get_bin(active)
        max_out = amount_y if swap_for_y else amount_x
        if max_out > 0:
            price = price_from_id(active, bin_step)
            rate = base_fee
            if vfc > 0:
                rate += -(-vfc * (va * bin_step) ** 2 // 100_000_000_000)
            rate = min(rate, MAX_FEE_RATE)
            if swap_for_y:
                max_in = -(-(amount_y << SCALE_OFFSET) // price)
            else:
                max_in = (amount_x * price + ONE - 1) >> SCALE_OFFSET
            denominator = FEE_PRECISION - rate
            max_fee = (max_in * rate + denominator - 1) // denominator
            if left > max_in + max_fee:
                used, out, fee = max_in + max_fee, max_out, max_fee
            else:
                fee = (left * rate + FEE_PRECISION - 1) // FEE_PRECISION
                after = left - fee
                out = (price * after) >> SCALE_OFFSET if swap_for_y else (after << 64) // price
                out = min(out, max_out)
                used = left
            left -= used
            total_out += out
            total_fee += fee
            total_protocol += fee * share // BASIS_POINT_MAX
            if record_fills:
                fills.append(BinFill(active, used - fee, out, fee))
        if left > 0:
            active += step
            if not lowest <= active <= highest:
                raise DlmmError(PAIR_INSUFFICIENT_LIQUIDITY, f"bin {active} out of range")
    v.last_update_timestamp = now
    return DlmmSwap(
        amount_in=amount_in,
        amount_out=total_out,
        fee=total_fee,
        protocol_fee=total_protocol,
        end_active_id=active,
        v_params=v,
        fills=tuple(fills),
    )
