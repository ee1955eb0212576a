"""``OrderQueries`` on SQL: keyset-paged order lists and the account event log.

**Why the account log reads "up to the oldest running transaction" on
PostgreSQL.** ``position`` comes from a sequence, and sequence values commit
out of order: a transaction may take 41, another 42 and commit first. A
reader that had advanced its cursor past 42 would never see 41. So each event
also stores the id of the transaction that wrote it (``txid``), the log is
ordered by ``(txid, position)``, and a read returns only events whose
``txid`` is below the oldest transaction still running
(``pg_snapshot_xmin``). Every transaction below that bound has ended, so no
event can later appear in the part of the log already read; the bound only
grows, so the readable part only ever grows at its end. The price is
latency, not loss: a long-running transaction anywhere on the server holds
the bound back until it ends. The bound and the rows come from one
statement, hence one snapshot.

SQLite has one writer at a time, and positions are numbered inside the
writer's transaction, so they commit in order; ``txid`` is always 0 there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, literal_column, or_, select, tuple_

from order_engine.adapters.db.database import Database
from order_engine.adapters.db.repository import _order, _uuid
from order_engine.adapters.db.schema import order_events, orders
from order_engine.domain.order import Order, OrderEvent, OrderStatus
from order_engine.ports.order_queries import (
    START,
    AccountEvent,
    EventCursor,
    OrderFilter,
    PageKey,
)

if TYPE_CHECKING:
    from order_engine.ports.order_queries import OrderQueries

_e = order_events.c
# The oldest transaction still running, as the reading statement's snapshot sees it.
_PG_OLDEST_RUNNING = select(
    literal_column("(pg_snapshot_xmin(pg_current_snapshot())::text)::bigint")
).scalar_subquery()


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _dex_matches(dex: str) -> ColumnElement[bool]:
    """The route's dex is ``dex``, or a split naming it (``meteora+raydium``)."""
    venue = orders.c.route["dex"].as_string()
    name = _like_literal(dex)
    return or_(
        venue == dex,
        venue.like(f"{name}+%", escape="\\"),
        venue.like(f"%+{name}", escape="\\"),
        venue.like(f"%+{name}+%", escape="\\"),
    )


def order_list_query(where: OrderFilter, limit: int, after: PageKey | None) -> Select[Any]:
    stmt = select(orders)
    if where.owner is not None:
        stmt = stmt.where(orders.c.owner == where.owner)
    if where.statuses:
        stmt = stmt.where(orders.c.status.in_([s.value for s in where.statuses]))
    if where.kinds:
        stmt = stmt.where(orders.c.kind.in_([k.value for k in where.kinds]))
    if where.input_mint is not None:
        stmt = stmt.where(orders.c.input_mint == where.input_mint)
    if where.output_mint is not None:
        stmt = stmt.where(orders.c.output_mint == where.output_mint)
    if where.dex is not None:
        stmt = stmt.where(_dex_matches(where.dex))
    if where.since is not None:
        stmt = stmt.where(orders.c.created_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(orders.c.created_at < where.until)
    if after is not None:
        stmt = stmt.where(
            or_(
                orders.c.created_at < after.created_at,
                and_(orders.c.created_at == after.created_at, orders.c.id < after.order_id),
            )
        )
    return stmt.order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(limit)


class SqlOrderQueries:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._postgres = db.is_postgres

    async def list_orders(
        self, where: OrderFilter, *, limit: int, after: PageKey | None = None
    ) -> list[Order]:
        if limit < 1:
            raise ValueError(f"expected a positive limit, got {limit}")
        async with self._db.reading() as conn:
            rows = (await conn.execute(order_list_query(where, limit, after))).all()
        return [_order(row) for row in rows]

    def _readable(self, owner: str | None) -> Select[Any]:
        stmt = select(
            _e.order_id, _e.seq, _e.status, _e.at, _e.details, _e.txid, _e.position, _e.owner
        )
        if owner is not None:
            stmt = stmt.where(_e.owner == owner)
        if self._postgres:
            stmt = stmt.where(_e.txid < _PG_OLDEST_RUNNING)
        return stmt

    async def account_events(
        self, owner: str | None, after: EventCursor, limit: int
    ) -> list[AccountEvent]:
        if limit < 1:
            raise ValueError(f"expected a positive limit, got {limit}")
        stmt = (
            self._readable(owner)
            .where(tuple_(_e.txid, _e.position) > tuple_(after.txid, after.position))
            .order_by(_e.txid, _e.position)
            .limit(limit)
        )
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            AccountEvent(
                OrderEvent(_uuid(r.order_id), r.seq, OrderStatus(r.status), r.at, r.details),
                EventCursor(r.txid, r.position),
                r.owner,
            )
            for r in rows
        ]

    async def account_head(self, owner: str | None) -> EventCursor:
        stmt = self._readable(owner).order_by(_e.txid.desc(), _e.position.desc()).limit(1)
        async with self._db.reading() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return START if row is None else EventCursor(row.txid, row.position)


if TYPE_CHECKING:

    def _satisfies_port(db: Database) -> OrderQueries:
        return SqlOrderQueries(db)
