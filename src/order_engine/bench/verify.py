"""What the database holds for every submitted order, checked with SQL.

For each order the client got an id for: the ``orders`` row exists and is
terminal; its events are seqs exactly ``1..n``; exactly one of them is
terminal and it is event ``n``; the row's ``seq`` and ``status`` are those of
event ``n``. ``classify`` is the rule, pure and unit-tested; ``inspect_orders``
runs three grouped queries per chunk of ids (SQLite or PostgreSQL alike).

The same rows give server-side timings (``pending`` event to terminal event,
from the stored timestamps) and, when the client did not subscribe, each
order's outcome; ``TerminalWatcher`` polls order status for that mode.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from order_engine.adapters.db import create_engine, order_events, orders
from order_engine.bench.stats import TERMINAL

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from order_engine.bench.loadgen import Live, OrderRecord

CHUNK = 500
POLL_INTERVAL_S = 0.25
EXAMPLES = 5
KINDS = {
    "missing": "no order row",
    "not_terminal": "not terminal (unfinished)",
    "terminal_count": "terminal events != 1",
    "seq_gap": "seqs not gapless 1..n",
    "terminal_not_last": "terminal event is not the last",
    "row_mismatch": "order row seq/status differ from its last event",
}


@dataclass(frozen=True)
class StoredOrder:
    """One order as stored: the row (``status`` None when there is none) and its events."""

    order_id: str
    status: str | None = None
    seq: int | None = None
    error_code: str | None = None
    events: int = 0
    min_seq: int | None = None
    max_seq: int | None = None
    terminal_events: int = 0
    terminal_seq: int | None = None
    last_event_status: str | None = None
    pending_at: datetime | None = None
    terminal_at: datetime | None = None


def classify(stored: StoredOrder) -> list[str]:
    """The violations (keys of ``KINDS``) one stored order shows; empty when clean."""
    if stored.status is None:
        return ["missing"]
    problems: list[str] = []
    if stored.status not in TERMINAL:
        problems.append("not_terminal")
    if stored.terminal_events != (1 if stored.status in TERMINAL else 0):
        problems.append("terminal_count")
    if stored.events == 0 or stored.min_seq != 1 or stored.max_seq != stored.events:
        problems.append("seq_gap")
    if stored.terminal_seq is not None and stored.terminal_seq != stored.max_seq:
        problems.append("terminal_not_last")
    if stored.seq != stored.max_seq or stored.status != stored.last_event_status:
        problems.append("row_mismatch")
    return problems


@dataclass
class Inspection:
    stored: dict[str, StoredOrder] = field(default_factory=dict)
    violations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def violating_orders(self) -> int:
        return len({oid for ids in self.violations.values() for oid in ids})

    def add(self, stored: StoredOrder) -> None:
        self.stored[stored.order_id] = stored
        for kind in classify(stored):
            self.violations.setdefault(kind, []).append(stored.order_id)

    def as_dict(self) -> dict[str, object]:
        return {
            "checked": len(self.stored),
            "violating_orders": self.violating_orders,
            "violations": {
                kind: {"what": KINDS[kind], "count": len(ids), "examples": ids[:EXAMPLES]}
                for kind, ids in sorted(self.violations.items())
            },
            "events_stored": sum(s.events for s in self.stored.values()),
        }


def _chunks(ids: Sequence[uuid.UUID]) -> Iterator[Sequence[uuid.UUID]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


async def _inspect_chunk(engine: AsyncEngine, chunk: Sequence[uuid.UUID]) -> list[StoredOrder]:
    e, o = order_events.c, orders.c
    is_terminal = e.status.in_(TERMINAL)
    aggregate = (
        sa.select(
            e.order_id,
            sa.func.count(),
            sa.func.min(e.seq),
            sa.func.max(e.seq),
            sa.func.sum(sa.case((is_terminal, 1), else_=0)),
        )
        .where(e.order_id.in_(chunk))
        .group_by(e.order_id)
    )
    last = order_events.alias("last_event")
    rows = (
        sa.select(o.id, o.status, o.seq, o.error_code, last.c.status)
        .select_from(orders.outerjoin(last, sa.and_(last.c.order_id == o.id, last.c.seq == o.seq)))
        .where(o.id.in_(chunk))
    )
    marks = sa.select(e.order_id, e.seq, e.status, e.at).where(
        e.order_id.in_(chunk), sa.or_(e.seq == 1, is_terminal)
    )
    found: dict[uuid.UUID, dict[str, object]] = {oid: {} for oid in chunk}
    async with engine.connect() as conn:
        for oid, count, low, high, terminal in await conn.execute(aggregate):
            found[oid].update(
                events=int(count), min_seq=low, max_seq=high, terminal_events=int(terminal or 0)
            )
        for oid, status, seq, error_code, last_status in await conn.execute(rows):
            found[oid].update(
                status=status, seq=seq, error_code=error_code, last_event_status=last_status
            )
        for oid, seq, status, at in await conn.execute(marks.order_by(e.order_id, e.seq)):
            if seq == 1:
                found[oid]["pending_at"] = at
            if status in TERMINAL and "terminal_seq" not in found[oid]:
                found[oid].update(terminal_seq=seq, terminal_at=at)
    return [StoredOrder(order_id=str(oid), **values) for oid, values in found.items()]  # type: ignore[arg-type]


async def inspect_orders(database_url: str, order_ids: Iterable[str]) -> Inspection:
    ids = [uuid.UUID(oid) for oid in order_ids]
    inspection = Inspection()
    engine = create_engine(database_url)
    try:
        for chunk in _chunks(ids):
            for stored in await _inspect_chunk(engine, chunk):
                inspection.add(stored)
    finally:
        await engine.dispose()
    return inspection


class TerminalWatcher:
    """Without WebSockets the client cannot see orders finish: poll their rows.

    Marks each record terminal (status and error code from the row) as soon as
    a poll sees it so; the exact times come later from the stored events.
    """

    def __init__(self, database_url: str, live: Live) -> None:
        self._engine = create_engine(database_url)
        self._live = live

    async def close(self) -> None:
        await self._engine.dispose()

    async def poll_once(self, records: Sequence[OrderRecord]) -> int:
        """Marks what finished; returns how many accepted orders are still open."""
        open_records = {
            uuid.UUID(r.order_id): r
            for r in records
            if r.order_id is not None and r.terminal_status is None
        }
        ids = list(open_records)
        o = orders.c
        async with self._engine.connect() as conn:
            for chunk in _chunks(ids):
                query = sa.select(o.id, o.status, o.error_code).where(
                    o.id.in_(chunk), o.status.in_(TERMINAL)
                )
                for oid, status, error_code in await conn.execute(query):
                    record = open_records.pop(oid)
                    record.terminal_status, record.terminal_code = status, error_code
                    self._live.terminal += 1
        return len(open_records)

    async def follow(self, records: Sequence[OrderRecord], stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set (the load generator is done submitting)."""
        while not stop.is_set():
            await self.poll_once(records)
            try:
                await asyncio.wait_for(stop.wait(), POLL_INTERVAL_S)
            except TimeoutError:
                continue

    async def drain(self, records: Sequence[OrderRecord], timeout_s: float) -> int:
        """Poll until every accepted order is terminal or ``timeout_s`` passes;
        returns how many are still open."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        remaining = await self.poll_once(records)
        while remaining and loop.time() < deadline:
            await asyncio.sleep(POLL_INTERVAL_S)
            remaining = await self.poll_once(records)
        return remaining
