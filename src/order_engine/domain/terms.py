"""What an order waits for, and the per-order execution settings any type may carry.

A market order has no terms. A limit order's terms are its price and the
floor that price puts under the whole fill; a sniper order's are the filters a
new pool must pass. The trigger services read terms to decide *when*; the
executor reads only ``Order.min_amount_out``, ``max_price_impact_bps`` and
``priority_fee``, which mean the same for every type.

Stored as JSON with exact values (decimal strings, never floats): the codec
lives here so that both of the store's write paths produce the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from order_engine.domain.errors import ErrorCode, ValidationError


@dataclass(frozen=True, slots=True)
class LimitTerms:
    """``limit_price``: output per one input, UI units ("151.5 USDC per SOL").
    ``min_amount_out``: ``amount x limit_price`` in output base units, rounded up,
    so the floor is never below the price the trader named."""

    limit_price: Decimal
    min_amount_out: int


@dataclass(frozen=True, slots=True)
class SniperTerms:
    """Filters a newly created pool must pass. ``min_liquidity`` is in base units of
    the order's input token, on the pool's side (``None``: any liquidity)."""

    min_liquidity: int | None = None
    require_mint_authority_revoked: bool = False
    require_freeze_authority_revoked: bool = False


OrderTerms = LimitTerms | SniperTerms

AUTO: Final = "auto"
MAX_PRIORITY_FEE: Final = 10**12  # a million lamports per CU: beyond any fee a trader means


@dataclass(frozen=True, slots=True)
class PriorityFee:
    """A compute-unit price in micro-lamports, or ``auto`` (``micro_lamports`` None):
    taken from the cluster's recent prioritization fees when the order is built."""

    micro_lamports: int | None

    @property
    def is_auto(self) -> bool:
        return self.micro_lamports is None

    def to_text(self) -> str:
        return AUTO if self.micro_lamports is None else str(self.micro_lamports)

    @classmethod
    def from_text(cls, text: str) -> PriorityFee:
        """The stored form back (``to_text``); refuses anything else."""
        if text == AUTO:
            return cls(None)
        if not text.isascii() or not text.isdigit():
            raise ValueError(f"expected a priority fee as digits or 'auto', got {text[:40]!r}")
        return cls(int(text))


def price_text(value: Decimal) -> str:
    """A price as plain decimal digits (no exponent), trailing zeros dropped."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def terms_to_json(terms: OrderTerms | None) -> dict[str, Any] | None:
    if terms is None:
        return None
    if isinstance(terms, LimitTerms):
        return {
            "limitPrice": price_text(terms.limit_price),
            "minAmountOut": str(terms.min_amount_out),
        }
    return {
        "minLiquidity": None if terms.min_liquidity is None else str(terms.min_liquidity),
        "requireMintAuthorityRevoked": terms.require_mint_authority_revoked,
        "requireFreezeAuthorityRevoked": terms.require_freeze_authority_revoked,
    }


def terms_from_json(value: Mapping[str, Any] | None) -> OrderTerms | None:
    """The stored form back; the keys say which kind of terms it is."""
    if value is None:
        return None
    if "limitPrice" in value:
        return LimitTerms(Decimal(value["limitPrice"]), int(value["minAmountOut"]))
    liquidity = value.get("minLiquidity")
    return SniperTerms(
        min_liquidity=None if liquidity is None else int(liquidity),
        require_mint_authority_revoked=bool(value.get("requireMintAuthorityRevoked", False)),
        require_freeze_authority_revoked=bool(value.get("requireFreezeAuthorityRevoked", False)),
    )


# --- parsing at the edge ---------------------------------------------------------------

MAX_PRICE_DIGITS = 40


def parse_limit_price(value: Decimal | int | float | str) -> Decimal:
    """A positive, finite, exact price (a JSON number parsed as Decimal, or a string)."""
    if isinstance(value, (bool, float)):
        # Floats only reach here from Python callers; JSON numbers arrive as Decimal.
        raise ValidationError(
            f"limitPrice {value!r}: expected a decimal string or an exact JSON number",
            code=ErrorCode.INVALID_LIMIT_PRICE,
        )
    text = str(value).strip()
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValidationError(
            f'limitPrice {text[:40]!r} is not a decimal number: expected e.g. "151.5"',
            code=ErrorCode.INVALID_LIMIT_PRICE,
        ) from None
    digits = price.as_tuple().digits if price.is_finite() else ()
    exponent = price.as_tuple().exponent
    if (
        not price.is_finite()
        or price <= 0
        or len(digits) > MAX_PRICE_DIGITS
        or not isinstance(exponent, int)
        or not -MAX_PRICE_DIGITS <= exponent <= MAX_PRICE_DIGITS
    ):
        raise ValidationError(
            f"limitPrice {text[:40]!r}: expected a positive, finite price with at most "
            f"{MAX_PRICE_DIGITS} digits",
            code=ErrorCode.INVALID_LIMIT_PRICE,
        )
    return price


def floor_out(amount_in: int, in_decimals: int, out_decimals: int, price: Decimal) -> int:
    """``amount * price`` in output base units, rounded up (exact integer arithmetic)."""
    _sign, digits, exponent = price.as_tuple()
    assert isinstance(exponent, int)  # noqa: S101 - finite, checked by parse_limit_price
    numerator: int = int("".join(map(str, digits)) or "0") * amount_in
    scale: int = out_decimals - in_decimals + exponent  # power of ten still to apply
    if scale >= 0:
        scaled: int = numerator * 10**scale
        return scaled
    denominator: int = 10 ** (-scale)
    return -(-numerator // denominator)
