"""The price watcher's book and its candidate rule (pure: no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from order_engine.adapters.venues.snapshots import AmmV4Snapshot, CpmmSnapshot
from order_engine.app.price_watcher import PairBook
from order_engine.domain.order import Order, OrderKind
from order_engine.domain.routing import PoolSnapshot, RouterConfig, plan_direct
from order_engine.domain.terms import LimitTerms, floor_out

SOL, USDC = "sol-mint", "usdc-mint"
T0 = datetime(2026, 12, 7, tzinfo=UTC)


def limit(amount_in: int, price: str) -> Order:
    terms = LimitTerms(Decimal(price), floor_out(amount_in, 9, 6, Decimal(price)))
    order, _ = Order.accept(
        order_id=uuid4(), input_mint=SOL, output_mint=USDC, amount_in=amount_in,
        slippage_bps=50, at=T0, kind=OrderKind.LIMIT, terms=terms,
    )  # fmt: skip
    return order


def test_candidates_are_the_orders_needing_at_most_the_price_cheapest_first() -> None:
    book = PairBook()
    orders = [limit(10**9, p) for p in ("152", "150", "151", "149.5", "150")]
    for order in orders:
        book.add(order)
    wanted = [o.terms.limit_price for o in book.candidates(151e-3)]  # type: ignore[union-attr]
    assert wanted == [Decimal("149.5"), Decimal("150"), Decimal("150"), Decimal("151")]
    assert list(book.candidates(149e-3)) == []


def test_removing_an_order_keeps_the_book_sorted_and_its_smallest_amount_true() -> None:
    book = PairBook()
    small, large, same_price = limit(10**7, "150"), limit(10**9, "150"), limit(10**8, "150")
    for order in (large, small, same_price):
        book.add(order)
    assert book.amounts[0] == 10**7
    book.remove(small.id)
    book.remove(small.id)  # twice: nothing happens
    assert len(book) == 2
    assert book.amounts == [10**8, 10**9]
    assert {o.id for o in book.candidates(1.0)} == {large.id, same_price.id}
    assert book.keys == sorted(book.keys)


def test_an_order_without_a_floor_is_never_booked() -> None:
    book = PairBook()
    market, _ = Order.accept(
        order_id=uuid4(), input_mint=SOL, output_mint=USDC, amount_in=1, slippage_bps=50, at=T0
    )
    book.add(market)
    assert len(book) == 0


POOLS = st.tuples(
    st.integers(10**11, 10**15), st.integers(10**9, 10**13), st.integers(10**11, 10**15),
    st.integers(10**9, 10**13), st.integers(1, 100),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(pools=POOLS, probe=st.integers(10**6, 10**9), scale=st.integers(1, 10_000))
def test_the_smallest_amounts_quote_bounds_the_price_of_every_larger_amount(
    pools: tuple[int, int, int, int, int], probe: int, scale: int
) -> None:
    """Why one probe quote selects the candidates: the best route's average price
    can only fall as the amount grows (the watcher's bound, with its rounding slack)."""
    ra_in, ra_out, rc_in, rc_out, fee = pools
    snapshots: list[PoolSnapshot] = [
        AmmV4Snapshot(venue="a", pool_id="a", input_mint=SOL, output_mint=USDC,
                      reserve_in=ra_in, reserve_out=ra_out),
        CpmmSnapshot(venue="b", pool_id="b", input_mint=SOL, output_mint=USDC,
                     reserve_in=rc_in, reserve_out=rc_out, trade_fee_rate=fee * 100),
    ]  # fmt: skip
    small = plan_direct(snapshots, probe, 50, RouterConfig())
    large = plan_direct(snapshots, probe * scale, 50, RouterConfig())
    if small is None or large is None:
        return
    bound = (small.expected_out + 1) / max(probe - 2, 1)
    assert large.expected_out / (probe * scale) <= bound * (1 + 1e-9)
