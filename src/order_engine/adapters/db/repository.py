"""``OrderRepository`` on SQLAlchemy Core, for SQLite and PostgreSQL alike.

Every write is one short transaction whose first statement is the write, and
every state change is conditional: ``record`` on the seq the writer last saw,
``claim``/``renew``/``release`` on the lease. On PostgreSQL, READ COMMITTED
re-checks an UPDATE's WHERE clause against the row a concurrent winner
committed, so of two writers racing on one seq exactly one matches.

SQLite allows one writer per database at a time: on a SQLite file the hot
path's writes go through the database's group writer (``database.py``), which
commits many orders' writes in one transaction; the other writers queue on the
database's lock (see ``Database``). Reads take no lock: WAL lets them run
beside the writer.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    ColumnClause,
    CursorResult,
    Insert,
    Row,
    Select,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order_engine.adapters.db import sqlite_orders as fast
from order_engine.adapters.db.database import Database
from order_engine.adapters.db.schema import EVENT_POSITION_SEQ, RUNNING, order_events, orders
from order_engine.domain.errors import StaleWrite
from order_engine.domain.order import Order, OrderEvent, OrderKind, OrderStatus, SignedTx
from order_engine.domain.terms import PriorityFee, terms_from_json, terms_to_json

if TYPE_CHECKING:
    from order_engine.ports.repository import OrderRepository


class SqlOrderRepository:
    """Orders and their gapless event logs in a SQL database (see module docstring).

    The database should be migrated with ``run_migrations``. On a SQLite file the
    hot path (create, record, claim, renew, release, get, events) goes through
    the database's group writer (``sqlite_orders``); elsewhere through
    SQLAlchemy. The repository does not own the database; whoever created it
    closes it.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._group = db.group
        self._insert_event = _event_insert(db.dialect == "sqlite")

    @property
    def engine(self) -> AsyncEngine:
        return self.db.engine

    async def create(self, order: Order, *events: OrderEvent) -> None:
        """Insert a new order with its first events (seqs 1.., ending at the order's),
        atomically: a waiting order is stored ``pending`` and ``open`` at once.

        A duplicate id raises SQLAlchemy's ``IntegrityError`` and writes nothing;
        so does ``record`` for a signature that another order already holds.
        With other writes in the same transaction: ``unit_of_work.py``.
        """
        check_new(order, events)
        if self._group is not None:
            await self._group.write(fast.create(order, events))
            return
        async with self.db.writing() as conn:
            await self.insert(conn, order, events)

    async def insert(
        self, conn: AsyncConnection, order: Order, events: Sequence[OrderEvent]
    ) -> None:
        """``create``'s statements, in the caller's transaction (checked by ``check_new``)."""
        row = {
            "id": order.id,
            "kind": order.kind.value,
            "owner": order.owner,
            "input_mint": order.input_mint,
            "output_mint": order.output_mint,
            "amount_in": order.amount_in,
            "slippage_bps": order.slippage_bps,
            "attempts": order.attempts,
            "lease_owner": None,
            "lease_expires_at": None,
            "created_at": _aware("created_at", order.created_at),
            **definition_row(order),
            **_mutable_row(order),
        }
        await conn.execute(insert(orders), row)
        for event in events:
            await conn.execute(self._insert_event, _event_row(event, order.owner))

    async def get(self, order_id: UUID) -> Order | None:
        if self._group is not None:
            with contextlib.suppress(sqlite3.OperationalError):  # busy: take the pool's way
                found: Order | None = self._group.read(fast.get(order_id))
                return found
        async with self.db.reading() as conn:
            row = (await conn.execute(_GET, {"b_id": order_id})).one_or_none()
        return None if row is None else _order(row)

    async def events(self, order_id: UUID, after_seq: int = 0) -> list[OrderEvent]:
        """Events with seq > ``after_seq``, in seq order."""
        if self._group is not None:
            with contextlib.suppress(sqlite3.OperationalError):
                found: list[OrderEvent] = self._group.read(fast.events(order_id, after_seq))
                return found
        async with self.db.reading() as conn:
            rows = (await conn.execute(_EVENTS, {"b_id": order_id, "b_after": after_seq})).all()
        return [
            OrderEvent(_uuid(row.order_id), row.seq, OrderStatus(row.status), row.at, row.details)
            for row in rows
        ]

    async def record(self, order: Order, *events: OrderEvent) -> None:
        """Persist ``order``'s new state and ``events`` (consecutive seqs ending at
        ``order.seq``), if the stored seq is ``events[0].seq - 1``.

        Raises ``StaleWrite`` and writes nothing otherwise. The order's
        definition (mints, amount, owner, kind, created_at) is immutable and
        not rewritten, and ``attempts`` belongs to ``claim``: a worker's
        snapshot of it may be older than a concurrent claim's increment. A
        terminal state drops the lease in the same UPDATE, which saves the
        worker a separate ``release``.
        """
        _check_events(order, events)
        if self._group is not None:
            await self._group.write(fast.record(order, events))
            return
        previous = events[0].seq - 1
        params = _mutable_params(order)
        params["b_id"], params["b_prev"] = order.id, previous
        stmt = _RECORD_TERMINAL if order.is_terminal else _RECORD
        async with self.db.writing() as conn:
            result: CursorResult[Any] = await conn.execute(stmt, params)
            if result.rowcount != 1:
                found = await conn.scalar(select(orders.c.seq).where(orders.c.id == order.id))
                raise StaleWrite(
                    f"order {order.id}: expected stored seq {previous} to write seq "
                    + f"{events[0].seq}, found "
                    + ("no such order" if found is None else f"seq {found}")
                )
            for event in events:
                await conn.execute(self._insert_event, _event_row(event, order.owner))

    async def claim(
        self, order_id: UUID, worker: str, now: datetime, lease_seconds: float
    ) -> Order | None:
        """Take a lease on an active order and count an attempt, in one conditional UPDATE.

        Returns the order, or ``None`` when it is terminal, unknown, or leased
        by another worker whose lease has not expired. A worker re-claiming
        its own lease (a redelivered job) counts a new attempt.
        """
        now = _aware("now", now)
        if self._group is not None:
            claimed: Order | None = await self._group.write(
                fast.claim(order_id, worker, now, now + _lease(lease_seconds))
            )
            return claimed
        params = {
            "b_id": order_id,
            "b_worker": worker,
            "b_now": now,
            "b_expires": now + _lease(lease_seconds),
        }
        async with self.db.writing() as conn:
            row = (await conn.execute(_CLAIM, params)).one_or_none()
        return None if row is None else _order(row)

    async def renew(self, order_id: UUID, worker: str, now: datetime, lease_seconds: float) -> bool:
        """Extend ``worker``'s lease; ``False`` if it no longer holds it.

        A lease that lapsed but that nobody took over is still held: nobody
        else can have acted on the order in between.
        """
        expires = _aware("now", now) + _lease(lease_seconds)
        if self._group is not None:
            held: bool = await self._group.write(fast.renew(order_id, worker, expires))
            return held
        stmt = (
            update(orders)
            .where(orders.c.id == order_id, orders.c.lease_owner == worker)
            .values(lease_expires_at=expires)
        )
        async with self.db.writing() as conn:
            result: CursorResult[Any] = await conn.execute(stmt)
        return result.rowcount == 1

    async def release(self, order_id: UUID, worker: str) -> None:
        """Drop ``worker``'s lease (if it still holds it) so another may claim at once."""
        if self._group is not None:
            await self._group.write(fast.release(order_id, worker))
            return
        stmt = (
            update(orders)
            .where(orders.c.id == order_id, orders.c.lease_owner == worker)
            .values(lease_owner=None, lease_expires_at=None)
        )
        async with self.db.writing() as conn:
            await conn.execute(stmt)

    async def unfinished(self, older_than: datetime, limit: int) -> Sequence[UUID]:
        """Active orders last updated before ``older_than``, oldest first (for the reconciler)."""
        stmt = unfinished_query(older_than, limit)
        async with self.db.reading() as conn:
            return [_uuid(value) for value in (await conn.scalars(stmt)).all()]

    async def ping(self) -> None:
        """Raise if the store is unreachable (readiness)."""
        async with self.db.reading() as conn:
            await conn.execute(select(1))


