"""A sniper order's filters over a new pool: which one fails, and why.

Checked in order, cheapest first, the way a trader's checklist goes: the
output mint's mint authority (could more be minted?), its freeze authority
(could my account be frozen?), the pool's liquidity on the input side, then
the price impact of the order's whole amount on that pool. The first failure
names itself (``FILTERS``); the order stays open for the next pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from order_engine.domain.errors import InsufficientLiquidityError
from order_engine.domain.routing import PoolSnapshot
from order_engine.ports.launches import PoolLaunch

MINT_AUTHORITY = "mintAuthorityRevoked"
FREEZE_AUTHORITY = "freezeAuthorityRevoked"
MIN_LIQUIDITY = "minLiquidity"
PRICE_IMPACT = "maxPriceImpactBps"
FILTERS = (MINT_AUTHORITY, FREEZE_AUTHORITY, MIN_LIQUIDITY, PRICE_IMPACT)


@dataclass(frozen=True, slots=True)
class SniperFilters:
    min_liquidity: int | None = None  # input-token base units on the pool's input side
    require_mint_authority_revoked: bool = False
    require_freeze_authority_revoked: bool = False
    max_price_impact_bps: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """``failed`` is ``None`` when every filter passed; else the filter's name and
    what it saw."""

    failed: str | None = None
    reason: str = ""
    price_impact_bps: Decimal | None = None

    @property
    def passed(self) -> bool:
        return self.failed is None


def trades_pair(launch: PoolLaunch, input_mint: str, output_mint: str) -> bool:
    return launch.other(input_mint) == output_mint


def check_static(
    launch: PoolLaunch, filters: SniperFilters, *, input_mint: str, output_mint: str
) -> Verdict:
    """The filters that need no quote: authorities and liquidity."""
    mint = launch.mints.get(output_mint)
    if filters.require_mint_authority_revoked and (mint is None or mint.mint_authority):
        held = "unknown" if mint is None else mint.mint_authority
        return Verdict(MINT_AUTHORITY, f"the mint authority of {output_mint} is held by {held}")
    if filters.require_freeze_authority_revoked and (mint is None or mint.freeze_authority):
        held = "unknown" if mint is None else mint.freeze_authority
        return Verdict(FREEZE_AUTHORITY, f"the freeze authority of {output_mint} is held by {held}")
    if filters.min_liquidity is not None:
        depth = launch.reserves.get(input_mint, 0)
        if depth < filters.min_liquidity:
            return Verdict(
                MIN_LIQUIDITY,
                f"the pool holds {depth} base units of the input token, expected at least "
                f"{filters.min_liquidity}",
            )
    return Verdict()


def check_impact(snapshot: PoolSnapshot, amount_in: int, max_bps: int | None) -> Verdict:
    """The order's whole amount quoted on the new pool against ``max_bps``."""
    try:
        quote = snapshot.quote(amount_in)
    except InsufficientLiquidityError as exc:
        return Verdict(PRICE_IMPACT, f"the pool cannot fill the order: {exc.message}")
    impact = quote.price_impact_bps
    if max_bps is not None and impact > max_bps:
        return Verdict(
            PRICE_IMPACT,
            f"price impact {impact:.2f} bps for the order's amount exceeds {max_bps}",
            impact,
        )
    return Verdict(price_impact_bps=impact)
