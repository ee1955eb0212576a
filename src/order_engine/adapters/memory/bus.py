"""In-process event bus: the embedded-mode implementation of ``ports.bus.EventBus``.

Publishing is a synchronous walk over the matching subscriptions, appending to
each one's bounded buffer; nothing runs per subscriber until its consumer
asks. A subscription therefore costs a deque and an ``asyncio.Event``, and
ten thousand of them (one per WebSocket) are cheap.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING
from uuid import UUID

import structlog

from order_engine.domain.order import OrderEvent
from order_engine.ports.bus import EventBus, Subscription

log = structlog.get_logger(__name__)

DEFAULT_BUFFER_SIZE = 1024


class InMemorySubscription:
    """One consumer's view of the bus: a bounded buffer plus a wake-up signal.

    **Overflow.** ``publish`` never waits for a consumer. When the buffer is
    full, the *oldest* buffered event is dropped to make room for the new one,
    and ``dropped`` grows by one. A consumer that sees ``dropped`` change (or,
    per order, a ``seq`` gap) has missed events and must re-read them from the
    repository, exactly as it does on (re)connect; ``overflowed`` is
    ``dropped > 0``. Dropping the oldest rather than the newest keeps what
    the store cannot give any sooner: the latest events, a terminal one
    included, so a consumer that re-reads the gap can carry on live.

    ``close`` is idempotent, ends ``async for``, and makes ``get`` return
    ``None`` at once; events still buffered are discarded.
    """

    __slots__ = ("_buffer", "_bus", "_closed", "_dropped", "_signal", "order_id")

    def __init__(self, bus: InMemoryEventBus, order_id: UUID | None, buffer_size: int) -> None:
        self._bus = bus
        self.order_id = order_id
        self._buffer: deque[OrderEvent] = deque(maxlen=buffer_size)
        self._signal = asyncio.Event()
        self._closed = False
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """How many events this subscription lost to overflow, since it began."""
        return self._dropped

    @property
    def overflowed(self) -> bool:
        return self._dropped > 0

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> InMemorySubscription:
        return self

    async def __anext__(self) -> OrderEvent:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def get(self, timeout: float | None = None) -> OrderEvent | None:  # noqa: ASYNC109 - the port's signature
        """Next event, or ``None`` after ``timeout`` seconds without one, or once closed."""
        try:
            async with asyncio.timeout(timeout):
                while not self._closed:
                    if self._buffer:
                        return self._buffer.popleft()
                    self._signal.clear()
                    await self._signal.wait()
        except TimeoutError:
            pass
        return None

    async def close(self) -> None:
        self._detach()

    def _push(self, event: OrderEvent) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self._dropped += 1  # the deque's maxlen evicts the oldest on append
        self._buffer.append(event)
        self._signal.set()

    def _detach(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._signal.set()
        self._bus._forget(self)


class InMemoryEventBus:
    """Fan-out of order events to subscribers in this process.

    Subscriptions are indexed by order id (plus one set for all-orders
    subscribers), so a publish touches only the subscriptions that want the
    event. Delivery is at-most-once, per the port: events published before
    ``subscribe`` returns are not delivered; ``publish`` after ``close`` is
    dropped (the event is already persisted, and failing the publisher over
    a best-effort notification would only cause a retry). Must be used from
    the event loop's thread.
    """

    def __init__(self, *, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self._buffer_size = buffer_size
        self._by_order: dict[UUID, set[InMemorySubscription]] = {}
        self._all: set[InMemorySubscription] = set()
        self._closed = False

    @property
    def subscription_count(self) -> int:
        """Live subscriptions, all-orders ones included."""
        return sum(map(len, self._by_order.values())) + len(self._all)

    @property
    def subscribed_order_count(self) -> int:
        """Orders with at least one live per-order subscription."""
        return len(self._by_order)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def health(self) -> None:
        """In this process: nothing another process could take away."""
        return

    async def publish(self, event: OrderEvent) -> None:
        if self._closed:
            log.debug("bus.publish_after_close", order_id=str(event.order_id), seq=event.seq)
            return
        for subscription in self._by_order.get(event.order_id, ()):
            subscription._push(event)
        for subscription in self._all:
            subscription._push(event)

    async def subscribe(self, order_id: UUID | None = None) -> InMemorySubscription:
        if self._closed:
            raise RuntimeError("cannot subscribe: the event bus is closed")
        subscription = InMemorySubscription(self, order_id, self._buffer_size)
        if order_id is None:
            self._all.add(subscription)
        else:
            self._by_order.setdefault(order_id, set()).add(subscription)
        return subscription

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        subscriptions = [*self._all, *(s for subs in self._by_order.values() for s in subs)]
        for subscription in subscriptions:
            subscription._detach()

    def _forget(self, subscription: InMemorySubscription) -> None:
        if subscription.order_id is None:
            self._all.discard(subscription)
            return
        subscribers = self._by_order.get(subscription.order_id)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._by_order[subscription.order_id]


if TYPE_CHECKING:
    _conforms_to_the_port: type[EventBus] = InMemoryEventBus
    _subscription_conforms: type[Subscription] = InMemorySubscription