def unfinished_query(older_than: datetime, limit: int) -> Select[UUID]:
    """The reconciler's scan; its own function so that a test can EXPLAIN it."""
    if limit < 0:
        raise ValueError(f"expected a non-negative limit, got {limit}")
    # One named parameter serves both comparisons.
    cutoff = bindparam("cutoff", _aware("older_than", older_than), type_=orders.c.updated_at.type)
    return (
        select(orders.c.id)
        # RUNNING is the partial index's own predicate, so the index serves this.
        .where(
            RUNNING,
            orders.c.updated_at < cutoff,
            # A worker holding a live lease is on it (waiting for a slow landing,
            # say): leave it alone until its lease has lapsed as long ago.
            or_(orders.c.lease_expires_at.is_(None), orders.c.lease_expires_at < cutoff),
        )
        .order_by(orders.c.updated_at, orders.c.id)
        .limit(limit)
    )


def _check_event(order: Order, event: OrderEvent) -> None:
    if (event.order_id, event.seq, event.status) != (order.id, order.seq, order.status):
        raise ValueError(
            f"expected an event for order {order.id} at seq {order.seq} ({order.status.value}), "
            f"got order {event.order_id} at seq {event.seq} ({event.status.value})"
        )


def check_new(order: Order, events: Sequence[OrderEvent]) -> None:
    """Raise ``ValueError`` unless ``events`` are a new order's first ones."""
    _check_events(order, events)
    if events[0].seq != 1:
        raise ValueError(f"expected a new order's first event to have seq 1, got {events[0].seq}")


