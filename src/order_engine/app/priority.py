"""The compute-unit price an order's transaction bids (its priority fee).

An order names a price in micro-lamports per compute unit, or ``auto``: what the
cluster's recent blocks say it took to land next to the same accounts
(``getRecentPrioritizationFees`` over the route's pools), as wallets and
sniper bots set it. ``auto`` bids the 75th percentile of the recent non-zero
fees (a quarter of recent slots needed more), never less than the engine's
default price and never more than ``MAX_AUTO_MICRO_LAMPORTS``; with no
recent fee at all it bids the default.
"""

from __future__ import annotations

from collections.abc import Sequence

from order_engine.ports.chain import Chain, PrioritizationFee

AUTO_PERCENTILE = 75
MAX_AUTO_MICRO_LAMPORTS = 50_000_000  # 0.05 SOL at 1M CU: past this, auto is a runaway


def auto_price(fees: Sequence[PrioritizationFee], default: int) -> int:
    paid = sorted(f.prioritization_fee for f in fees if f.prioritization_fee > 0)
    if not paid:
        return default
    at = min(len(paid) - 1, (len(paid) * AUTO_PERCENTILE + 99) // 100 - 1)
    return min(MAX_AUTO_MICRO_LAMPORTS, max(default, paid[max(0, at)]))


async def compute_unit_price(
    chain: Chain, *, requested: int | None, auto: bool, default: int, accounts: Sequence[str]
) -> int:
    """The price to bid: ``requested`` as given, ``auto`` from the chain's recent
    fees for ``accounts``, or (neither) the engine's ``default``."""
    if requested is not None:
        return requested
    if not auto:
        return default
    return auto_price(await chain.get_recent_prioritization_fees(accounts), default)
