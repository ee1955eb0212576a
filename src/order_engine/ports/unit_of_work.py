"""Unit-of-work port: writes that commit together or not at all.

A use case stages its writes, then ``commit`` makes them one transaction (as
in Cosmic Python's unit of work). Creating an order and completing the
``Idempotency-Key`` reservation it answers are one: a completed key always
has its order, and a key still in flight never has one. A unit of work is
used once; a failed ``commit`` writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol
from uuid import UUID

from order_engine.domain.order import Order, OrderEvent
from order_engine.ports.idempotency import Completion


class UnitOfWork(Protocol):
    def complete_key(self, completion: Completion, order_id: UUID) -> None:
        """Complete the key's reservation with ``order_id`` and its response; the
        commit raises ``IdempotencyKeyTaken`` if the reservation is no longer
        this request's."""
        ...

    def create_order(self, order: Order, *events: OrderEvent) -> None:
        """Insert a new order with its first events (as ``OrderRepository.create``)."""
        ...

    async def commit(self) -> None: ...


UnitsOfWork = Callable[[], UnitOfWork]  # a fresh unit of work per use case
