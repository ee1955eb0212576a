"""Every event of one account's orders, in one stream, resumable from a cursor.

The same two-source idea as ``streaming.py``, with the store's global event
order (``ports/order_queries.py``) in place of one order's seq:

1. subscribe to the bus (all orders) *first*, so that no event published from
   now on can pass unnoticed;
2. take the starting cursor: the client's, or the current end of the log;
3. read the log after the cursor, in order, and advance the cursor;
4. then sleep until the bus says something happened (or ``idle_s`` passes),
   and read again.

The bus only wakes the stream; every event sent comes from the store, in
store order, so nothing is skipped, duplicated or reordered across a
reconnect. A wake-up is followed by a short pause (``settle_s``) that lets a
burst coalesce into one read, and by a few quick re-reads: on PostgreSQL an
event becomes readable only once every older transaction has ended, which
can be a moment after it was published.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from order_engine.ports.bus import EventBus, Subscription
from order_engine.ports.order_queries import AccountEvent, EventCursor, OrderQueries

BATCH = 500


@dataclass
class AccountStream:
    owner: str | None
    queries: OrderQueries
    subscription: Subscription
    cursor: EventCursor  # the last event read (or where the stream started)
    idle_s: float = 1.0
    settle_s: float = 0.02

    async def events(self) -> AsyncGenerator[AccountEvent, None]:
        """Events after ``cursor`` for ever (until the caller stops); closes the subscription."""
        wait = self.settle_s
        try:
            while True:
                batch = await self.queries.account_events(self.owner, self.cursor, BATCH)
                for item in batch:
                    yield item
                    self.cursor = item.cursor
                if len(batch) == BATCH:
                    continue
                woke = await self.subscription.get(timeout=wait)
                if woke is None:
                    wait = min(wait * 2, self.idle_s)
                    continue
                await asyncio.sleep(self.settle_s)
                while await self.subscription.get(timeout=0) is not None:
                    pass  # one read covers every event the wake-ups announced
                wait = self.settle_s
        finally:
            await self.subscription.close()


async def open_account_stream(
    owner: str | None,
    *,
    queries: OrderQueries,
    bus: EventBus,
    after: EventCursor | None,
    idle_s: float = 1.0,
) -> AccountStream:
    """Subscribe, then fix the start: ``after``, or the end of the log when ``None``."""
    subscription = await bus.subscribe(None)
    try:
        start = after if after is not None else await queries.account_head(owner)
    except BaseException:
        await subscription.close()
        raise
    return AccountStream(owner, queries, subscription, start, idle_s=idle_s)
