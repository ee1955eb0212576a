"""An order's options beyond the swap, as the client sent them, turned into typed terms.

``OrderOptions`` is what the API layer parsed (exact numbers, no floats);
``resolve_options`` checks each field against the order's type and tokens and
returns the domain's values. Every refusal is a ``ValidationError`` with a
stable code naming what was expected and what arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from order_engine.domain.errors import ErrorCode, ValidationError
from order_engine.domain.order import OrderKind
from order_engine.domain.terms import (
    AUTO,
    MAX_PRIORITY_FEE,
    LimitTerms,
    OrderTerms,
    PriorityFee,
    SniperTerms,
    floor_out,
    parse_limit_price,
)
from order_engine.domain.tokens import Token

U64_MAX: Final = 2**64 - 1
MAX_EXPIRY_S: Final = 90 * 24 * 3600  # a quarter: longer-lived orders are placed again
MAX_PRICE_IMPACT_BPS: Final = 10_000
WAITING_KINDS: Final = frozenset({OrderKind.LIMIT, OrderKind.SNIPER})


@dataclass(frozen=True, slots=True)
class OrderOptions:
    """The optional order fields, as parsed from JSON (``None``: not sent)."""

    limit_price: Decimal | int | float | str | None = None
    expires_in_s: int | None = None
    expires_at: str | None = None
    max_price_impact_bps: int | None = None
    priority_fee: int | str | None = None
    min_liquidity: Decimal | int | float | str | None = None
    require_mint_authority_revoked: bool | None = None
    require_freeze_authority_revoked: bool | None = None


@dataclass(frozen=True, slots=True)
class Expiry:
    """Relative (``in_s``, counted from acceptance) or absolute (``at``); at most one."""

    in_s: int | None = None
    at: datetime | None = None

    def deadline(self, accepted_at: datetime) -> datetime | None:
        if self.in_s is not None:
            return accepted_at + timedelta(seconds=self.in_s)
        return self.at

    def fingerprint(self) -> str | None:
        if self.in_s is not None:
            return f"in:{self.in_s}"
        return None if self.at is None else f"at:{self.at.isoformat()}"


NO_EXPIRY: Final = Expiry()


@dataclass(frozen=True, slots=True)
class Resolved:
    terms: OrderTerms | None = None
    expiry: Expiry = NO_EXPIRY
    max_price_impact_bps: int | None = None
    priority_fee: PriorityFee | None = None


NO_OPTIONS: Final = Resolved()


def _refuse(message: str, code: ErrorCode) -> ValidationError:
    return ValidationError(message, code=code)


def resolve_options(
    kind: OrderKind,
    options: OrderOptions,
    *,
    token_in: Token,
    token_out: Token,
    amount_in: int,
    now: datetime,
) -> Resolved:
    return Resolved(
        terms=_terms(kind, options, token_in, token_out, amount_in),
        expiry=_expiry(kind, options, now),
        max_price_impact_bps=_impact(options.max_price_impact_bps),
        priority_fee=_fee(options.priority_fee),
    )


def _terms(
    kind: OrderKind, o: OrderOptions, token_in: Token, token_out: Token, amount_in: int
) -> OrderTerms | None:
    sniper_fields = {
        "minLiquidity": o.min_liquidity,
        "requireMintAuthorityRevoked": o.require_mint_authority_revoked,
        "requireFreezeAuthorityRevoked": o.require_freeze_authority_revoked,
    }
    sent = [name for name, value in sniper_fields.items() if value is not None]
    if kind is not OrderKind.SNIPER and sent:
        raise _refuse(
            f"{', '.join(sent)} filter{'s' if len(sent) > 1 else ''} a sniper order's pool: "
            f"expected type 'sniper', got {kind.value!r}",
            ErrorCode.INVALID_SNIPER_FILTER,
        )
    if kind is not OrderKind.LIMIT and o.limit_price is not None:
        raise _refuse(
            f"limitPrice belongs to a limit order: expected type 'limit', got {kind.value!r}",
            ErrorCode.INVALID_LIMIT_PRICE,
        )
    if kind is OrderKind.LIMIT:
        if o.limit_price is None:
            raise _refuse(
                f"a limit order needs limitPrice: {token_out.symbol} per one "
                f'{token_in.symbol}, in UI units, e.g. "151.5"',
                ErrorCode.INVALID_LIMIT_PRICE,
            )
        price = parse_limit_price(o.limit_price)
        floor = floor_out(amount_in, token_in.decimals, token_out.decimals, price)
        if not 1 <= floor <= U64_MAX:
            raise _refuse(
                f"limitPrice {o.limit_price} x amount is {floor} {token_out.symbol} base units: "
                f"expected at least 1 and at most {U64_MAX}",
                ErrorCode.INVALID_LIMIT_PRICE,
            )
        return LimitTerms(price, floor)
    if kind is OrderKind.SNIPER:
        liquidity = None
        if o.min_liquidity is not None:
            try:
                liquidity = token_in.to_base(o.min_liquidity)
            except ValidationError as exc:
                raise _refuse(
                    f"minLiquidity, in {token_in.symbol}: {exc.message}",
                    ErrorCode.INVALID_SNIPER_FILTER,
                ) from None
        return SniperTerms(
            min_liquidity=liquidity,
            require_mint_authority_revoked=bool(o.require_mint_authority_revoked),
            require_freeze_authority_revoked=bool(o.require_freeze_authority_revoked),
        )
    return None


def _expiry(kind: OrderKind, o: OrderOptions, now: datetime) -> Expiry:
    if o.expires_in_s is None and o.expires_at is None:
        return NO_EXPIRY
    if kind not in WAITING_KINDS:
        raise _refuse(
            f"only an order that waits (limit, sniper) expires: got type {kind.value!r} with "
            "an expiry",
            ErrorCode.INVALID_EXPIRY,
        )
    if o.expires_in_s is not None and o.expires_at is not None:
        raise _refuse(
            "expected one of expiresInS and expiresAt, got both", ErrorCode.INVALID_EXPIRY
        )
    if o.expires_in_s is not None:
        seconds = o.expires_in_s
        if isinstance(seconds, bool) or not 1 <= seconds <= MAX_EXPIRY_S:
            raise _refuse(
                f"expiresInS {seconds!r}: expected whole seconds from 1 to {MAX_EXPIRY_S}",
                ErrorCode.INVALID_EXPIRY,
            )
        return Expiry(in_s=seconds)
    text = str(o.expires_at)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None or at.utcoffset() is None:
        raise _refuse(
            f"expiresAt {text[:40]!r}: expected an RFC 3339 time with an offset, "
            'e.g. "2026-12-07T15:00:00Z"',
            ErrorCode.INVALID_EXPIRY,
        )
    at = at.astimezone(UTC)
    if not now < at <= now + timedelta(seconds=MAX_EXPIRY_S):
        raise _refuse(
            f"expiresAt {text[:40]!r}: expected a time after now ({now.isoformat()}) and "
            f"within {MAX_EXPIRY_S} s of it",
            ErrorCode.INVALID_EXPIRY,
        )
    return Expiry(at=at)


def _impact(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not 1 <= value <= MAX_PRICE_IMPACT_BPS:
        raise _refuse(
            f"maxPriceImpactBps {value!r}: expected an integer from 1 to {MAX_PRICE_IMPACT_BPS}",
            ErrorCode.INVALID_PRICE_IMPACT,
        )
    return value


def _fee(value: int | str | None) -> PriorityFee | None:
    if value is None:
        return None
    if value == AUTO:
        return PriorityFee(None)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRIORITY_FEE:
        raise _refuse(
            f"priorityFee {str(value)[:40]!r}: expected micro-lamports per compute unit, an "
            f'integer from 0 to {MAX_PRIORITY_FEE}, or "auto"',
            ErrorCode.INVALID_PRIORITY_FEE,
        )
    return PriorityFee(value)
