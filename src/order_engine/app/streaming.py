"""One order's events, complete and in order, for any subscriber at any moment.

The bus is fast but at-most-once; the repository is complete. The stream
registers with the process's ``StreamTailer`` *first* (so nothing published
from then on passes it by), then:

1. replays the persisted events after the client's cursor;
2. then takes live messages from its listener, dropping any seq already sent;
3. on a gap (seq jumps) or when the tailer says its buffer may have holes (a
   bus outage or overflow, or a whole sweep without a word), re-reads the
   store: this recovers publishes lost in a crash;
4. stops after the terminal event, or at once when the cursor already stands
   at (or past) the terminal event: nothing will ever follow it.

Every message is the tailer's shared string for live events; replayed ones
are encoded here, once each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from uuid import UUID

from order_engine.app.live import StreamTailer
from order_engine.app.wire import event_text
from order_engine.domain.order import TERMINAL
from order_engine.ports.repository import OrderRepository


class OrderStream:
    """The per-order stream of one socket; ``last`` is the last seq sent."""

    def __init__(
        self, order_id: UUID, *, repo: OrderRepository, tailer: StreamTailer, after_seq: int = 0
    ) -> None:
        self.order_id = order_id
        self.last = after_seq
        self.too_slow = False
        self._repo = repo
        self._tailer = tailer

    async def messages(self) -> AsyncGenerator[str, None]:
        """Wire messages with seq > ``after_seq`` until (and including) the terminal one."""
        listener = await self._tailer.listen_order(self.order_id)
        listener.task = asyncio.current_task()
        try:
            first = True
            while True:
                listener.catching_up = True  # live copies may be dropped: the store has them
                backlog = await self._repo.events(self.order_id, after_seq=self.last)
                if first and not backlog and await self._ended():
                    return
                first = False
                listener.catching_up = False
                for event in backlog:
                    if event.seq <= self.last:
                        continue
                    yield event_text(event)
                    self.last = event.seq
                    if event.status in TERMINAL:
                        return
                while (delivery := await listener.next()) is not None:
                    seq, message, terminal = delivery
                    if seq <= self.last:
                        if terminal:
                            return  # the cursor was already past the end
                        continue  # a duplicate of something replayed
                    if seq != self.last + 1:
                        break  # a gap: the store has what the bus lost
                    yield message
                    self.last = seq
                    if terminal:
                        return
        finally:
            self.too_slow = listener.too_slow
            listener.close()

    async def _ended(self) -> bool:
        """Whether the order is gone, or finished at or before ``last``."""
        order = await self._repo.get(self.order_id)
        return order is None or (order.is_terminal and order.seq <= self.last)
