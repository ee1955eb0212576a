"""An order as a client sends it (a POST body, or the first WebSocket message)
turned into a validated ``OrderRequest``, the same way for both transports.

JSON numbers are parsed as ``Decimal``, never as floats: ``10000000000.0000001``
USDC must be refused for its seventh decimal, not rounded to a float that
quietly drops it. Every refusal is a ``RequestProblem`` or a domain
``ValidationError`` naming what was expected and what arrived.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pydantic

from order_engine.api.errors import ORDER_SHAPE, RequestProblem, describe_validation
from order_engine.api.schemas import ExecuteOrderRequest
from order_engine.app.order_terms import OrderOptions
from order_engine.app.orders import OrderRequest, OrderService
from order_engine.domain.errors import ErrorCode

# Integers longer than this stay exact as Decimal instead of meeting Python's
# int-from-string digit limit; validation then refuses them as too large.
_MAX_INT_DIGITS = 40


def _exact_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


def require_json_content_type(content_type: str | None) -> None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    got = repr(content_type[:60]) if content_type else "no Content-Type"
    raise RequestProblem(
        415,
        "unsupported_media_type",
        f"expected Content-Type: application/json, got {got}",
    )


def load_json(raw: bytes | str) -> Any:
    """Parse a JSON document (UTF-8) with exact numbers; NaN and Infinity come back
    as ``Decimal`` so that the amount check can say they are not finite."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise _not_json(f"not UTF-8 at byte {exc.start}") from None
    if not text.strip():
        raise RequestProblem(
            422,
            ErrorCode.INVALID_REQUEST,
            f"request body is empty: expected {ORDER_SHAPE}",
            [{"field": "body", "message": "empty"}],
        )
    try:
        return json.loads(text, parse_float=Decimal, parse_int=_exact_int, parse_constant=Decimal)
    except json.JSONDecodeError as exc:
        raise _not_json(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise _not_json("nested too deeply") from None


def _not_json(why: str) -> RequestProblem:
    return RequestProblem(
        422,
        ErrorCode.INVALID_REQUEST,
        f"request body is not valid JSON ({why}): expected {ORDER_SHAPE}",
        [{"field": "body", "message": f"not valid JSON: {why}"}],
    )


def parse_order(raw: bytes | str, orders: OrderService) -> OrderRequest:
    """Raises ``RequestProblem`` for a malformed body and ``EngineError`` (a
    ``ValidationError`` or ``NoRouteError``) for an order the engine refuses."""
    return order_from_json(load_json(raw), orders)


def order_from_json(data: Any, orders: OrderService) -> OrderRequest:
    """An order from a JSON value already parsed by ``load_json`` (a WebSocket's first
    message is parsed once, for its key and its order alike)."""
    try:
        body = ExecuteOrderRequest.model_validate(data)
    except pydantic.ValidationError as exc:
        raise describe_validation(exc.errors()) from None
    request = orders.validate(
        body.inputToken,
        body.outputToken,
        body.amount,
        body.slippageBps,
        kind=body.type,
        options=OrderOptions(
            limit_price=body.limitPrice,
            expires_in_s=body.expiresInS,
            expires_at=body.expiresAt,
            max_price_impact_bps=body.maxPriceImpactBps,
            priority_fee=body.priorityFee,
            min_liquidity=body.minLiquidity,
            require_mint_authority_revoked=body.requireMintAuthorityRevoked,
            require_freeze_authority_revoked=body.requireFreezeAuthorityRevoked,
        ),
    )
    if body.type not in orders.kinds:
        # Refused rather than ignored: run as a market order, a limit order
        # would fill at whatever price the market offers now.
        raise RequestProblem(
            422,
            ErrorCode.UNSUPPORTED_ORDER_TYPE,
            f"type {body.type.value!r} is not available yet: expected one of "
            + ", ".join(repr(k.value) for k in sorted(orders.kinds))
            + f" (no {body.type.value} trigger service runs in this engine)",
            [{"field": "type", "message": "expected one of the available types"}],
        )
    return request
