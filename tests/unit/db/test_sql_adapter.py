"""What the SQL adapter adds beyond the port's contract: types, constraints, engines, plans."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy.exc import IntegrityError, StatementError

from order_engine.adapters.db import (
    Database,
    SqlOrderRepository,
    create_engine,
    run_migrations_async,
)
from order_engine.adapters.db.engine import SQLITE_BUSY_TIMEOUT_MS, async_url
from order_engine.adapters.db.repository import unfinished_query
from order_engine.domain.order import Order, OrderEvent, SignedTx, Trigger

NewDatabase = Callable[[], Coroutine[Any, Any, str]]  # the ``new_database`` fixture (conftest.py)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def accepted(amount_in: int = 1_000) -> tuple[Order, OrderEvent]:
    return Order.accept(
        order_id=uuid4(),
        input_mint="So11111111111111111111111111111111111111112",
        output_mint="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        amount_in=amount_in,
        slippage_bps=50,
        at=T0,
    )


@pytest.fixture
async def repo(new_database: NewDatabase) -> AsyncIterator[SqlOrderRepository]:
    url = await new_database()
    await run_migrations_async(url)
    engine = create_engine(url)
    repo = SqlOrderRepository(Database(engine))
    yield repo
    await repo.db.close()


@pytest.mark.parametrize("amount", [2**64, -1])
async def test_an_amount_outside_u64_is_refused_before_it_reaches_the_table(
    repo: SqlOrderRepository, amount: int
) -> None:
    order, first = accepted(amount)
    with pytest.raises(StatementError, match="within u64"):
        await repo.create(order, first)
    assert await repo.get(order.id) is None


async def test_an_amount_that_is_not_an_int_is_refused(repo: SqlOrderRepository) -> None:
    order, first = accepted()
    order.amount_in = 1.5  # type: ignore[assignment]  # a careless caller's float
    with pytest.raises(StatementError, match="expected an int amount"):
        await repo.create(order, first)


async def test_creating_an_order_id_twice_fails_and_keeps_the_first(
    repo: SqlOrderRepository,
) -> None:
    order, first = accepted()
    await repo.create(order, first)
    twin, twin_first = accepted(amount_in=999)
    twin.id = order.id
    twin_first = OrderEvent(order.id, 1, twin_first.status, T0, {"twin": True})
    with pytest.raises(IntegrityError):
        await repo.create(twin, twin_first)
    assert await repo.get(order.id) == order
    assert await repo.events(order.id) == [first]


async def test_two_orders_cannot_persist_the_same_signed_transaction(
    repo: SqlOrderRepository,
) -> None:
    tx = SignedTx("5" * 88, b"\x01" * 200, 1_000)
    submitted = []
    for _ in range(2):
        order, first = accepted()
        await repo.create(order, first)
        await repo.record(order, order.apply(Trigger.ROUTE, T0))
        await repo.record(order, order.apply(Trigger.BUILD, T0))
        order.tx = tx
        submitted.append((order, order.apply(Trigger.SUBMIT, T0)))
    await repo.record(*submitted[0])
    second, _ = submitted[1]
    with pytest.raises(IntegrityError):
        await repo.record(*submitted[1])
    stored = await repo.get(second.id)
    assert stored is not None
    assert stored.tx is None
    assert [e.seq for e in await repo.events(second.id)] == [1, 2, 3]


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
async def test_sqlite_connections_get_the_pragmas_concurrency_depends_on(
    repo: SqlOrderRepository,
) -> None:
    async with repo.engine.connect() as conn:
        pragmas = {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        "synchronous": 1,  # NORMAL
        "foreign_keys": 1,
    }


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
async def test_two_engines_writing_one_sqlite_file_at_once_never_see_database_is_locked(
    new_database: NewDatabase,
) -> None:
    # Two engines share no in-process lock, so only WAL and busy_timeout stand
    # between them and "database is locked": the situation of two processes.
    url = await new_database()
    await run_migrations_async(url)
    engines = [create_engine(url), create_engine(url)]
    repos = [SqlOrderRepository(Database(e)) for e in engines]
    pairs = [accepted() for _ in range(60)]

    async def lifecycle(repo: SqlOrderRepository, order: Order, first: OrderEvent) -> None:
        await repo.create(order, first)
        assert await repo.claim(order.id, "w", T0, 30) is not None
        await repo.record(order, order.apply(Trigger.ROUTE, T0 + timedelta(seconds=1)))
        await repo.release(order.id, "w")

    await asyncio.gather(
        *(lifecycle(repos[n % 2], order, first) for n, (order, first) in enumerate(pairs))
    )
    for order, _ in pairs:
        assert [e.seq for e in await repos[0].events(order.id)] == [1, 2]
    for engine in engines:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
async def test_the_reconciler_scan_uses_the_partial_index_even_as_a_generic_plan(
    repo: SqlOrderRepository,
) -> None:
    # Prepared statements end up on generic plans, where a parameterised
    # predicate could not prove the index's; the literal one can.
    compiled = unfinished_query(T0, 100).compile(dialect=repo.engine.dialect)
    async with repo.engine.connect() as conn:
        await conn.exec_driver_sql("SET enable_seqscan = off")
        await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        await conn.exec_driver_sql(f"PREPARE reconciler_scan AS {compiled}")
        plan = (
            await conn.exec_driver_sql(
                "EXPLAIN EXECUTE reconciler_scan('2025-01-01T00:00:00+00:00', 100)"
            )
        ).scalars()
        plan_text = "\n".join(plan)
    assert "ix_orders_active_updated_at" in plan_text, plan_text


def test_the_usual_sync_urls_get_their_async_driver() -> None:
    assert async_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url("postgres://u@h/db").drivername == "postgresql+asyncpg"


def test_an_unsupported_database_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="got mysql://"):
        create_engine("mysql://u@h/db")
