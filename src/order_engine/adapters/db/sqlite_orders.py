"""The order store's hot path on a SQLite file, as units for the group writer.

The same statements ``repository.py`` builds with SQLAlchemy, written once as
SQL text for the stdlib driver, because on the hot path SQLAlchemy's per-call
work (parameter processing, result rows) cost more than SQLite itself. The
values are stored exactly as SQLAlchemy stores them on SQLite, so either side
reads what the other wrote (a contract test writes with one and reads with the
other): UUIDs as 32 hex digits, timestamps as UTC ``YYYY-MM-DD HH:MM:SS.ffffff``,
u64 amounts as decimal text, JSON as orjson text.
"""

# ruff: noqa: S608 - every statement is built from this module's constants, never from input

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import StatementError

from order_engine.adapters.db.schema import RUNNING, U64
from order_engine.domain.errors import StaleWrite
from order_engine.domain.order import Order, OrderEvent, OrderKind, OrderStatus, SignedTx
from order_engine.domain.terms import PriorityFee, terms_from_json, terms_to_json
from order_engine.ports.idempotency import Completion, IdempotencyKeyTaken

_COLUMNS = (
    "id, kind, owner, input_mint, output_mint, amount_in, slippage_bps, status, seq, attempts, "
    "route, fill, tx_signature, tx_raw, tx_last_valid_block_height, error_code, error_message, "
    "created_at, updated_at, terms, expires_at, max_price_impact_bps, priority_fee"
)
_RUNNING = RUNNING.text  # claimable: neither terminal nor waiting for a trigger
_MUTABLE_SET = (
    "status = ?, seq = ?, route = ?, fill = ?, tx_signature = ?, tx_raw = ?, "
    "tx_last_valid_block_height = ?, error_code = ?, error_message = ?, updated_at = ?"
)
_INSERT_ORDER = (
    "INSERT INTO orders (id, kind, owner, input_mint, output_mint, amount_in, slippage_bps, "
    "attempts, lease_owner, lease_expires_at, created_at, status, seq, route, fill, "
    "tx_signature, tx_raw, tx_last_valid_block_height, error_code, error_message, updated_at, "
    "terms, expires_at, max_price_impact_bps, priority_fee) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# One writer at a time holds the database lock from its first write to its
# commit, so numbering inside the INSERT commits in number order (decision 0004).
_INSERT_EVENT = (
    "INSERT INTO order_events (order_id, seq, status, at, details, owner, txid, position) "
    "VALUES (?, ?, ?, ?, ?, ?, 0, "
    "(SELECT coalesce(max(position), 0) + 1 FROM order_events WHERE txid = 0))"
)
_RECORD = f"UPDATE orders SET {_MUTABLE_SET} WHERE id = ? AND seq = ?"
_RECORD_TERMINAL = (
    f"UPDATE orders SET {_MUTABLE_SET}, lease_owner = NULL, lease_expires_at = NULL "
    "WHERE id = ? AND seq = ?"
)
_CLAIM = (
    "UPDATE orders SET lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1 "
    f"WHERE id = ? AND {_RUNNING} "
    "AND (lease_owner IS NULL OR lease_expires_at <= ? OR lease_owner = ?) "
    f"RETURNING {_COLUMNS}"
)
_RENEW = "UPDATE orders SET lease_expires_at = ? WHERE id = ? AND lease_owner = ?"
_RELEASE = (
    "UPDATE orders SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?"
)
_GET = f"SELECT {_COLUMNS} FROM orders WHERE id = ?"
_SEQ = "SELECT seq FROM orders WHERE id = ?"
_EVENTS = (
    "SELECT seq, status, at, details FROM order_events WHERE order_id = ? AND seq > ? ORDER BY seq"
)
_COMPLETE_KEY = (
    "UPDATE idempotency_keys SET state = 'completed', order_id = ?, response = ? "
    "WHERE owner = ? AND key = ? AND state = 'in_flight' AND created_at = ?"
)

Unit = Callable[[sqlite3.Connection], Any]
_SQLITE = sqlite_dialect.dialect()


def stamp(value: datetime) -> str:
    """A timestamp as SQLAlchemy's SQLite DATETIME stores it, in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _mutable(order: Order) -> tuple[Any, ...]:
    tx = order.tx
    return (
        order.status.value,
        order.seq,
        _json(order.route),
        _json(order.fill),
        tx.signature if tx else None,
        tx.raw if tx else None,
        tx.last_valid_block_height if tx else None,
        order.error_code,
        order.error_message,
        stamp(order.updated_at),
    )


def _definition(order: Order) -> tuple[Any, ...]:
    """As ``repository.definition_row`` stores them (terms as orjson of the same dict)."""
    return (
        _json(terms_to_json(order.terms)),
        None if order.expires_at is None else stamp(order.expires_at),
        order.max_price_impact_bps,
        None if order.priority_fee is None else order.priority_fee.to_text(),
    )


def _event_values(event: OrderEvent, owner: str | None) -> tuple[Any, ...]:
    return (
        event.order_id.hex,
        event.seq,
        event.status.value,
        stamp(event.at),
        orjson.dumps(dict(event.details)).decode(),
        owner,
    )


def _u64(value: int) -> str:
    """As ``schema.U64`` binds it, refusing what it refuses, with SQLAlchemy's error type:
    the repository's callers see the same error whichever path wrote."""
    try:
        stored = U64().process_bind_param(value, _SQLITE)
    except (TypeError, ValueError) as exc:
        raise StatementError(str(exc), _INSERT_ORDER, None, exc) from exc
    assert isinstance(stored, str)  # noqa: S101 - SQLite's form is decimal text
    return stored


def create(order: Order, events: Sequence[OrderEvent]) -> Unit:
    row = (
        order.id.hex,
        order.kind.value,
        order.owner,
        order.input_mint,
        order.output_mint,
        _u64(order.amount_in),
        order.slippage_bps,
        order.attempts,
        stamp(order.created_at),
        *_mutable(order),
        *_definition(order),
    )
    values = [_event_values(event, order.owner) for event in events]

    def unit(conn: sqlite3.Connection) -> None:
        conn.execute(_INSERT_ORDER, row)
        conn.executemany(_INSERT_EVENT, values)

    return unit


def complete_reservation(done: Completion, order_id: UUID) -> Unit:
    held, response = done.reservation, done.response
    stored = orjson.dumps(
        {"status": response.status, "body": response.body, "headers": response.headers}
    ).decode()
    params = (order_id.hex, stored, held.owner, held.key, stamp(held.token))

    def unit(conn: sqlite3.Connection) -> None:
        if conn.execute(_COMPLETE_KEY, params).rowcount != 1:
            raise IdempotencyKeyTaken(
                f"Idempotency-Key {held.key[:64]!r} was taken over by another request before "
                "this one completed"
            )

    return unit


def together(units: Sequence[Unit]) -> Unit:
    """One unit doing ``units`` in order: one transaction (one savepoint in a batch)."""
    if len(units) == 1:
        return units[0]  # an order without a key: the hot path, as it was

    def unit(conn: sqlite3.Connection) -> None:
        for each in units:
            each(conn)

    return unit


def record(order: Order, events: Sequence[OrderEvent]) -> Unit:
    previous = events[0].seq - 1
    params = (*_mutable(order), order.id.hex, previous)
    statement = _RECORD_TERMINAL if order.is_terminal else _RECORD
    rows = [_event_values(event, order.owner) for event in events]

    def unit(conn: sqlite3.Connection) -> None:
        if conn.execute(statement, params).rowcount != 1:
            found = conn.execute(_SEQ, (order.id.hex,)).fetchone()
            raise StaleWrite(
                f"order {order.id}: expected stored seq {previous} to write seq "
                + f"{events[0].seq}, found "
                + ("no such order" if found is None else f"seq {found[0]}")
            )
        conn.executemany(_INSERT_EVENT, rows)

    return unit


def claim(order_id: UUID, worker: str, now: datetime, expires: datetime) -> Unit:
    params = (worker, stamp(expires), order_id.hex, stamp(now), worker)

    def unit(conn: sqlite3.Connection) -> Order | None:
        row = conn.execute(_CLAIM, params).fetchone()
        return None if row is None else order_from_row(row)

    return unit


def renew(order_id: UUID, worker: str, expires: datetime) -> Unit:
    params = (stamp(expires), order_id.hex, worker)
    return lambda conn: conn.execute(_RENEW, params).rowcount == 1


def release(order_id: UUID, worker: str) -> Unit:
    params = (order_id.hex, worker)
    return lambda conn: conn.execute(_RELEASE, params)


def get(order_id: UUID) -> Unit:
    def unit(conn: sqlite3.Connection) -> Order | None:
        row = conn.execute(_GET, (order_id.hex,)).fetchone()
        return None if row is None else order_from_row(row)

    return unit


def events(order_id: UUID, after_seq: int) -> Unit:
    def unit(conn: sqlite3.Connection) -> list[OrderEvent]:
        rows = conn.execute(_EVENTS, (order_id.hex, after_seq)).fetchall()
        return [
            OrderEvent(order_id, seq, OrderStatus(status), _instant(at), orjson.loads(details))
            for seq, status, at, details in rows
        ]

    return unit


def order_from_row(row: Sequence[Any]) -> Order:
    (
        id_, kind, owner, input_mint, output_mint, amount_in, slippage_bps, status, seq,
        attempts, route, fill, tx_signature, tx_raw, tx_lvbh, error_code, error_message,
        created_at, updated_at, terms, expires_at, max_price_impact_bps, priority_fee,
    ) = row  # fmt: skip
    tx = None if tx_signature is None else SignedTx(tx_signature, bytes(tx_raw), tx_lvbh)
    return Order(
        id=UUID(hex=id_),
        input_mint=input_mint,
        output_mint=output_mint,
        amount_in=int(amount_in),
        slippage_bps=slippage_bps,
        created_at=_instant(created_at),
        updated_at=_instant(updated_at),
        kind=OrderKind(kind),
        owner=owner,
        status=OrderStatus(status),
        seq=seq,
        attempts=attempts,
        route=None if route is None else orjson.loads(route),
        tx=tx,
        fill=None if fill is None else orjson.loads(fill),
        error_code=error_code,
        error_message=error_message,
        terms=None if terms is None else terms_from_json(orjson.loads(terms)),
        expires_at=None if expires_at is None else _instant(expires_at),
        max_price_impact_bps=max_price_impact_bps,
        priority_fee=None if priority_fee is None else PriorityFee.from_text(priority_fee),
    )
