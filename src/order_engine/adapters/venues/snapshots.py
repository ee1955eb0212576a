"""Pool snapshots: decoded pool state that quotes locally with the programs' own math.

They implement ``order_engine.domain.routing.PoolSnapshot``. Quoting is pure
integer arithmetic (the router calls it hundreds of times per decision);
``Decimal`` appears once per quote, for the reported price impact.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from order_engine.adapters.venues.listing import KIND_AMM_V4, KIND_CPMM, KIND_DLMM
from order_engine.dex import raydium_amm_v4 as amm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex.meteora_dlmm_math import (
    SCALE_OFFSET,
    DlmmError,
    DlmmSwap,
    StaticParameters,
    VariableParameters,
    price_from_id,
    swap_exact_in,
)
from order_engine.domain.errors import ErrorCode, InsufficientLiquidityError
from order_engine.domain.routing import PoolQuote

_EMPTY = (0, 0)


def impact_bps(ideal_out_num: int, ideal_out_den: int, out: int) -> Decimal:
    """``(ideal - out) / ideal`` in basis points, two decimals; ideal = num / den."""
    if ideal_out_num <= 0:
        return Decimal(0)
    hundredths = (ideal_out_num - out * ideal_out_den) * 1_000_000 // ideal_out_num
    return Decimal(hundredths).scaleb(-2)


def _no_liquidity(pool_id: str, detail: str) -> InsufficientLiquidityError:
    return InsufficientLiquidityError(
        f"insufficient liquidity in pool {pool_id}: {detail}",
        code=ErrorCode.INSUFFICIENT_LIQUIDITY,
    )


class _Base:
    __slots__ = ("input_mint", "output_mint", "pool_id", "venue")

    pool_kind = ""

    def __init__(self, venue: str, pool_id: str, input_mint: str, output_mint: str) -> None:
        self.venue = venue
        self.pool_id = pool_id
        self.input_mint = input_mint
        self.output_mint = output_mint

    def _quote(
        self,
        amount_in: int,
        amount_out: int,
        fee: int,
        impact: Decimal,
        accounts: tuple[str, ...] = (),
    ) -> PoolQuote:
        return PoolQuote(
            venue=self.venue,
            pool_id=self.pool_id,
            pool_kind=self.pool_kind,
            input_mint=self.input_mint,
            output_mint=self.output_mint,
            amount_in=amount_in,
            amount_out=amount_out,
            fee=fee,
            price_impact_bps=impact,
            accounts=accounts,
        )


class AmmV4Snapshot(_Base):
    """Raydium AMM v4: ``out = floor(R_out * in' / (R_in + in'))``, fee ceil(in * 25 / 10^4)."""

    __slots__ = ("fee_denominator", "fee_numerator", "reserve_in", "reserve_out")
    pool_kind = KIND_AMM_V4

    def __init__(
        self,
        *,
        venue: str,
        pool_id: str,
        input_mint: str,
        output_mint: str,
        reserve_in: int,
        reserve_out: int,
        fee_numerator: int = amm.SWAP_FEE_NUMERATOR,
        fee_denominator: int = amm.SWAP_FEE_DENOMINATOR,
    ) -> None:
        super().__init__(venue, pool_id, input_mint, output_mint)
        self.reserve_in = reserve_in
        self.reserve_out = reserve_out
        self.fee_numerator = fee_numerator
        self.fee_denominator = fee_denominator

    def _swap(self, amount_in: int) -> tuple[int, int]:
        out, fee = amm.swap_base_in(
            amount_in, self.reserve_in, self.reserve_out, self.fee_numerator, self.fee_denominator
        )
        if out >= self.reserve_out or (out == 0 and amount_in > 0):
            raise _no_liquidity(self.pool_id, f"{amount_in} in yields {out} out")
        return out, fee

    def amount_out(self, amount_in: int) -> int:
        return self._swap(amount_in)[0]

    def quote(self, amount_in: int) -> PoolQuote:
        out, fee = self._swap(amount_in)
        net = amount_in - fee
        return self._quote(
            amount_in, out, fee, impact_bps(net * self.reserve_out, self.reserve_in, out)
        )


class CpmmSnapshot(_Base):
    """Raydium CPMM: same curve, fee ``ceil(in * trade_fee_rate / 10^6)``."""

    __slots__ = ("reserve_in", "reserve_out", "trade_fee_rate")
    pool_kind = KIND_CPMM

    def __init__(
        self,
        *,
        venue: str,
        pool_id: str,
        input_mint: str,
        output_mint: str,
        reserve_in: int,
        reserve_out: int,
        trade_fee_rate: int,
    ) -> None:
        super().__init__(venue, pool_id, input_mint, output_mint)
        self.reserve_in = reserve_in
        self.reserve_out = reserve_out
        self.trade_fee_rate = trade_fee_rate

    def _swap(self, amount_in: int) -> cpmm.CpmmSwap:
        result = cpmm.swap_base_input(
            amount_in, self.reserve_in, self.reserve_out, self.trade_fee_rate
        )
        out = result.amount_out
        if out >= self.reserve_out or (out == 0 and amount_in > 0):
            raise _no_liquidity(self.pool_id, f"{amount_in} in yields {out} out")
        return result

    def amount_out(self, amount_in: int) -> int:
        return self._swap(amount_in).amount_out

    def quote(self, amount_in: int) -> PoolQuote:
        result = self._swap(amount_in)
        out = result.amount_out
        net = amount_in - result.trade_fee
        impact = impact_bps(net * self.reserve_out, self.reserve_in, out)
        return self._quote(amount_in, out, result.trade_fee, impact)


class DlmmSnapshot(_Base):
    """Meteora DLMM: the bin walk of ``quote_exact_in`` over the fetched bin arrays."""

    __slots__ = (
        "active_id",
        "bin_arrays",
        "bin_step",
        "bins",
        "bound",
        "now",
        "params",
        "swap_for_y",
        "v_params",
    )
    pool_kind = KIND_DLMM

    def __init__(
        self,
        *,
        venue: str,
        pool_id: str,
        input_mint: str,
        output_mint: str,
        swap_for_y: bool,
        active_id: int,
        bin_step: int,
        params: StaticParameters,
        v_params: VariableParameters,
        now: int,
        bins: Mapping[int, tuple[int, int]],
        bin_arrays: tuple[str, ...] = (),
    ) -> None:
        super().__init__(venue, pool_id, input_mint, output_mint)
        self.bin_arrays = bin_arrays  # the swap's remaining accounts, carried by each quote
        self.swap_for_y = swap_for_y
        self.active_id = active_id
        self.bin_step = bin_step
        self.params = params
        self.v_params = v_params
        self.now = now
        self.bins = bins
        side = 1 if swap_for_y else 0
        holding = [bin_id for bin_id, amounts in bins.items() if amounts[side] > 0]
        self.bound = (min(holding) if swap_for_y else max(holding)) if holding else None

    def amount_out(self, amount_in: int) -> int:
        return self._swap(amount_in).amount_out

    def _swap(self, amount_in: int) -> DlmmSwap:
        bins = self.bins
        try:
            result = swap_exact_in(
                amount_in=amount_in,
                swap_for_y=self.swap_for_y,
                active_id=self.active_id,
                bin_step=self.bin_step,
                params=self.params,
                v_params=self.v_params,
                now=self.now,
                get_bin=lambda bin_id: bins.get(bin_id, _EMPTY),
                liquidity_bound=self.bound,
            )
        except DlmmError as exc:
            raise _no_liquidity(self.pool_id, str(exc)) from None
        if result.amount_out == 0 and amount_in > 0:
            # The program would take the input (and fee) for nothing; as the
            # constant-product snapshots do, refuse to quote it.
            raise _no_liquidity(self.pool_id, f"{amount_in} in yields 0 out")
        return result

    def quote(self, amount_in: int) -> PoolQuote:
        result = self._swap(amount_in)
        price = price_from_id(self.active_id, self.bin_step)
        net = amount_in - result.fee
        if self.swap_for_y:
            impact = impact_bps(price * net, 1 << SCALE_OFFSET, result.amount_out)
        else:
            impact = impact_bps(net << SCALE_OFFSET, price, result.amount_out)
        return self._quote(amount_in, result.amount_out, result.fee, impact, self.bin_arrays)
