"""``IdempotencyStore`` on SQL: one row per ``(owner, key)``, reserved atomically.

A reservation is ``INSERT ... ON CONFLICT DO NOTHING`` on the primary key:
of any number of concurrent requests with one key, exactly one inserts the
row, on SQLite and PostgreSQL alike (PostgreSQL makes the others wait for the
inserter's commit, then do nothing). Everything after that is a conditional
write on the row as it was read, so there is no check-then-set anywhere.

The reservation is completed by ``SqlOrderRepository.create`` in the order's
own transaction (``complete_reservation``): a completed key always has its
order, and a key still in flight never has one. That is what makes taking
over a reservation whose request died (in flight for longer than the
caller's ``stale_before``) safe.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import CursorResult, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from order_engine.adapters.db.database import Database
from order_engine.adapters.db.schema import idempotency_keys
from order_engine.ports.idempotency import (
    Completion,
    IdempotencyKeyTaken,
    InFlight,
    Mismatch,
    Outcome,
    Replay,
    Reservation,
    Started,
    StoredResponse,
)

if TYPE_CHECKING:
    from order_engine.ports.idempotency import IdempotencyStore

IN_FLIGHT, COMPLETED = "in_flight", "completed"
_ATTEMPTS = 5  # a row can vanish (purged, abandoned) between our insert and our read

_keys = idempotency_keys.c


async def complete_reservation(conn: AsyncConnection, done: Completion, order_id: UUID) -> None:
    """Mark the reservation completed with ``order_id`` and its response, inside the
    caller's transaction; raise ``IdempotencyKeyTaken`` if it is no longer ours."""
    held = done.reservation
    response = done.response
    result: CursorResult[Any] = await conn.execute(
        update(idempotency_keys)
        .where(
            _keys.owner == held.owner,
            _keys.key == held.key,
            _keys.state == IN_FLIGHT,
            _keys.created_at == held.token,
        )
        .values(
            state=COMPLETED,
            order_id=order_id,
            response={
                "status": response.status,
                "body": response.body,
                "headers": response.headers,
            },
        )
    )
    if result.rowcount != 1:
        raise IdempotencyKeyTaken(
            f"Idempotency-Key {held.key[:64]!r} was taken over by another request before this "
            "one completed"
        )


class SqlIdempotencyStore:
    """Writes through the database's unit of work (``Database.writing``)."""

    def __init__(self, db: Database, *, purge_batch: int = 1000) -> None:
        if purge_batch < 1:
            raise ValueError(f"expected a purge batch of at least 1 row, got {purge_batch}")
        self._db = db
        self.purge_batch = purge_batch
        dialect = db.dialect
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._reserve = insert(idempotency_keys).on_conflict_do_nothing(
            index_elements=[_keys.owner, _keys.key]
        )

    async def begin(
        self,
        owner: str,
        key: str,
        request_hash: str,
        now: datetime,
        *,
        expired_before: datetime,
        stale_before: datetime,
    ) -> Outcome:
        fresh = {"request_hash": request_hash, "state": IN_FLIGHT, "created_at": now}
        for _ in range(_ATTEMPTS):
            async with self._db.writing() as conn:
                inserted: CursorResult[Any] = await conn.execute(
                    self._reserve, {"owner": owner, "key": key, **fresh}
                )
                if inserted.rowcount == 1:
                    return Started(Reservation(owner, key, now))
                row = (
                    await conn.execute(
                        select(idempotency_keys).where(_keys.owner == owner, _keys.key == key)
                    )
                ).one_or_none()
                if row is None:
                    continue
                dead = row.state == IN_FLIGHT and row.created_at < stale_before
                if row.created_at < expired_before or dead:
                    taken: CursorResult[Any] = await conn.execute(
                        update(idempotency_keys)
                        .where(
                            _keys.owner == owner,
                            _keys.key == key,
                            _keys.state == row.state,
                            _keys.created_at == row.created_at,
                        )
                        .values(order_id=None, response=None, **fresh)
                    )
                    if taken.rowcount == 1:
                        return Started(Reservation(owner, key, now))
                    continue
            if row.request_hash != request_hash:
                return Mismatch()
            if row.state == IN_FLIGHT:
                return InFlight(row.created_at)
            stored = row.response
            return Replay(StoredResponse(stored["status"], stored["body"], stored["headers"]))
        return InFlight(now)  # the row kept changing under us: a retry will settle it

    async def abandon(self, reservation: Reservation) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                delete(idempotency_keys).where(
                    _keys.owner == reservation.owner,
                    _keys.key == reservation.key,
                    _keys.state == IN_FLIGHT,
                    _keys.created_at == reservation.token,
                )
            )

    async def purge(self, older_than: datetime) -> int:
        """Delete keys created before ``older_than``, ``purge_batch`` rows per transaction.

        One unbounded DELETE held the write lock (SQLite) or the rows' locks
        (PostgreSQL) for as long as a day's keys took to delete, in front of
        every order write. Each batch is picked by the ``created_at`` index and
        deleted by primary key; between batches the lock is free. Several
        processes purging at once is safe: a row deleted by another is simply
        not counted.
        """
        total = 0
        while True:
            oldest = (
                select(_keys.owner, _keys.key)
                .where(_keys.created_at < older_than)
                .order_by(_keys.created_at)
                .limit(self.purge_batch)
            )
            async with self._db.writing() as conn:
                result: CursorResult[Any] = await conn.execute(
                    delete(idempotency_keys).where(tuple_(_keys.owner, _keys.key).in_(oldest))
                )
            total += result.rowcount
            if result.rowcount < self.purge_batch:
                return total
            await asyncio.sleep(0)  # let the writers queued behind this batch go first


if TYPE_CHECKING:

    def _satisfies_port(db: Database) -> IdempotencyStore:
        return SqlIdempotencyStore(db)