def _check_events(order: Order, events: Sequence[OrderEvent]) -> None:
    if not events:
        raise ValueError(f"expected at least one event to record for order {order.id}, got none")
    _check_event(order, events[-1])
    first = events[0].seq
    for offset, event in enumerate(events):
        if event.order_id != order.id or event.seq != first + offset:
            raise ValueError(
                f"expected consecutive events of order {order.id} from seq {first}, "
                f"got order {event.order_id} at seq {event.seq} in position {offset}"
            )


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected {name} to be timezone-aware, got naive {value.isoformat()}")
    return value


def _lease(seconds: float) -> timedelta:
    if not seconds > 0:
        raise ValueError(f"expected a positive lease in seconds, got {seconds}")
    return timedelta(seconds=seconds)


def definition_row(order: Order) -> dict[str, Any]:
    """The columns of an order's immutable definition beyond the swap (migration 0004)."""
    return {
        "terms": terms_to_json(order.terms),
        "expires_at": None if order.expires_at is None else _aware("expires_at", order.expires_at),
        "max_price_impact_bps": order.max_price_impact_bps,
        "priority_fee": None if order.priority_fee is None else order.priority_fee.to_text(),
    }


def _mutable_row(order: Order) -> dict[str, Any]:
    tx = order.tx
    return {
        "status": order.status.value,
        "seq": order.seq,
        "route": order.route,
        "fill": order.fill,
        "tx_signature": tx.signature if tx else None,
        "tx_raw": tx.raw if tx else None,
        "tx_last_valid_block_height": tx.last_valid_block_height if tx else None,
        "error_code": order.error_code,
        "error_message": order.error_message,
        "updated_at": _aware("updated_at", order.updated_at),
    }


