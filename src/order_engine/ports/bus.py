"""Event bus port: live fan-out of persisted order events.

The bus is at-most-once: a subscriber connected at the wrong moment, or a
publish lost in a crash, misses events. Consumers therefore subscribe first
and then replay from the repository, dropping seqs already seen
(``order_engine.app.streaming``); the bus only makes delivery *fast*, the
repository makes it *complete*.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol
from uuid import UUID

from order_engine.domain.order import OrderEvent
from order_engine.ports.lifecycle import Service


class Subscription(Protocol):
    """A live feed with a bounded buffer. A slow consumer loses the *oldest*
    buffered events rather than slowing publishers; ``dropped`` counts them, so
    a consumer that sees it change re-reads from the repository."""

    @property
    def dropped(self) -> int: ...

    def __aiter__(self) -> AsyncIterator[OrderEvent]: ...

    async def get(self, timeout: float | None = None) -> OrderEvent | None:  # noqa: ASYNC109
        """Next event, or ``None`` after ``timeout`` seconds without one."""
        ...

    async def close(self) -> None: ...


class EventBus(Service, Protocol):
    async def start(self) -> None:
        """Connect now, if the bus has anything to connect to: a process that cannot
        reach it fails at start, and is live before its first subscriber."""
        ...

    async def publish(self, event: OrderEvent) -> None: ...

    async def subscribe(self, order_id: UUID | None = None) -> Subscription:
        """Events of one order, or of every order when ``order_id`` is ``None``.

        When this returns, the subscription is live: any event published
        afterwards is delivered to it.
        """
        ...
