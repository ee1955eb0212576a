"""One order's events, complete and in order, for any subscriber at any moment.

The bus is fast but at-most-once; the repository is complete but must be
polled. Combining them without loss or duplicates:

1. subscribe to the bus *first*, so nothing published from now on is missed;
2. replay the persisted events after the client's cursor;
3. then take live events, dropping any seq already sent;
4. on a gap (seq jumps), on a bus overflow, or after ``idle_s`` of silence,
   re-read from the repository: this recovers publishes lost in a crash;
5. stop after the terminal event, or at once when the cursor already stands at
   (or past) the terminal event: nothing will ever follow it.

Reading first and subscribing second would lose whatever is published in
between; this order cannot.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from uuid import UUID

from order_engine.domain.order import TERMINAL, OrderEvent
from order_engine.ports.bus import EventBus
from order_engine.ports.repository import OrderRepository


async def order_events(
    order_id: UUID,
    *,
    repo: OrderRepository,
    bus: EventBus,
    after_seq: int = 0,
    idle_s: float = 5.0,
    max_idle_s: float = 30.0,
) -> AsyncGenerator[OrderEvent, None]:
    """Yield events with seq > ``after_seq`` until (and including) the terminal one."""
    subscription = await bus.subscribe(order_id)
    last = after_seq
    wait = idle_s
    dropped = subscription.dropped
    try:
        backlog = await repo.events(order_id, after_seq=last)
        if not backlog and await _ended_by(repo, order_id, last):
            return
        while True:
            for event in backlog:
                if event.seq <= last:
                    continue
                yield event
                last = event.seq
                if event.status in TERMINAL:
                    return
            backlog = []
            live = await subscription.get(timeout=wait)
            lost, dropped = subscription.dropped != dropped, subscription.dropped
            if live is not None and not lost:
                if live.seq == last + 1:
                    backlog = [live]
                    wait = idle_s
                    continue
                if live.seq <= last:
                    if live.status in TERMINAL:
                        return  # the cursor was already past the end
                    continue  # a duplicate of something replayed
            # A gap, an overflow, or silence: the store is the source of truth.
            backlog = await repo.events(order_id, after_seq=last)
            if live is None and not backlog:
                if await _ended_by(repo, order_id, last):
                    return
                wait = min(wait * 2, max_idle_s)  # back off while nothing happens
    finally:
        await subscription.close()


async def _ended_by(repo: OrderRepository, order_id: UUID, seq: int) -> bool:
    """Whether the order is gone, or finished with a terminal event at or before ``seq``."""
    order = await repo.get(order_id)
    return order is None or (order.is_terminal and order.seq <= seq)
