"""The SQLite group writer: many callers' writes in one commit, each resumed only after it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest

from order_engine.adapters.db import Database, SqlOrderRepository, create_engine
from order_engine.adapters.db import sqlite_orders as fast_units
from order_engine.adapters.db.migrate import run_migrations_async
from order_engine.domain.errors import StaleWrite
from order_engine.domain.order import Order, OrderKind, SignedTx, Trigger
from order_engine.domain.terms import LimitTerms, PriorityFee, SniperTerms

T0 = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)


def accepted(owner: str | None = "alice") -> tuple[Order, object]:
    return Order.accept(
        order_id=uuid4(),
        input_mint="So11111111111111111111111111111111111111112",
        output_mint="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        amount_in=2**64 - 1,
        slippage_bps=50,
        at=T0,
        owner=owner,
        details={"amountIn": "1.5", "nested": {"quotes": [1, 2]}},
    )


@pytest.fixture
async def path(tmp_path: Path) -> str:
    file = tmp_path / "group.sqlite"
    await run_migrations_async(f"sqlite+aiosqlite:///{file}")
    return str(file)


@pytest.fixture
async def fast(path: str) -> AsyncIterator[SqlOrderRepository]:
    db = Database(create_engine(f"sqlite+aiosqlite:///{path}"))
    assert db.group is not None
    yield SqlOrderRepository(db)
    await db.close()


@pytest.fixture
async def plain(path: str) -> AsyncIterator[SqlOrderRepository]:
    db = Database(create_engine(f"sqlite+aiosqlite:///{path}"), group_commit=False)
    assert db.group is None
    yield SqlOrderRepository(db)
    await db.close()


async def test_concurrent_writes_share_commits_and_each_resumes_only_after_its_commit(
    fast: SqlOrderRepository, path: str
) -> None:
    group = fast.db.group
    assert group is not None
    observer = sqlite3.connect(path)

    async def create_then_look() -> bool:
        order, first = accepted()
        await fast.create(order, first)  # type: ignore[arg-type]
        # Another connection sees the row as soon as the caller resumes: it was committed.
        row = observer.execute("SELECT seq FROM orders WHERE id = ?", (order.id.hex,)).fetchone()
        return bool(row == (1,))

    seen = await asyncio.gather(*(create_then_look() for _ in range(200)))
    assert all(seen)
    assert group.units == 200
    assert group.batches < 200 / 4  # most commits carried several callers' writes
    observer.close()


async def test_a_unit_that_fails_is_rolled_back_alone_and_the_rest_of_its_batch_commits(
    fast: SqlOrderRepository,
) -> None:
    orders = [accepted() for _ in range(3)]
    for order, first in orders:
        await fast.create(order, first)  # type: ignore[arg-type]
    stale, _ = orders[1]
    stale.seq = 7  # a worker's view that another worker has overtaken
    writes = []
    for order, _ in orders:
        event = order.apply(Trigger.ROUTE, T0 + timedelta(seconds=1), {"n": 1})
        writes.append(fast.record(order, event))
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], StaleWrite)
    assert results[2] is None
    assert [e.seq for e in await fast.events(orders[0][0].id)] == [1, 2]
    assert [e.seq for e in await fast.events(stale.id)] == [1]


async def test_what_the_group_writer_stores_reads_back_the_same_through_sqlalchemy_and_back(
    fast: SqlOrderRepository, plain: SqlOrderRepository
) -> None:
    for writer, reader, signature in ((fast, plain, "5" * 88), (plain, fast, "6" * 88)):
        order, first = accepted()
        await writer.create(order, first)  # type: ignore[arg-type]
        claimed = await writer.claim(order.id, "worker-1", T0, 30)
        assert claimed is not None
        routed = claimed.apply(Trigger.ROUTE, T0 + timedelta(microseconds=1), {"plan": "x"})
        claimed.route = {"dex": "raydium", "legs": [{"shareBps": 10_000}]}
        built = claimed.apply(Trigger.BUILD, T0 + timedelta(seconds=1), {})
        await writer.record(claimed, routed, built)
        claimed.tx = SignedTx(signature, b"\x01\x02", 151)
        submitted = claimed.apply(Trigger.SUBMIT, T0 + timedelta(seconds=2), {"txHash": signature})
        await writer.record(claimed, submitted)
        assert await reader.get(order.id) == await writer.get(order.id) == claimed
        assert await reader.events(order.id) == await writer.events(order.id)
        assert [e.seq for e in await reader.events(order.id, after_seq=2)] == [3, 4]
        assert await reader.renew(order.id, "worker-1", T0, 30)
        assert not await writer.renew(order.id, "worker-2", T0, 30)


async def test_order_terms_written_by_either_path_read_back_the_same_through_the_other(
    fast: SqlOrderRepository, plain: SqlOrderRepository
) -> None:
    for writer, reader in ((fast, plain), (plain, fast)):
        for terms, fee in (
            (LimitTerms(Decimal("0.000000001"), 2**64 - 1), PriorityFee(None)),
            (SniperTerms(50_000_000_000, True, True), PriorityFee(1)),
            (SniperTerms(), None),
        ):
            order, first = Order.accept(
                order_id=uuid4(), input_mint="a" * 44, output_mint="b" * 43, amount_in=7,
                slippage_bps=50, at=T0, kind=OrderKind.LIMIT, terms=terms,
                expires_at=T0 + timedelta(seconds=600, microseconds=1),
                max_price_impact_bps=2000, priority_fee=fee,
            )  # fmt: skip
            opened = order.apply(Trigger.WAIT, T0, {"waitingFor": "price"})
            await writer.create(order, first, opened)
            assert await reader.get(order.id) == await writer.get(order.id) == order
            assert await reader.events(order.id) == [first, opened]


async def test_the_group_writer_commits_with_a_full_fsync(fast: SqlOrderRepository) -> None:
    group = fast.db.group
    assert group is not None
    synchronous = await group.write(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
    assert synchronous == 2  # FULL: a commit is on disk before its callers resume


async def test_an_in_memory_database_has_no_group_writer() -> None:
    db = Database(create_engine("sqlite+aiosqlite://"))
    assert db.group is None
    await db.close()


async def test_a_batch_that_meets_another_writers_lock_waits_for_it_off_the_event_loop(
    fast: SqlOrderRepository, path: str
) -> None:
    group = fast.db.group
    assert group is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # e.g. an idempotency reservation in flight
    order, first = accepted()
    write = asyncio.ensure_future(fast.create(order, first))  # type: ignore[arg-type]
    ticks = 0
    for _ in range(20):  # the loop keeps turning while the batch waits for the lock
        await asyncio.sleep(0.005)
        ticks += 1
    assert not write.done()
    other.execute("COMMIT")
    await asyncio.wait_for(write, 5)
    assert ticks == 20
    assert await fast.get(order.id) == order
    # And the writer is back on the loop for the next batch.
    second, event = accepted()
    await fast.create(second, event)  # type: ignore[arg-type]
    other.close()


async def test_a_unit_that_raises_after_writing_is_undone_and_its_batch_still_commits(
    fast: SqlOrderRepository,
) -> None:
    group = fast.db.group
    assert group is not None
    kept, kept_first = accepted()
    lost, lost_first = accepted()
    write_kept = fast_units.create(kept, [kept_first])  # type: ignore[list-item]
    write_lost = fast_units.create(lost, [lost_first])  # type: ignore[list-item]

    def write_then_fail(conn: sqlite3.Connection) -> None:
        write_lost(conn)
        raise RuntimeError("after its insert")

    # Hold the writer in a batch of its own, so that the next two share one batch.
    release = threading.Event()
    holding = group.submit(lambda _conn: release.wait(5))
    await asyncio.sleep(0.05)
    writes = [group.submit(write_kept), group.submit(write_then_fail)]
    batches = group.batches
    release.set()
    await holding
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert group.batches == batches + 2  # the holding batch, then one with both units
    assert results[0] is None
    assert isinstance(results[1], RuntimeError)
    assert await fast.get(kept.id) == kept
    assert await fast.get(lost.id) is None  # its insert was rolled back with it
