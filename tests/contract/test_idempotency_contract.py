"""The IdempotencyStore port's contract (with the repository completing reservations
inside the order's transaction), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event
from tests.contract.sql_stores import PostgresStores, SqliteStores, accepted, at

from order_engine.adapters.db import SqlIdempotencyStore, SqlOrderRepository
from order_engine.adapters.db.unit_of_work import SqlUnitOfWork
from order_engine.domain.order import Order, OrderEvent
from order_engine.ports.idempotency import (
    Completion,
    IdempotencyKeyTaken,
    IdempotencyStore,
    InFlight,
    Mismatch,
    Outcome,
    Replay,
    Reservation,
    Started,
    StoredResponse,
)

RETENTION_S = 24 * 3600
IN_FLIGHT_S = 60


def response(order_id: str) -> StoredResponse:
    return StoredResponse(
        201,
        {"orderId": order_id, "status": "pending", "message": "accepted ✓"},
        {"Location": f"/api/orders/{order_id}"},
    )


async def create_completing(
    repo: SqlOrderRepository, order: Order, first: OrderEvent, done: Completion
) -> None:
    """The order and its key's completion in one unit of work, as ``SubmitOrder`` does."""
    uow = SqlUnitOfWork(repo)
    uow.complete_key(done, order.id)
    uow.create_order(order, first)
    await uow.commit()


