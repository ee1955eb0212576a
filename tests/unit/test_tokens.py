"""UI amounts become exact base units, or a clear error."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_engine.domain.errors import ErrorCode, ValidationError
from order_engine.domain.tokens import (
    BONK,
    SOL,
    U64_MAX,
    USDC,
    TokenRegistry,
    to_base_units,
    ui_price,
)


@pytest.mark.parametrize(
    ("raw", "token", "expected"),
    [
        (10, SOL, 10_000_000_000),
        ("10", SOL, 10_000_000_000),
        (0.1, SOL, 100_000_000),
        ("0.000000001", SOL, 1),
        (" 2.5 ", USDC, 2_500_000),
        ("1e2", USDC, 100_000_000),
        (1.5, BONK, 150_000),
        ("18446744073.709551615", SOL, U64_MAX),
    ],
)
def test_ui_amounts_convert_exactly(raw: object, token: object, expected: int) -> None:
    assert to_base_units(raw, token) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (0, "positive"),
        (-1, "positive"),
        ("-0.5", "positive"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ("Infinity", "finite"),
        ("ten", "decimal number"),
        ("", "decimal number"),
        (True, "not a boolean"),
        ("0.0000000001", "at most 9 decimal places"),
        ("18446744073.709551616", "u64 limit"),
        ("1e999999", "u64 limit"),
    ],
)
def test_bad_amounts_are_refused_with_what_was_expected(raw: object, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment) as info:
        to_base_units(raw, SOL)  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.INVALID_AMOUNT


@given(st.integers(min_value=1, max_value=U64_MAX))
def test_base_units_round_trip_through_ui_strings(base: int) -> None:
    assert to_base_units(str(SOL.to_ui(base)), SOL) == base


def test_tokens_resolve_by_symbol_in_any_case_or_by_mint() -> None:
    registry = TokenRegistry()
    assert registry.resolve("sol") is SOL
    assert registry.resolve(USDC.mint) is USDC


def test_an_unknown_token_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="expected one of BONK, JUP, SOL, USDC, USDT") as info:
        TokenRegistry().resolve("DOGE")
    assert info.value.code is ErrorCode.UNKNOWN_TOKEN


def test_the_price_is_output_per_input_in_ui_units() -> None:
    assert ui_price(10 * 10**9, SOL, 1_500 * 10**6, USDC) == Decimal(150)


@pytest.mark.parametrize(
    "raw",
    [
        "1_000",  # Decimal() takes underscores; an amount does not
        "\u0663",  # an Arabic-Indic 3
        "0x10",
        "1e",
        "",
    ],
)
def test_text_outside_the_amount_grammar_is_refused_by_the_domain(raw: str) -> None:
    with pytest.raises(ValidationError) as refused:
        to_base_units(raw, SOL)
    assert refused.value.code is ErrorCode.INVALID_AMOUNT


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        # More significant digits than the default context's 28: once rounded to 1 SOL.
        (Decimal("1.0000000000000000000000000000001"), "decimal places"),
        ("1.0000000000000000000000000000001", "decimal places"),
        (Decimal("1." + "0" * 39 + "1"), "digits"),
        # Underflow: once normalised to 0 and accepted as an order of 0 base units.
        (Decimal("1e-999999999"), "exponent"),
        ("1e-400", "exponent"),
        (Decimal("1e-41"), "exponent"),
        (Decimal("1e999999999"), "u64 limit"),
        ("1E+9999999999999999999", "decimal number"),
        (Decimal("1." + "1" * 40), "digits"),
        ("0.0000000001", "decimal places"),
        (Decimal("-0"), "positive"),
        (Decimal("sNaN"), "finite"),
        ("-Infinity", "finite"),
    ],
)
def test_an_amount_that_cannot_convert_exactly_is_refused_never_rounded(
    raw: object, fragment: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        to_base_units(raw, SOL)  # type: ignore[arg-type]
    assert refused.value.code is ErrorCode.INVALID_AMOUNT
    assert fragment in refused.value.message


@given(
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.builds(
        lambda digits, exponent: Decimal(f"{digits}e{exponent}"),
        st.integers(min_value=0, max_value=10**45),
        st.integers(min_value=-(10**9), max_value=10**9),
    )
)
def test_any_decimal_converts_exactly_to_at_least_one_base_unit_or_is_refused(
    value: Decimal,
) -> None:
    try:
        base = to_base_units(value, SOL)
    except ValidationError as refused:
        code = refused.code
        base = None
    if base is None:
        assert code is ErrorCode.INVALID_AMOUNT
        return
    assert base >= 1
    assert Decimal(base).scaleb(-SOL.decimals) == value  # exactly the amount asked for
