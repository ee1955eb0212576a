"""Waiting-order store port: the reads a trigger service and the expiry sweeper need.

Every state change of a waiting order still goes through ``OrderRepository.record``
(conditional on seq): this port only finds the orders to act on. Open orders
are a small part of the table, so each read is served by the partial index
over them (migration 0004).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol
from uuid import UUID

from order_engine.domain.order import Order, OrderKind


class WaitingOrderStore(Protocol):
    async def open_orders(self, kind: OrderKind, *, after: UUID | None, limit: int) -> list[Order]:
        """Open orders of ``kind`` with id greater than ``after``, in id order: a
        trigger service loads (and, after a restart, resumes) its whole book with these."""
        ...

    async def opened_since(self, kind: OrderKind, since: datetime, limit: int) -> list[Order]:
        """Open orders of ``kind`` that became open at or after ``since`` (their last
        change), oldest first: how a trigger service learns of orders another process
        accepted, or that went back to waiting after firing."""
        ...

    async def due(self, now: datetime, limit: int) -> list[UUID]:
        """Open orders whose expiry is at or before ``now``, soonest first."""
        ...

    async def count_open(self) -> Mapping[OrderKind, int]:
        """How many orders of each kind are open now (for ``/metrics``)."""
        ...