# Hot-path statements, built once: SQLAlchemy memoizes a statement object's
# cache key, so executing the same object skips rebuilding and re-hashing the
# clause tree per call (it showed as ~5% of the engine's CPU under load).
_MUTABLE = (
    "status",
    "seq",
    "route",
    "fill",
    "tx_signature",
    "tx_raw",
    "tx_last_valid_block_height",
    "error_code",
    "error_message",
    "updated_at",
)
_RECORD = (
    update(orders)
    .where(orders.c.id == bindparam("b_id"), orders.c.seq == bindparam("b_prev"))
    .values({name: bindparam(f"v_{name}") for name in _MUTABLE})
)
_RECORD_TERMINAL = _RECORD.values(lease_owner=None, lease_expires_at=None)
_CLAIM = (
    update(orders)
    .where(
        orders.c.id == bindparam("b_id"),
        RUNNING,
        or_(
            orders.c.lease_owner.is_(None),
            orders.c.lease_expires_at <= bindparam("b_now", type_=orders.c.lease_expires_at.type),
            orders.c.lease_owner == bindparam("b_worker"),
        ),
    )
    .values(
        lease_owner=bindparam("b_worker"),
        lease_expires_at=bindparam("b_expires", type_=orders.c.lease_expires_at.type),
        attempts=orders.c.attempts + 1,
    )
    .returning(*orders.c)
)
_GET = select(orders).where(orders.c.id == bindparam("b_id"))
_EVENTS = (
    select(order_events)
    .where(order_events.c.order_id == bindparam("b_id"), order_events.c.seq > bindparam("b_after"))
    .order_by(order_events.c.seq)
)


def _mutable_params(order: Order) -> dict[str, Any]:
    return {f"v_{name}": value for name, value in _mutable_row(order).items()}


def _event_row(event: OrderEvent, owner: str | None) -> dict[str, Any]:
    return {
        "order_id": event.order_id,
        "seq": event.seq,
        "status": event.status.value,
        "at": _aware("at", event.at),
        "details": dict(event.details),
        "owner": owner,
    }


# The writing transaction's id, as a plain bigint (xid8 is 64-bit, epoch included,
# so it never wraps).
PG_TXID: ColumnClause[int] = literal_column(
    "(pg_current_xact_id()::text)::bigint", type_=BigInteger()
)


def _event_insert(sqlite: bool) -> Insert:
    """The event INSERT with the event's global position (ports/order_queries.py).

    SQLite: one writer at a time holds the database lock from its first write
    to its commit, so numbering inside the INSERT commits in number order.
    PostgreSQL: a sequence value plus the transaction id; the reader orders by
    both and reads only transactions older than every running one.
    """
    if sqlite:
        following = (
            select(func.coalesce(func.max(order_events.c.position), 0) + 1)
            .where(order_events.c.txid == 0)
            .scalar_subquery()
        )
        return insert(order_events).values(txid=0, position=following)
    return insert(order_events).values(txid=PG_TXID, position=EVENT_POSITION_SEQ.next_value())


def _uuid(value: UUID) -> UUID:
    """asyncpg hands back its own UUID class; the domain (and every serialiser
    downstream, e.g. orjson on the Redis bus) expects ``uuid.UUID`` itself."""
    return value if type(value) is UUID else UUID(bytes=value.bytes)


def _order(row: Row[Any]) -> Order:
    tx = None
    if row.tx_signature is not None:
        tx = SignedTx(row.tx_signature, bytes(row.tx_raw), row.tx_last_valid_block_height)
    return Order(
        id=_uuid(row.id),
        input_mint=row.input_mint,
        output_mint=row.output_mint,
        amount_in=row.amount_in,
        slippage_bps=row.slippage_bps,
        created_at=row.created_at,
        updated_at=row.updated_at,
        kind=OrderKind(row.kind),
        owner=row.owner,
        status=OrderStatus(row.status),
        seq=row.seq,
        attempts=row.attempts,
        route=row.route,
        tx=tx,
        fill=row.fill,
        error_code=row.error_code,
        error_message=row.error_message,
        terms=terms_from_json(row.terms),
        expires_at=row.expires_at,
        max_price_impact_bps=row.max_price_impact_bps,
        priority_fee=None if row.priority_fee is None else PriorityFee.from_text(row.priority_fee),
    )


if TYPE_CHECKING:  # mypy proves the adapter satisfies the port, without a runtime cost

    def _satisfies_port(db: Database) -> OrderRepository:
        return SqlOrderRepository(db)
