"""``auto`` priority fees from recent prioritization fees: the 75th percentile of
the slots that paid anything, bounded below by the engine's default and above by
a cap; with no history, the default."""

from __future__ import annotations

from order_engine.app.priority import MAX_AUTO_MICRO_LAMPORTS, auto_price
from order_engine.ports.chain import PrioritizationFee


def fees(*prices: int) -> list[PrioritizationFee]:
    return [PrioritizationFee(slot, price) for slot, price in enumerate(prices)]


def test_auto_bids_the_75th_percentile_of_the_slots_that_paid() -> None:
    assert auto_price(fees(0, 0, 100_000, 200_000, 300_000, 400_000), 50_000) == 300_000


def test_auto_never_bids_below_the_default_nor_above_the_cap() -> None:
    assert auto_price(fees(10, 20, 30), 50_000) == 50_000
    assert auto_price(fees(10**12), 50_000) == MAX_AUTO_MICRO_LAMPORTS


def test_without_any_fee_history_auto_bids_the_default() -> None:
    assert auto_price([], 50_000) == 50_000
    assert auto_price(fees(0, 0, 0), 50_000) == 50_000
