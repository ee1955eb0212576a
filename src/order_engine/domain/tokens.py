"""Tokens and amounts.

Amounts inside the engine are integer base units (lamports for SOL, 10^-6 for
USDC, ...), exactly as the chain counts them. UI amounts (``10.5`` SOL) exist
only at the edges and are converted with ``Decimal`` so that no float rounding
ever reaches a balance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import (
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
    localcontext,
)

from order_engine.domain.errors import ErrorCode, ValidationError

U64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str
    mint: str
    decimals: int

    def to_base(self, ui_amount: Decimal | str | int | float) -> int:
        return to_base_units(ui_amount, self)

    def to_ui(self, base_units: int) -> Decimal:
        return Decimal(base_units).scaleb(-self.decimals)


# Mainnet mints, so that a client can name tokens either way.
SOL = Token("SOL", "So11111111111111111111111111111111111111112", 9)
USDC = Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6)
USDT = Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6)
BONK = Token("BONK", "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", 5)
JUP = Token("JUP", "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", 6)

DEFAULT_TOKENS: tuple[Token, ...] = (SOL, USDC, USDT, BONK, JUP)


class TokenRegistry:
    """Resolves a symbol (any case) or a mint address to a ``Token``."""

    def __init__(self, tokens: tuple[Token, ...] = DEFAULT_TOKENS) -> None:
        self._by_symbol = {t.symbol.upper(): t for t in tokens}
        self._by_mint = {t.mint: t for t in tokens}

    def __iter__(self) -> Iterator[Token]:
        return iter(self._by_mint.values())

    def resolve(self, name: str) -> Token:
        token = self._by_mint.get(name) or self._by_symbol.get(name.strip().upper())
        if token is None:
            known = ", ".join(sorted(self._by_symbol))
            raise ValidationError(
                f"unknown token {name[:64]!r}: expected one of {known} or a known mint address",
                code=ErrorCode.UNKNOWN_TOKEN,
            )
        return token

    def by_mint(self, mint: str) -> Token:
        return self._by_mint[mint]

    def lookup(self, mint: str) -> Token:
        """The token of ``mint``, or, for a mint not known (yet: a sniper's token
        before its pool launches), a stand-in named by the address, decimals 0."""
        return self._by_mint.get(mint) or Token(mint, mint, 0)

    def knows(self, mint: str) -> bool:
        return mint in self._by_mint

    def register(self, token: Token) -> Token:
        """Learn a token launched after start-up; the one already known under its
        mint wins. A symbol already taken keeps its token: the newcomer answers to
        its mint (symbols are not unique on chain, mints are)."""
        known = self._by_mint.get(token.mint)
        if known is not None:
            return known
        self._by_mint[token.mint] = token
        self._by_symbol.setdefault(token.symbol.upper(), token)
        return token

    def symbols(self) -> list[str]:
        return sorted(self._by_symbol)


# The grammar of an amount written as text: ASCII digits, one optional point and an
# optional exponent. ``Decimal()`` alone would also take "1_000" and other
# scripts' digits ("\u0663" is 3).
_DECIMAL_TEXT = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
_NON_FINITE_TEXT = re.compile(r"\s*[+-]?(?:inf|infinity|s?nan)\s*", re.IGNORECASE)
# Bounds on an amount's digits and scale, checked before any arithmetic: every
# amount inside them converts exactly in ``_EXACT`` (u64 has 20 digits, and no
# token has more than 18 decimals), and nothing outside them is an amount.
MAX_AMOUNT_DIGITS = 40
MAX_AMOUNT_SCALE = 40
# Arithmetic that refuses instead of rounding: any inexact or rounded step traps.
_EXACT = Context(
    prec=2 * MAX_AMOUNT_DIGITS + MAX_AMOUNT_SCALE,
    Emax=999,
    Emin=-999,
    traps=[InvalidOperation, Inexact, Rounded, Overflow, Underflow, Subnormal, DivisionByZero],
)


def to_base_units(ui_amount: Decimal | str | int | float, token: Token) -> int:
    """Convert a UI amount to base units exactly, or refuse it.

    Never rounds: an amount with more decimals than the token has, more than
    ``MAX_AMOUNT_DIGITS`` significant digits, or an exponent beyond
    ``MAX_AMOUNT_SCALE``, is refused, as is anything under one base unit.
    Raises ``ValidationError(INVALID_AMOUNT)`` with a message that says what
    was expected and what arrived.
    """
    if isinstance(ui_amount, bool):
        raise _bad(ui_amount, "a number, not a boolean")
    if isinstance(ui_amount, float):
        # repr() of a float is the shortest string that round-trips, so 0.1
        # stays 0.1 rather than 0.1000000000000000055...
        ui_amount = repr(ui_amount)
    if isinstance(ui_amount, str) and not (
        _DECIMAL_TEXT.fullmatch(ui_amount) or _NON_FINITE_TEXT.fullmatch(ui_amount)
    ):
        raise _bad(ui_amount, "a decimal number such as 10 or 0.25")
    try:
        value = Decimal(ui_amount.strip() if isinstance(ui_amount, str) else ui_amount)
    except (InvalidOperation, ValueError, TypeError):
        raise _bad(ui_amount, "a decimal number") from None
    if not value.is_finite():
        raise _bad(ui_amount, "a finite number")
    if value > token.to_ui(U64_MAX):  # a comparison is exact at any exponent
        raise _bad(ui_amount, f"at most {token.to_ui(U64_MAX)} {token.symbol} (u64 limit)")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # noqa: S101 - finite, checked above
    significant = len(digits) - next((i for i, d in enumerate(digits) if d), len(digits))
    if sign or not any(digits):
        raise _bad(ui_amount, "a positive amount")
    if significant > MAX_AMOUNT_DIGITS or not -MAX_AMOUNT_SCALE <= exponent <= MAX_AMOUNT_SCALE:
        raise _bad(
            ui_amount,
            f"at most {MAX_AMOUNT_DIGITS} digits and an exponent within \u00b1{MAX_AMOUNT_SCALE}",
        )
    try:
        with localcontext(_EXACT):
            scaled = value.scaleb(token.decimals)
            if scaled != scaled.to_integral_value():
                raise _bad(ui_amount, f"at most {token.decimals} decimal places for {token.symbol}")
            base = int(scaled)
    except ArithmeticError:  # a trap: this amount cannot be converted exactly
        raise _bad(ui_amount, "an amount that converts exactly to base units") from None
    if base < 1:
        raise _bad(ui_amount, f"at least one base unit ({token.to_ui(1)} {token.symbol})")
    return base


def _bad(raw: object, expected: str) -> ValidationError:
    shown = str(raw)
    if len(shown) > 40:
        shown = shown[:40] + "..."
    return ValidationError(
        f"invalid amount {shown!r}: expected {expected}", code=ErrorCode.INVALID_AMOUNT
    )


def ui_price(amount_in: int, token_in: Token, amount_out: int, token_out: Token) -> Decimal:
    """Price in output tokens per input token, in UI units (e.g. USDC per SOL)."""
    if amount_in == 0:
        return Decimal(0)
    return token_out.to_ui(amount_out) / token_in.to_ui(amount_in)
