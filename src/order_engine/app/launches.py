"""Token and pool launches on a simulated cluster, in UI units at the edge.

``LaunchService`` converts the API's and the CLI's UI amounts to base units
exactly (``Decimal``, never rounding) and hands them to a ``SimLaunches``
adapter: the in-process simulator's launchpad, or the chain process's
``simCreateToken``/``simCreatePool`` over JSON-RPC. New tokens join the
engine's token registry, so orders can name them by symbol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from solders.pubkey import Pubkey

from order_engine.domain.errors import ErrorCode, ValidationError
from order_engine.domain.tokens import Token, TokenRegistry, to_base_units


@dataclass(frozen=True, slots=True)
class CreatedPool:
    venue: str
    pool: str
    slot: int
    signature: str
    base_mint: str
    quote_mint: str


class SimLaunches(Protocol):
    async def create_token(
        self,
        symbol: str,
        decimals: int,
        supply: int,
        *,
        mint_authority_revoked: bool,
        freeze_authority_revoked: bool,
    ) -> Token:
        """Raises ``ValueError`` (with what was expected) for a launch it refuses."""
        ...

    async def mint_decimals(self, mint: str) -> int:
        """The decimals of an existing mint; ``ValueError`` if it is not one."""
        ...

    async def create_pool(
        self, venue: str, base_mint: str, quote_mint: str, base_amount: int, quote_amount: int
    ) -> CreatedPool: ...


def _bad(message: str) -> ValidationError:
    return ValidationError(message, code=ErrorCode.INVALID_REQUEST)


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise _bad(f"{name}: expected true or false, got {value!r}")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{name}: expected a string, got {value!r}")
    return value.strip()


def _amount(body: dict[str, Any], name: str, token: Token) -> int:
    value = body.get(name)
    if value is None or isinstance(value, (bool, dict, list)):
        raise _bad(f'{name}: expected a decimal amount such as "100", got {value!r}')
    try:
        return to_base_units(value, token)
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc.message}", code=ErrorCode.INVALID_AMOUNT) from None


class LaunchService:
    TOKEN_FIELDS = frozenset(
        {"symbol", "decimals", "supply", "mintAuthorityRevoked", "freezeAuthorityRevoked"}
    )
    POOL_FIELDS = frozenset({"venue", "baseMint", "quoteToken", "baseAmount", "quoteAmount"})

    def __init__(self, launches: SimLaunches, tokens: TokenRegistry) -> None:
        self.launches = launches
        self.tokens = tokens

    @staticmethod
    def _fields(body: dict[str, Any], allowed: frozenset[str]) -> None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ValidationError(
                f"unknown field {unknown[0]!r}: expected only {', '.join(sorted(allowed))}",
                code=ErrorCode.UNKNOWN_FIELD,
            )

    async def create_token(self, body: dict[str, Any]) -> dict[str, Any]:
        self._fields(body, self.TOKEN_FIELDS)
        symbol = _text(body, "symbol")
        decimals = body.get("decimals", 6)
        if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 9:
            raise _bad(f"decimals: expected an integer 0..9, got {decimals!r}")
        supply = _amount(body, "supply", Token(symbol, "", decimals))
        try:
            token = await self.launches.create_token(
                symbol,
                decimals,
                supply,
                mint_authority_revoked=_flag(body, "mintAuthorityRevoked"),
                freeze_authority_revoked=_flag(body, "freezeAuthorityRevoked"),
            )
        except ValueError as exc:
            raise _bad(str(exc)) from None
        registered = self.tokens.register(token)
        return {
            "mint": token.mint,
            "symbol": registered.symbol if registered.mint == token.mint else token.symbol,
            "decimals": token.decimals,
            "supply": body["supply"] if isinstance(body["supply"], str) else str(body["supply"]),
            "supplyRaw": str(supply),
        }

    async def _token(self, name: str, what: str) -> Token:
        try:
            return self.tokens.resolve(name)
        except ValidationError:
            pass
        try:
            Pubkey.from_string(name)
            decimals = await self.launches.mint_decimals(name)
        except ValueError:
            raise ValidationError(
                f"{what}: expected a known token or a mint on this cluster, got {name[:64]!r}",
                code=ErrorCode.UNKNOWN_TOKEN,
            ) from None
        return self.tokens.register(Token(name[:6], name, decimals))

    async def create_pool(self, body: dict[str, Any]) -> dict[str, Any]:
        self._fields(body, self.POOL_FIELDS)
        venue = _text(body, "venue").lower()
        base = await self._token(_text(body, "baseMint"), "baseMint")
        quote = await self._token(str(body.get("quoteToken", "SOL")), "quoteToken")
        base_amount = _amount(body, "baseAmount", base)
        quote_amount = _amount(body, "quoteAmount", quote)
        try:
            created = await self.launches.create_pool(
                venue, base.mint, quote.mint, base_amount, quote_amount
            )
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return {
            "pool": created.pool,
            "venue": created.venue,
            "slot": created.slot,
            "signature": created.signature,
            "baseMint": base.mint,
            "quoteMint": quote.mint,
        }
