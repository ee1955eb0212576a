"""Order repository port: orders and their event logs, written conditionally.

Every write that changes an order is conditional on the seq the writer last
saw, and inserts the event carrying the next seq in the same transaction, so:

* the event log is gapless and never forks, whatever the number of workers;
* a stale writer (a worker whose job was redelivered elsewhere) gets
  ``StaleWrite`` and must stop without side effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from order_engine.domain.order import Order, OrderEvent


class OrderRepository(Protocol):
    async def create(self, order: Order, *events: OrderEvent) -> None:
        """Insert a new order with its first events (seq 1 on, consecutive, ending at
        ``order.seq``), atomically: a waiting order is ``pending`` and ``open`` at once.
        (With other writes in the same transaction: ``ports/unit_of_work.py``.)
        """
        ...

    async def get(self, order_id: UUID) -> Order | None: ...

    async def events(self, order_id: UUID, after_seq: int = 0) -> list[OrderEvent]:
        """Events with seq > ``after_seq``, in seq order."""
        ...

    async def record(self, order: Order, *events: OrderEvent) -> None:
        """Persist ``order``'s new state and ``events``, consecutive seqs ending at
        ``order.seq``, in one transaction.

        Conditional on the stored seq being ``events[0].seq - 1``; raises
        ``StaleWrite`` otherwise and writes nothing. A terminal state also
        drops the order's lease: nobody may claim a terminal order anyway.
        """
        ...

    async def claim(
        self, order_id: UUID, worker: str, now: datetime, lease_seconds: float
    ) -> Order | None:
        """Take a lease on an active order and count an attempt.

        Returns the order, or ``None`` when it is terminal, unknown, or leased
        by another worker whose lease has not expired.
        """
        ...

    async def renew(self, order_id: UUID, worker: str, now: datetime, lease_seconds: float) -> bool:
        """Extend ``worker``'s lease; ``False`` if it no longer holds it."""
        ...

    async def release(self, order_id: UUID, worker: str) -> None:
        """Drop ``worker``'s lease (if it still holds it) so another may claim at once."""
        ...

    async def unfinished(self, older_than: datetime, limit: int) -> Sequence[UUID]:
        """Active orders last updated before ``older_than`` and not leased since then
        (no lease, or one that expired before ``older_than``), oldest first: the
        orders no worker is on, for the reconciler."""
        ...

    async def ping(self) -> None:
        """Raise if the store is unreachable (readiness)."""
        ...
