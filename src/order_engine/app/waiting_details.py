"""What the events of a waiting order say: the ``open`` event names what it waits
for, the ``pending`` event the per-order settings. Plain wire values (decimal
strings, RFC 3339 times), as every event detail is."""

from __future__ import annotations

from typing import Any

from order_engine.app.order_terms import Resolved
from order_engine.app.reporting import ui_amount, wire_time
from order_engine.domain.order import Order
from order_engine.domain.terms import LimitTerms, PriorityFee, SniperTerms, price_text
from order_engine.domain.tokens import Token


def fee_view(fee: PriorityFee) -> str | int:
    return "auto" if fee.micro_lamports is None else fee.micro_lamports


def settings_details(options: Resolved) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    if options.max_price_impact_bps is not None:
        shown["maxPriceImpactBps"] = options.max_price_impact_bps
    if options.priority_fee is not None:
        shown["priorityFee"] = fee_view(options.priority_fee)
    return shown


def terms_view(order: Order, output: Token) -> dict[str, Any]:
    """The terms as the API shows them (``GET`` and the ``open`` event alike)."""
    shown: dict[str, Any] = {}
    terms = order.terms
    if isinstance(terms, LimitTerms):
        shown["limitPrice"] = price_text(terms.limit_price)
        shown["minAmountOut"] = ui_amount(output, terms.min_amount_out)
        shown["minAmountOutRaw"] = str(terms.min_amount_out)
    elif isinstance(terms, SniperTerms):
        shown["minLiquidityRaw"] = None if terms.min_liquidity is None else str(terms.min_liquidity)
        shown["requireMintAuthorityRevoked"] = terms.require_mint_authority_revoked
        shown["requireFreezeAuthorityRevoked"] = terms.require_freeze_authority_revoked
    if order.expires_at is not None:
        shown["expiresAt"] = wire_time(order.expires_at)
    return shown


def open_details(order: Order, output: Token) -> dict[str, Any]:
    waiting_for = (
        "price: the whole amount's executable output reaching minAmountOut"
        if isinstance(order.terms, LimitTerms)
        else "pool: a new pool for the output token that passes the filters"
    )
    return {"waitingFor": waiting_for, **terms_view(order, output)}


def options_view(order: Order, output: Token) -> dict[str, Any]:
    """Everything beyond the swap that an order carries, for ``GET`` (only what is set)."""
    shown = terms_view(order, output)
    if order.max_price_impact_bps is not None:
        shown["maxPriceImpactBps"] = order.max_price_impact_bps
    if order.priority_fee is not None:
        shown["priorityFee"] = fee_view(order.priority_fee)
    return shown
