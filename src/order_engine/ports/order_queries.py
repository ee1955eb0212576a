"""Read-side port: order lists and the account event log.

**Global event order.** Every persisted event has a position ``(txid,
position)`` that only grows in the order the account stream reads it: a
reader never finds a new event *behind* one it already read. PostgreSQL
hands out ``position`` from a sequence, whose values can commit out of order,
so the adapter pairs it with the writing transaction's id and only reads
events of transactions older than the oldest one still running
(docs/decisions/0004-account-stream-cursor.md). SQLite writers are serial,
so there ``txid`` is always 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from order_engine.domain.order import Order, OrderEvent, OrderKind, OrderStatus


@dataclass(frozen=True, slots=True, order=True)
class EventCursor:
    txid: int = 0
    position: int = 0

    def __str__(self) -> str:
        return f"{self.txid}-{self.position}"


START = EventCursor(0, 0)


@dataclass(frozen=True, slots=True)
class AccountEvent:
    event: OrderEvent
    cursor: EventCursor
    owner: str | None = None  # whose order it is: how a stream tailer routes it


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """``owner`` ``None`` means every owner (open mode). ``dex`` matches a venue
    named alone or as part of a split (``meteora+raydium``)."""

    owner: str | None = None
    statuses: Sequence[OrderStatus] = ()
    kinds: Sequence[OrderKind] = ()
    input_mint: str | None = None
    output_mint: str | None = None
    dex: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before


@dataclass(frozen=True, slots=True)
class PageKey:
    """Keyset position in the newest-first listing: the last order of a page."""

    created_at: datetime
    order_id: UUID


class OrderQueries(Protocol):
    async def list_orders(
        self, where: OrderFilter, *, limit: int, after: PageKey | None = None
    ) -> list[Order]:
        """Up to ``limit`` orders, newest first by ``(created_at, id)``, after ``after``."""
        ...

    async def account_events(
        self, owner: str | None, after: EventCursor, limit: int
    ) -> list[AccountEvent]:
        """Events of ``owner``'s orders (every order's when ``None``) after ``after``, in
        cursor order; never an event that a later call could find before the last one."""
        ...

    async def account_head(self, owner: str | None) -> EventCursor:
        """The cursor of the last event ``account_events`` can return now (``START`` if none)."""
        ...