class IdempotencyStoreContract:
    @pytest.fixture
    def store(self, sql_repo: SqlOrderRepository) -> IdempotencyStore:
        return SqlIdempotencyStore(sql_repo.db)

    async def begin(
        self,
        store: IdempotencyStore,
        key: str = "k-1",
        request_hash: str = "h1",
        now: datetime | None = None,
        owner: str = "alice",
    ) -> Outcome:
        now = now or at(0)
        return await store.begin(
            owner,
            key,
            request_hash,
            now,
            expired_before=at((now - at(0)).total_seconds() - RETENTION_S),
            stale_before=at((now - at(0)).total_seconds() - IN_FLIGHT_S),
        )

    async def reserve(self, store: IdempotencyStore, **kw: object) -> Reservation:
        outcome = await self.begin(store, **kw)  # type: ignore[arg-type]
        assert isinstance(outcome, Started), outcome
        return outcome.reservation

    async def complete(
        self, repo: SqlOrderRepository, reservation: Reservation, owner: str = "alice"
    ) -> StoredResponse:
        order, event = accepted(owner=owner)
        sent = response(str(order.id))
        await create_completing(repo, order, event, Completion(reservation, sent))
        return sent

    async def test_a_new_key_is_reserved_for_the_request(self, store: IdempotencyStore) -> None:
        outcome = await self.begin(store)
        assert outcome == Started(Reservation("alice", "k-1", at(0)))

    async def test_the_same_key_while_in_flight_is_reported_in_flight(
        self, store: IdempotencyStore
    ) -> None:
        await self.reserve(store)
        assert await self.begin(store, now=at(1)) == InFlight(at(0))

    async def test_a_completed_key_replays_its_response_exactly(
        self, store: IdempotencyStore, sql_repo: SqlOrderRepository
    ) -> None:
        sent = await self.complete(sql_repo, await self.reserve(store))
        assert await self.begin(store, now=at(5)) == Replay(sent)
        assert await self.begin(store, now=at(6)) == Replay(sent)

    async def test_the_same_key_with_another_request_is_a_mismatch_in_flight_or_done(
        self, store: IdempotencyStore, sql_repo: SqlOrderRepository
    ) -> None:
        reservation = await self.reserve(store)
        assert await self.begin(store, request_hash="h2", now=at(1)) == Mismatch()
        await self.complete(sql_repo, reservation)
        assert await self.begin(store, request_hash="h2", now=at(2)) == Mismatch()

    async def test_keys_are_scoped_to_their_owner(self, store: IdempotencyStore) -> None:
        await self.reserve(store, owner="alice")
        assert isinstance(await self.begin(store, owner="bob"), Started)
        assert isinstance(await self.begin(store, owner=""), Started)

    async def test_fifty_concurrent_requests_with_one_key_reserve_it_exactly_once(
        self, store: IdempotencyStore
    ) -> None:
        outcomes = await asyncio.gather(*(self.begin(store, now=at(0)) for _ in range(50)))
        started = [o for o in outcomes if isinstance(o, Started)]
        assert len(started) == 1, outcomes
        assert all(isinstance(o, InFlight) for o in outcomes if o not in started)

    async def test_completing_writes_the_order_and_the_key_together_or_neither(
        self, store: IdempotencyStore, sql_repo: SqlOrderRepository
    ) -> None:
        reservation = await self.reserve(store)
        # A takeover (the reservation was presumed dead) makes the original's completion fail...
        taken = await self.begin(store, now=at(IN_FLIGHT_S + 1))
        assert isinstance(taken, Started)
        order, event = accepted(owner="alice")
        with pytest.raises(IdempotencyKeyTaken):
            await create_completing(
                sql_repo, order, event, Completion(reservation, response(str(order.id)))
            )
        # ...and writes no order: the key still belongs to the taker, in flight.
        assert await sql_repo.get(order.id) is None
        assert await self.begin(store, now=at(IN_FLIGHT_S + 2)) == InFlight(at(IN_FLIGHT_S + 1))
        sent = await self.complete(sql_repo, taken.reservation)
        assert await self.begin(store, now=at(IN_FLIGHT_S + 3)) == Replay(sent)

    async def test_a_reservation_in_flight_too_long_is_taken_over_once(
        self, store: IdempotencyStore
    ) -> None:
        await self.reserve(store)
        late = at(IN_FLIGHT_S + 1)
        outcomes = await asyncio.gather(*(self.begin(store, now=late) for _ in range(10)))
        assert sum(isinstance(o, Started) for o in outcomes) == 1, outcomes

    async def test_a_completed_key_is_never_taken_over_within_its_retention(
        self, store: IdempotencyStore, sql_repo: SqlOrderRepository
    ) -> None:
        sent = await self.complete(sql_repo, await self.reserve(store))
        assert await self.begin(store, now=at(RETENTION_S - 1)) == Replay(sent)

    async def test_after_its_retention_a_key_starts_afresh(
        self, store: IdempotencyStore, sql_repo: SqlOrderRepository
    ) -> None:
        await self.complete(sql_repo, await self.reserve(store))
        later = at(RETENTION_S + 1)
        outcome = await self.begin(store, request_hash="h2", now=later)
        assert outcome == Started(Reservation("alice", "k-1", later))

    async def test_an_abandoned_reservation_frees_the_key(self, store: IdempotencyStore) -> None:
        reservation = await self.reserve(store)
        await store.abandon(reservation)
        assert isinstance(await self.begin(store, request_hash="h2", now=at(1)), Started)

    async def test_abandoning_a_completed_key_keeps_it(
        self, store: IdempotencyStore, sql_repo: SqlOrderRepository
    ) -> None:
        reservation = await self.reserve(store)
        sent = await self.complete(sql_repo, reservation)
        await store.abandon(reservation)
        assert await self.begin(store, now=at(1)) == Replay(sent)

    async def test_purge_deletes_only_keys_older_than_the_cutoff(
        self, store: IdempotencyStore, sql_repo: SqlOrderRepository
    ) -> None:
        await self.complete(sql_repo, await self.reserve(store, key="old", now=at(0)))
        kept = await self.complete(sql_repo, await self.reserve(store, key="new", now=at(100)))
        assert await store.purge(at(50)) == 1
        assert await store.purge(at(50)) == 0
        assert await self.begin(store, key="new", now=at(101)) == Replay(kept)
        assert isinstance(await self.begin(store, key="old", now=at(101)), Started)

    async def test_a_purge_deletes_in_bounded_batches_and_several_purgers_share_the_work(
        self, sql_repo: SqlOrderRepository
    ) -> None:
        db = sql_repo.db
        first, second = (
            SqlIdempotencyStore(db, purge_batch=3),
            SqlIdempotencyStore(db, purge_batch=3),
        )
        for n in range(10):
            await self.reserve(first, key=f"old-{n}", now=at(n))
        await self.reserve(first, key="new", now=at(100))
        deleted: list[int] = []

        def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if statement.lstrip().upper().startswith("DELETE"):
                deleted.append(cursor.rowcount)

        event.listen(db.engine.sync_engine, "after_cursor_execute", count)
        try:
            purged = await asyncio.gather(first.purge(at(50)), second.purge(at(50)))
        finally:
            event.remove(db.engine.sync_engine, "after_cursor_execute", count)
        assert sum(purged) == 10
        assert sum(deleted) == 10
        assert max(deleted) <= 3  # no statement deleted more than a batch
        assert isinstance(await self.begin(first, key="old-0", now=at(101)), Started)
        assert not isinstance(await self.begin(first, key="new", now=at(101)), Started)

    async def test_a_key_of_255_characters_is_stored_whole(
        self, store: IdempotencyStore, sql_repo: SqlOrderRepository
    ) -> None:
        long_key = "k" * 254 + "~"
        sent = await self.complete(sql_repo, await self.reserve(store, key=long_key))
        assert await self.begin(store, key=long_key, now=at(1)) == Replay(sent)
        assert isinstance(await self.begin(store, key=long_key[:-1], now=at(1)), Started)


class TestSqliteIdempotencyStore(SqliteStores, IdempotencyStoreContract):
    pass


class TestPostgresIdempotencyStore(PostgresStores, IdempotencyStoreContract):
    pass
