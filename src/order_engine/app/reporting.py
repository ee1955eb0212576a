"""What clients see: quotes, plans and fills in UI units, and the realised fill.

Amounts in events are decimal strings in UI units (``"10"`` SOL,
``"1498.123456"`` USDC) so that no client has to know decimals; base units are
alongside with a ``Raw`` suffix where precision matters.

The fill is read from the chain's balance changes, never from the quote: what
the wallet actually paid and received in the landed transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from order_engine.dex.spl import TOKEN_ACCOUNT_RENT, priority_fee_lamports
from order_engine.domain.order import wire_time
from order_engine.domain.routing import PoolQuote, PoolSnapshot, RoutePlan
from order_engine.domain.tokens import SOL, Token, TokenRegistry, ui_price
from order_engine.ports.chain import TransactionResult

__all__ = ["Fill", "Presenter", "fmt", "realised_fill", "ui_amount", "wire_time"]


def fmt(value: Decimal) -> str:
    """Plain decimal notation without exponent or trailing zeros."""
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".") or "0"


def ui_amount(token: Token, base_units: int) -> str:
    """``base_units`` of ``token`` as clients see an amount (``"1.5"`` SOL)."""
    return fmt(token.to_ui(base_units))


class Presenter:
    def __init__(self, tokens: TokenRegistry) -> None:
        self.tokens = tokens

    def amount(self, mint: str, base_units: int) -> str:
        return ui_amount(self.tokens.by_mint(mint), base_units)

    def symbol(self, mint: str) -> str:
        return self.tokens.by_mint(mint).symbol

    def quote(self, q: PoolQuote) -> dict[str, Any]:
        return {
            "venue": q.venue,
            "pool": q.pool_id,
            "poolKind": q.pool_kind,
            "inputToken": self.symbol(q.input_mint),
            "outputToken": self.symbol(q.output_mint),
            "amountIn": self.amount(q.input_mint, q.amount_in),
            "amountOut": self.amount(q.output_mint, q.amount_out),
            "amountOutRaw": str(q.amount_out),
            "fee": self.amount(q.input_mint, q.fee),
            "priceImpactBps": f"{q.price_impact_bps:.2f}",
        }

    def unfilled(self, pool: PoolSnapshot, amount_in: int, reason: str) -> dict[str, Any]:
        """A pool that was asked but cannot fill ``amount_in`` alone."""
        return {
            "venue": pool.venue,
            "pool": pool.pool_id,
            "poolKind": pool.pool_kind,
            "inputToken": self.symbol(pool.input_mint),
            "outputToken": self.symbol(pool.output_mint),
            "amountIn": self.amount(pool.input_mint, amount_in),
            "reason": reason,
        }

    def plan(self, plan: RoutePlan, output_mint: str) -> dict[str, Any]:
        return {
            "dex": plan.venue,
            "kind": "split" if plan.is_split else ("two-hop" if len(plan.hops) > 1 else "single"),
            "legs": [
                {**self.quote(leg.quote), "percent": leg.share_bps / 100, "hop": i + 1}
                for i, hop in enumerate(plan.hops)
                for leg in hop
            ],
            "expectedAmountOut": self.amount(output_mint, plan.expected_out),
            "minAmountOut": self.amount(output_mint, plan.min_out),
            "expectedAmountOutRaw": str(plan.expected_out),
            "minAmountOutRaw": str(plan.min_out),
            "priceImpactBps": f"{plan.price_impact_bps:.2f}",
            "reason": plan.reason,
        }


@dataclass(frozen=True, slots=True)
class Fill:
    amount_in: int
    amount_out: int
    fee_lamports: int
    slot: int
    compute_unit_limit: int = 0  # what the transaction bid: the priority fee's terms
    compute_unit_price: int = 0  # micro-lamports per compute unit

    def to_details(
        self, token_in: Token, token_out: Token, signature: str, dex: str
    ) -> dict[str, Any]:
        return {
            "txHash": signature,
            "dex": dex,
            "amountIn": ui_amount(token_in, self.amount_in),
            "amountOut": ui_amount(token_out, self.amount_out),
            "amountInRaw": str(self.amount_in),
            "amountOutRaw": str(self.amount_out),
            "executedPrice": fmt(
                round(ui_price(self.amount_in, token_in, self.amount_out, token_out), 12)
            ),
            "feeLamports": self.fee_lamports,
            # The priority part of the fee, as the runtime charges it: ceil(limit x price / 1e6).
            "priorityFeeLamports": priority_fee_lamports(
                self.compute_unit_limit, self.compute_unit_price
            ),
            "computeUnitPrice": self.compute_unit_price,
            "slot": self.slot,
        }


def _token_delta(result: TransactionResult, owner: str, mint: str) -> int:
    pre = sum(b.amount for b in result.pre_token_balances if b.owner == owner and b.mint == mint)
    post = sum(b.amount for b in result.post_token_balances if b.owner == owner and b.mint == mint)
    return post - pre


def realised_fill(
    result: TransactionResult,
    *,
    owner: str,
    input_mint: str,
    output_mint: str,
    compute_budget: tuple[int, int] = (0, 0),
) -> Fill:
    """Amounts the owner actually paid and received in this transaction.

    SOL moves as lamports and as wrapped SOL, so its side is the owner's SOL
    *value*: the fee payer's lamport change with the fee added back, plus the
    change of its wSOL balance. Rent is not part of the swap: the rent
    deposited into token accounts this transaction created is added back, and
    the rent a closed account returned is taken out. Without the last two, a
    wSOL account left over from an earlier order (a two-hop route through SOL
    keeps the first hop's surplus there) would be closed by the next SOL order
    and counted, surplus and rent, as part of its fill.
    """
    before = {(b.owner, b.mint) for b in result.pre_token_balances if b.owner == owner}
    after = {(b.owner, b.mint) for b in result.post_token_balances if b.owner == owner}
    rent_moved = TOKEN_ACCOUNT_RENT * (len(after - before) - len(before - after))
    sol_delta = (
        result.post_lamports
        - result.pre_lamports
        + result.fee
        + rent_moved
        + _token_delta(result, owner, SOL.mint)
    )
    spent = -sol_delta if input_mint == SOL.mint else -_token_delta(result, owner, input_mint)
    received = sol_delta if output_mint == SOL.mint else _token_delta(result, owner, output_mint)
    limit, price = compute_budget
    return Fill(
        amount_in=spent,
        amount_out=received,
        fee_lamports=result.fee,
        slot=result.slot,
        compute_unit_limit=limit,
        compute_unit_price=price,
    )
