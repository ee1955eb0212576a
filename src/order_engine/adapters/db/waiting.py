"""``WaitingOrderStore`` on SQL: the open orders, through their partial index."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import func, select

from order_engine.adapters.db.database import Database
from order_engine.adapters.db.repository import _order, _uuid
from order_engine.adapters.db.schema import WAITING, orders
from order_engine.domain.order import Order, OrderKind

if TYPE_CHECKING:
    from order_engine.ports.waiting import WaitingOrderStore


class SqlWaitingOrders:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open_orders(self, kind: OrderKind, *, after: UUID | None, limit: int) -> list[Order]:
        stmt = select(orders).where(WAITING, orders.c.kind == kind.value)
        if after is not None:
            stmt = stmt.where(orders.c.id > after)
        stmt = stmt.order_by(orders.c.id).limit(limit)
        async with self._db.reading() as conn:
            return [_order(row) for row in (await conn.execute(stmt)).all()]

    async def opened_since(self, kind: OrderKind, since: datetime, limit: int) -> list[Order]:
        stmt = (
            select(orders)
            .where(WAITING, orders.c.kind == kind.value, orders.c.updated_at >= since)
            .order_by(orders.c.updated_at, orders.c.id)
            .limit(limit)
        )
        async with self._db.reading() as conn:
            return [_order(row) for row in (await conn.execute(stmt)).all()]

    async def due(self, now: datetime, limit: int) -> list[UUID]:
        # WAITING is the partial index's own predicate, so the index serves this scan.
        stmt = (
            select(orders.c.id)
            .where(WAITING, orders.c.expires_at <= now)
            .order_by(orders.c.expires_at, orders.c.id)
            .limit(limit)
        )
        async with self._db.reading() as conn:
            return [_uuid(value) for value in (await conn.scalars(stmt)).all()]

    async def count_open(self) -> Mapping[OrderKind, int]:
        stmt = select(orders.c.kind, func.count()).where(WAITING).group_by(orders.c.kind)
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        counts = dict.fromkeys(OrderKind, 0)
        counts.update({OrderKind(kind): int(n) for kind, n in rows})
        return counts


if TYPE_CHECKING:

    def _satisfies_port(db: Database) -> WaitingOrderStore:
        return SqlWaitingOrders(db)
