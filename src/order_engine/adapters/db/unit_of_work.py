"""``ports.unit_of_work.UnitOfWork`` on the process's ``Database``.

The staged writes become one transaction: on a SQLite file one unit for the
group writer (``sqlite_orders``: one savepoint in its batch, one commit per
batch, as a lone order creation), elsewhere one ``Database.writing()``
transaction through SQLAlchemy. They run in the order they were staged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from order_engine.adapters.db import sqlite_orders as fast
from order_engine.adapters.db.idempotency import complete_reservation
from order_engine.adapters.db.repository import SqlOrderRepository, check_new
from order_engine.domain.order import Order, OrderEvent
from order_engine.ports.idempotency import Completion

if TYPE_CHECKING:
    from order_engine.ports.unit_of_work import UnitOfWork

Step = Callable[[AsyncConnection], Awaitable[None]]


class SqlUnitOfWork:
    """Writes of the order store and the idempotency store, committed together."""

    def __init__(self, orders: SqlOrderRepository) -> None:
        self._orders = orders
        self._group = orders.db.group
        self._units: list[fast.Unit] = []  # on the group writer
        self._steps: list[Step] = []  # through SQLAlchemy
        self._used = False

    def complete_key(self, completion: Completion, order_id: UUID) -> None:
        if self._group is not None:
            self._units.append(fast.complete_reservation(completion, order_id))
            return

        async def step(conn: AsyncConnection) -> None:
            await complete_reservation(conn, completion, order_id)

        self._steps.append(step)

    def create_order(self, order: Order, *events: OrderEvent) -> None:
        check_new(order, events)
        if self._group is not None:
            self._units.append(fast.create(order, events))
            return

        async def step(conn: AsyncConnection) -> None:
            await self._orders.insert(conn, order, events)

        self._steps.append(step)

    async def commit(self) -> None:
        if self._used:
            raise RuntimeError("a unit of work commits once; begin another")
        self._used = True
        if self._group is not None:
            if self._units:
                await self._group.write(fast.together(self._units))
            return
        async with self._orders.db.writing() as conn:
            for step in self._steps:
                await step(conn)


if TYPE_CHECKING:
    _conforms_to_the_port: type[UnitOfWork] = SqlUnitOfWork
