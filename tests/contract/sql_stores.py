"""Fresh, migrated SQL stores for the contract suites of the ports that live in SQL
next to the orders (API keys, idempotency keys, order queries).

``SqliteStores`` gives each test its own database file; ``PostgresStores``
shares the session's database, emptied before each test (the tests run one
at a time).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text

from order_engine.adapters.db import (
    Database,
    SqlOrderRepository,
    create_engine,
    run_migrations_async,
)
from order_engine.domain.order import Order, OrderEvent

SOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TABLES = "order_events, orders, api_keys, idempotency_keys"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def accepted(
    *,
    owner: str | None = None,
    created: datetime = T0,
    input_mint: str = SOL,
    output_mint: str = USDC,
    **details: Any,
) -> tuple[Order, OrderEvent]:
    return Order.accept(
        order_id=uuid4(),
        input_mint=input_mint,
        output_mint=output_mint,
        amount_in=1_000_000_000,
        slippage_bps=50,
        at=created,
        owner=owner,
        details=details,
    )


class SqliteStores:
    @pytest.fixture
    async def sql_repo(self, tmp_path: Path) -> AsyncIterator[SqlOrderRepository]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'stores.sqlite'}"
        await run_migrations_async(url)
        engine = create_engine(url)
        repo = SqlOrderRepository(Database(engine))
        yield repo
        await repo.db.close()


@pytest.mark.postgres
class PostgresStores:
    @pytest.fixture
    async def sql_repo(self, pg_database_url: str) -> AsyncIterator[SqlOrderRepository]:
        await run_migrations_async(pg_database_url)
        engine = create_engine(pg_database_url)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {TABLES}"))
        repo = SqlOrderRepository(Database(engine))
        yield repo
        await repo.db.close()
