"""Order terms: exact limit-price arithmetic, the stored forms, and per-type refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from order_engine.app.order_terms import OrderOptions, resolve_options
from order_engine.domain.errors import ValidationError
from order_engine.domain.order import OrderKind
from order_engine.domain.terms import (
    LimitTerms,
    PriorityFee,
    SniperTerms,
    floor_out,
    parse_limit_price,
    terms_from_json,
    terms_to_json,
)
from order_engine.domain.tokens import Token

SOL = Token("SOL", "So11111111111111111111111111111111111111112", 9)
USDC = Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6)
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_the_floor_of_a_limit_is_amount_times_price_in_output_base_units() -> None:
    assert floor_out(10**9, 9, 6, Decimal("151.5")) == 151_500_000
    assert floor_out(2 * 10**9, 9, 6, Decimal("0.000001")) == 2


def test_the_floor_rounds_up_so_the_fill_is_never_below_the_named_price() -> None:
    # 1 lamport at 151.5 USDC/SOL is 0.0001515 USDC base units: one whole unit.
    assert floor_out(1, 9, 6, Decimal("151.5")) == 1
    # 3e-6 in at 0.3333333333 is 999.9999999 base units out: 1000, not 999.
    assert floor_out(3, 6, 9, Decimal("0.3333333333")) == 1000


def test_a_limit_price_is_parsed_exactly_and_refused_when_not_a_positive_number() -> None:
    assert parse_limit_price("151.50") == Decimal("151.5")
    assert parse_limit_price(Decimal("1e-3")) == Decimal("0.001")
    for bad in ("0", "-1", "NaN", "Infinity", "1e99", "abc", 1.5, True):
        with pytest.raises(ValidationError) as caught:
            parse_limit_price(bad)
        assert caught.value.code == "invalid_limit_price"


def test_terms_round_trip_through_their_stored_json() -> None:
    for terms in (
        LimitTerms(Decimal("151.5"), 151_500_000),
        LimitTerms(Decimal("1E-9"), 1),
        SniperTerms(50 * 10**9, True, False),
        SniperTerms(),
    ):
        assert terms_from_json(terms_to_json(terms)) == terms
    assert terms_to_json(LimitTerms(Decimal("1E-9"), 1)) == {
        "limitPrice": "0.000000001",
        "minAmountOut": "1",
    }


def test_a_priority_fee_is_stored_as_digits_or_auto() -> None:
    assert PriorityFee.from_text(PriorityFee(None).to_text()) == PriorityFee(None)
    assert PriorityFee.from_text("50000") == PriorityFee(50_000)
    with pytest.raises(ValueError, match="digits or 'auto'"):
        PriorityFee.from_text("-1")


def _resolve(kind: OrderKind, **fields: Any) -> object:
    return resolve_options(
        kind,
        OrderOptions(**fields),
        token_in=SOL,
        token_out=USDC,
        amount_in=10**9,
        now=NOW,
    )


def test_a_limit_order_resolves_its_price_floor_and_relative_expiry() -> None:
    resolved = _resolve(OrderKind.LIMIT, limit_price="151.5", expires_in_s=3600)
    assert resolved.terms == LimitTerms(Decimal("151.5"), 151_500_000)  # type: ignore[attr-defined]
    assert resolved.expiry.deadline(NOW) == NOW + timedelta(hours=1)  # type: ignore[attr-defined]


def test_an_absolute_expiry_is_normalised_to_utc() -> None:
    resolved = _resolve(OrderKind.LIMIT, limit_price="1", expires_at="2026-12-07T14:00:00+01:00")
    assert resolved.expiry.at == NOW + timedelta(hours=1)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "fields", "code"),
    [
        (OrderKind.MARKET, {"limit_price": "1"}, "invalid_limit_price"),
        (OrderKind.SNIPER, {"limit_price": "1"}, "invalid_limit_price"),
        (OrderKind.LIMIT, {}, "invalid_limit_price"),
        (OrderKind.MARKET, {"expires_in_s": 5}, "invalid_expiry"),
        (OrderKind.LIMIT, {"limit_price": "1", "expires_in_s": 10**9}, "invalid_expiry"),
        (OrderKind.MARKET, {"max_price_impact_bps": 0}, "invalid_price_impact"),
        (OrderKind.MARKET, {"priority_fee": 10**13}, "invalid_priority_fee"),
        (OrderKind.MARKET, {"min_liquidity": "1"}, "invalid_sniper_filter"),
        (OrderKind.SNIPER, {"min_liquidity": "-1"}, "invalid_sniper_filter"),
    ],
)
def test_an_option_that_does_not_fit_the_order_type_is_refused_with_its_code(
    kind: OrderKind, fields: dict[str, object], code: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _resolve(kind, **fields)
    assert caught.value.code == code
