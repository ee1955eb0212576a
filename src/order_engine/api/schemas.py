"""Request and response bodies, as the OpenAPI document shows them."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from order_engine.domain.order import OrderKind

MAX_AMOUNT_CHARS = 64


def _amount(value: Any) -> Decimal | int | float | str:
    """Let through what may be an amount; ``OrderService.validate`` decides what it is.

    The API parses JSON numbers into ``Decimal``, so no digit is lost to a float;
    a bool (a JSON ``true`` is not a number) is refused here.
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise PydanticCustomError("amount_type", "expected a number or a decimal string")
    if isinstance(value, str) and len(value) > MAX_AMOUNT_CHARS:
        raise PydanticCustomError("amount_length", "expected at most 64 characters")
    return value


Amount = Annotated[
    Decimal | int | float | str,
    PlainValidator(_amount),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "maxLength": MAX_AMOUNT_CHARS, "examples": ["0.25"]},
            ],
            "description": (
                "Amount of inputToken in UI units, as a JSON number or a decimal string. "
                "At most the token's decimals (6 for USDC, 9 for SOL)."
            ),
            "examples": [10, "0.25"],
        }
    ),
]


class ExecuteOrderRequest(BaseModel):
    """An unknown field is refused (``extra="forbid"``), never ignored: a trader who
    sends a field the engine does not honour must not get a fill they did not ask for."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"inputToken": "SOL", "outputToken": "USDC", "amount": 10}]
        },
    )

    inputToken: str = Field(  # noqa: N815 - the wire contract is camelCase
        ..., min_length=1, max_length=64, description="Symbol (SOL, USDC, ...) or mint address."
    )
    outputToken: str = Field(  # noqa: N815
        ..., min_length=1, max_length=64, description="Symbol or mint address."
    )
    amount: Amount
    slippageBps: StrictInt | None = Field(  # noqa: N815
        None, ge=1, le=5000, description="Slippage tolerance in basis points (default 50)."
    )
    # The accepted kinds are ``OrderKind``'s values: a new kind is one enum member.
    type: OrderKind = Field(
        OrderKind.MARKET,
        description=(
            "Order type: market (execute now), limit (wait for limitPrice), sniper (wait "
            "for a new pool). A kind whose trigger service does not run in this engine is "
            "refused (422 unsupported_order_type)."
        ),
    )
    limitPrice: Amount | None = Field(  # noqa: N815
        None,
        description=(
            'Limit orders: outputToken per one inputToken, UI units, e.g. "151.5". The '
            "order fires when the whole amount's executable output reaches amount x limitPrice "
            "and never fills below it."
        ),
    )
    expiresInS: StrictInt | None = Field(  # noqa: N815
        None, description="Limit and sniper orders: expire this many seconds after acceptance."
    )
    expiresAt: str | None = Field(  # noqa: N815
        None, max_length=64, description="Limit and sniper orders: expire at this RFC 3339 time."
    )
    maxPriceImpactBps: StrictInt | None = Field(  # noqa: N815
        None, description="Any order: fail rather than fill past this price impact (1-10000)."
    )
    priorityFee: StrictInt | Literal["auto"] | None = Field(  # noqa: N815
        None,
        description=(
            'Any order: compute-unit price in micro-lamports, or "auto" (recent '
            "prioritization fees)."
        ),
    )
    minLiquidity: Amount | None = Field(  # noqa: N815
        None, description="Sniper orders: least inputToken liquidity on the new pool (UI units)."
    )
    requireMintAuthorityRevoked: StrictBool | None = Field(None)  # noqa: N815
    requireFreezeAuthorityRevoked: StrictBool | None = Field(None)  # noqa: N815


class OrderAccepted(BaseModel):
    orderId: str  # noqa: N815
    status: str
    message: str


class WsTicket(BaseModel):
    ticket: str
    expiresInS: float  # noqa: N815


class OrderEventView(BaseModel):
    model_config = ConfigDict(extra="allow")

    orderId: str  # noqa: N815
    seq: int
    status: str
    timestamp: str


class OrderSummary(BaseModel):
    """An order without its event history (``GET /api/orders/{id}`` adds ``events``)."""

    orderId: str  # noqa: N815
    status: str
    type: str
    inputToken: str  # noqa: N815
    outputToken: str  # noqa: N815
    amountIn: str  # noqa: N815
    amountInRaw: str  # noqa: N815
    slippageBps: int  # noqa: N815
    attempts: int
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    txHash: str | None = None  # noqa: N815
    route: dict[str, Any] | None = None
    fill: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    # Present only when the order carries them (limit and sniper terms, per-order settings).
    limitPrice: str | None = None  # noqa: N815
    minAmountOut: str | None = None  # noqa: N815
    minAmountOutRaw: str | None = None  # noqa: N815
    expiresAt: str | None = None  # noqa: N815
    maxPriceImpactBps: int | None = None  # noqa: N815
    priorityFee: int | str | None = None  # noqa: N815
    minLiquidityRaw: str | None = None  # noqa: N815
    requireMintAuthorityRevoked: bool | None = None  # noqa: N815
    requireFreezeAuthorityRevoked: bool | None = None  # noqa: N815


class OrderView(OrderSummary):
    events: list[OrderEventView] = Field(default_factory=list)


class OrderList(BaseModel):
    orders: list[OrderSummary]
    nextCursor: str | None = Field(  # noqa: N815
        None, description="Pass as ?cursor= for the next page; null on the last page."
    )


class OrderEvents(BaseModel):
    orderId: str  # noqa: N815
    status: str
    events: list[OrderEventView]


class SwapInfo(BaseModel):
    ammKey: str  # noqa: N815
    label: str
    venue: str
    inputMint: str  # noqa: N815
    outputMint: str  # noqa: N815
    inAmount: str  # noqa: N815
    outAmount: str  # noqa: N815
    feeAmount: str  # noqa: N815
    feeMint: str  # noqa: N815


class RoutePlanStep(BaseModel):
    swapInfo: SwapInfo  # noqa: N815
    percent: float
    hop: int


class Quote(BaseModel):
    """Jupiter's quote fields (amounts as base-unit strings), plus every venue's quote."""

    inputMint: str  # noqa: N815
    outputMint: str  # noqa: N815
    inputToken: str  # noqa: N815
    outputToken: str  # noqa: N815
    inAmount: str  # noqa: N815
    outAmount: str  # noqa: N815
    otherAmountThreshold: str = Field(  # noqa: N815
        ..., description="The least output accepted: outAmount less slippageBps."
    )
    swapMode: str  # noqa: N815
    slippageBps: int  # noqa: N815
    priceImpactPct: str = Field(  # noqa: N815
        ..., description="Price impact in percent (0.5 means half a percent)."
    )
    routePlan: list[RoutePlanStep]  # noqa: N815
    dex: str
    reason: str
    ui: dict[str, str] = Field(
        ..., description="inAmount, outAmount and the threshold in UI units."
    )
    quotes: list[dict[str, Any]] = Field(..., description="Every venue's single-pool quote.")
    unfilled: list[dict[str, Any]]
    skipped: dict[str, str] = Field(..., description="Venues that failed to answer, and why.")
    timeTaken: float  # noqa: N815


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable ``code``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    message: str
    errors: list[dict[str, Any]] | None = None
