"""Error taxonomy: every failure is either transient (retry) or permanent (fail now).

The split decides the executor's behaviour, so it lives in the type, not in the
caller's judgement: a ``TransientError`` is retried with backoff until the
attempts run out; a ``PermanentError`` fails the order at once with its code.
Codes are stable strings that clients may switch on.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    # Input: the request itself is wrong.
    INVALID_REQUEST = "invalid_request"
    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105 - a token symbol, not a secret
    SAME_TOKEN = "same_token"  # noqa: S105
    INVALID_AMOUNT = "invalid_amount"
    INVALID_SLIPPAGE = "invalid_slippage"
    UNSUPPORTED_ORDER_TYPE = "unsupported_order_type"
    UNKNOWN_FIELD = "unknown_field"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_NOT_CANCELLABLE = "order_not_cancellable"
    INVALID_LIMIT_PRICE = "invalid_limit_price"
    INVALID_EXPIRY = "invalid_expiry"
    INVALID_PRICE_IMPACT = "invalid_price_impact"
    INVALID_PRIORITY_FEE = "invalid_priority_fee"
    INVALID_SNIPER_FILTER = "invalid_sniper_filter"
    # Market: the order cannot be filled as asked.
    NO_ROUTE = "no_route"
    INSUFFICIENT_LIQUIDITY = "insufficient_liquidity"
    SLIPPAGE_EXCEEDED = "slippage_exceeded"
    PRICE_IMPACT_TOO_HIGH = "price_impact_too_high"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    TRANSACTION_FAILED = "transaction_failed"
    # Infrastructure: may clear up on retry.
    VENUE_UNAVAILABLE = "venue_unavailable"
    RPC_UNAVAILABLE = "rpc_unavailable"
    RATE_LIMITED = "rate_limited"
    BLOCKHASH_EXPIRED = "blockhash_expired"
    SERVICE_UNAVAILABLE = "service_unavailable"
    # Engine: a bug or an exhausted budget.
    RETRIES_EXHAUSTED = "retries_exhausted"
    INTERNAL = "internal_error"


class EngineError(Exception):
    """Base for every error the engine raises on purpose."""

    transient: ClassVar[bool] = False
    default_code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.message!r})"


class TransientError(EngineError):
    """May succeed if tried again later: timeouts, 429s, a venue down."""

    transient = True
    default_code = ErrorCode.RPC_UNAVAILABLE


class PermanentError(EngineError):
    """Will fail the same way every time: retrying only burns attempts."""

    default_code = ErrorCode.TRANSACTION_FAILED


class ValidationError(PermanentError):
    """The request is malformed; raised before anything is persisted."""

    default_code = ErrorCode.INVALID_REQUEST


class NoRouteError(PermanentError):
    default_code = ErrorCode.NO_ROUTE


class InsufficientLiquidityError(PermanentError):
    default_code = ErrorCode.INSUFFICIENT_LIQUIDITY


class SlippageExceededError(PermanentError):
    default_code = ErrorCode.SLIPPAGE_EXCEEDED


class InvalidTransition(Exception):
    """An order was asked to move along an edge its transition table lacks.

    A programming error, not a market condition, so it is not an ``EngineError``.
    """


class StaleWrite(Exception):
    """A conditional write found the order changed underneath it.

    Another worker (or a later attempt) owns the order now; the stale writer
    must stop without side effects.
    """


class OrderNotFound(Exception):
    pass


class OrderNotCancellable(Exception):
    """A cancel arrived for an order that is no longer waiting (triggered, running
    or terminal): the swap is on its way or the order is over."""
