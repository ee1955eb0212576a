"""Every event of one account's orders, in one stream, resumable from a cursor.

The same two-source idea as ``streaming.py``, with the store's global event
order (``ports/order_queries.py``) in place of one order's seq:

1. register with the process's ``StreamTailer`` *first*; once registered, the
   tailer offers every event after its own log cursor, in log order;
2. take the starting cursor: the client's, or the current end of the log;
3. catch up: read the log after the cursor, in order, until a read comes back
   short; the tailer's cursor was taken before, so these reads reach at least
   as far as where its offers begin;
4. then send the tailer's messages, dropping any at or before the cursor.

Every event sent comes from the store, in store order (the tailer reads the
log too, once per process), so nothing is skipped, duplicated or reordered,
across a reconnect either. While catching up, live messages beyond the
listener's buffer are dropped and the log is read again; while sending
(catching up or live), a full buffer closes the stream (``too_slow``):
resume with ``after=cursor``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from order_engine.app.live import Listener, StreamTailer
from order_engine.app.wire import account_text
from order_engine.ports.order_queries import EventCursor, OrderQueries

BATCH = 500


class AccountStream:
    def __init__(
        self, owner: str | None, queries: OrderQueries, listener: Listener, cursor: EventCursor
    ) -> None:
        self.owner = owner
        self.cursor = cursor  # the last event sent (or where the stream started)
        self._queries = queries
        self._listener = listener

    @property
    def too_slow(self) -> bool:
        return self._listener.too_slow

    def close(self) -> None:
        self._listener.close()

    async def messages(self) -> AsyncGenerator[str, None]:
        """Wire messages of events after ``cursor``, for ever; closes the listener."""
        listener = self._listener
        listener.task = asyncio.current_task()
        try:
            while True:
                while True:
                    # Only while the store is being read may live copies be dropped
                    # (they will be read); while sending, a full buffer means too slow.
                    listener.catching_up = True
                    batch = await self._queries.account_events(self.owner, self.cursor, BATCH)
                    listener.catching_up = False
                    for item in batch:
                        yield account_text(item.event, str(item.cursor))
                        self.cursor = item.cursor
                    if len(batch) < BATCH:
                        break
                while (delivery := await listener.next()) is not None:
                    cursor, message, _ = delivery
                    if cursor <= self.cursor:
                        continue
                    yield message
                    self.cursor = cursor
        finally:
            listener.close()


async def open_account_stream(
    owner: str | None,
    *,
    queries: OrderQueries,
    tailer: StreamTailer,
    after: EventCursor | None,
) -> AccountStream:
    """Register, then fix the start: ``after``, or the end of the log when ``None``."""
    listener = await tailer.listen_account(owner)
    try:
        start = after if after is not None else await queries.account_head(owner)
    except BaseException:
        listener.close()
        raise
    return AccountStream(owner, queries, listener, start)
