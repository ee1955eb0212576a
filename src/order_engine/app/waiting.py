"""The waiting-order core every trigger service shares: fire, expire, and find.

A trigger service (the price watcher for limit orders, a launch listener for
sniper orders) decides *when* an order's condition holds; this module does
what follows, the same way for every type:

* ``WaitingOrders.trigger`` moves an order ``open -> triggered`` with the
  details of what fired it, then enqueues the ordinary execution job. The
  write is conditional on the seq the order had while open, so of several
  watcher processes seeing the same price, and of a trigger racing a cancel
  or an expiry, exactly one wins; the others see the order is no longer open
  and do nothing. Should the enqueue fail after the write, the reconciler
  finds the ``triggered`` order (it is running, not waiting) and enqueues it.
* ``WaitingOrders.expire_due`` ends the open orders whose ``expires_at`` has
  passed, found through the database (durable: an expiry missed while no
  process ran happens at the next sweep), with the same conditional write.

From ``triggered`` on, the order is an ordinary job: the executor, router and
chain code know nothing of why it was enqueued.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog

from order_engine.app.metrics import NULL_METRICS
from order_engine.app.reporting import wire_time
from order_engine.domain.errors import StaleWrite
from order_engine.domain.order import Order, OrderEvent, OrderStatus, Trigger
from order_engine.ports.bus import EventBus
from order_engine.ports.clock import Clock
from order_engine.ports.metrics import Metrics
from order_engine.ports.queue import JobQueue
from order_engine.ports.repository import OrderRepository
from order_engine.ports.waiting import WaitingOrderStore

log = structlog.get_logger(__name__)

# A write that loses its seq re-reads and decides again; an open order can only
# leave ``open``, so the second round always settles it.
_ROUNDS = 4
SWEEP_BATCH = 500


class WaitingOrders:
    def __init__(
        self,
        *,
        repo: OrderRepository,
        store: WaitingOrderStore,
        bus: EventBus,
        queue: JobQueue,
        clock: Clock,
        worker_id: str,
        metrics: Metrics = NULL_METRICS,
    ) -> None:
        self.repo = repo
        self.store = store
        self.bus = bus
        self.queue = queue
        self.clock = clock
        self.worker_id = worker_id
        self.metrics = metrics
        # Told of every order this process moved out of ``open`` (fired, expired),
        # so that in-process trigger services drop it from their books at once.
        self.closed: list[Callable[[Order], None]] = []

    async def trigger(
        self,
        order: Order | UUID,
        details: Mapping[str, Any],
        *,
        observed_at: float | None = None,
    ) -> Order | None:
        """Fire ``order`` (``open -> triggered``) and enqueue its execution job.

        ``details`` say what fired it (for a price: the price seen, the pool, the
        slot); ``observed_at`` is the monotonic time the firing state was seen,
        for the trigger-latency metric. Returns the triggered order, or ``None``
        when it is no longer open (another process fired it, or it was cancelled
        or expired first): exactly one trigger per order ever succeeds.
        """
        current = copy.copy(order) if isinstance(order, Order) else None
        order_id = order.id if isinstance(order, Order) else order
        for _ in range(_ROUNDS):
            if current is None:
                current = await self.repo.get(order_id)
            if current is None or current.status is not OrderStatus.OPEN:
                if current is not None and isinstance(order, Order):
                    # Seen open by this trigger service, fired (or ended) elsewhere first.
                    log.info("order_trigger_lost", order_id=str(order_id), now=current.status.value)
                return None
            event = current.apply(
                Trigger.FIRE, self.clock.now(), {**details, "triggeredBy": self.worker_id}
            )
            # What fired it travels with the order (the executor keeps it in the route
            # and names the trigger's slot in the fill), whatever the order's type.
            current.route = {"trigger": dict(event.details)}
            try:
                await self.repo.record(current, event)
            except StaleWrite:
                current = None  # it moved: read what it is now, and decide again
                continue
            if observed_at is not None:
                self.metrics.trigger_latency(
                    current.kind.value, self.clock.monotonic() - observed_at
                )
            log.info("order_triggered", order_id=str(order_id), kind=current.kind.value)
            await self._publish(event)
            self._closed(current)
            try:
                await self.queue.enqueue(current.id)
            except Exception as exc:  # noqa: BLE001 - triggered is running: the reconciler enqueues it
                log.warning(
                    "enqueue_failed_reconciler_will_retry", order_id=str(order_id), error=repr(exc)
                )
            return current
        return None

    async def expire(self, order_id: UUID, now: datetime | None = None) -> Order | None:
        """End an open order whose expiry has passed; ``None`` if it is not (or no
        longer) open, or not yet due."""
        for _ in range(_ROUNDS):
            current = await self.repo.get(order_id)
            at = now or self.clock.now()
            if current is None or current.status is not OrderStatus.OPEN:
                return None
            if current.expires_at is None or current.expires_at > at:
                return None
            event = current.apply(
                Trigger.EXPIRE,
                at,
                {"reason": "expired before its condition held", "expiresAt": _z(current)},
            )
            try:
                await self.repo.record(current, event)
            except StaleWrite:
                continue
            log.info("order_expired", order_id=str(order_id))
            await self._publish(event)
            self._closed(current)
            return current
        return None

    async def expire_due(self, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
        """Expire every open order due by ``now`` (at most ``limit`` per call);
        returns how many this call expired."""
        at = now or self.clock.now()
        expired = 0
        for order_id in await self.store.due(at, limit):
            if await self.expire(order_id, at) is not None:
                expired += 1
        return expired

    async def sweep_forever(self, interval_s: float) -> None:
        """The expiry sweeper, and the open-orders gauge, every ``interval_s``."""
        while True:
            try:
                while await self.expire_due() >= SWEEP_BATCH:
                    pass  # a backlog (the engine was down): keep going
                for kind, count in (await self.store.count_open()).items():
                    self.metrics.open_orders(kind.value, count)
            except Exception as exc:  # noqa: BLE001 - a database outage: try again next round
                log.warning("expiry_sweep_failed", error=repr(exc))
            await asyncio.sleep(interval_s)

    def _closed(self, order: Order) -> None:
        for listener in self.closed:
            listener(order)

    async def _publish(self, event: OrderEvent) -> None:
        try:
            await self.bus.publish(event)
        except Exception as exc:  # noqa: BLE001 - subscribers replay from the store
            log.warning("publish_failed", order_id=str(event.order_id), error=repr(exc))
        else:
            self.metrics.event_published()


def _z(order: Order) -> str | None:
    at = order.expires_at
    return None if at is None else wire_time(at)
