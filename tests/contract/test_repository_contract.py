"""The OrderRepository port's contract, run against every adapter on a real database.

``OrderRepositoryContract`` holds every behavioural test; a subclass per
adapter supplies ``repo`` (an empty, migrated store) and ``unreachable_repo``.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text

from order_engine.adapters.db import Database, SqlOrderRepository, create_engine, run_migrations
from order_engine.domain.errors import StaleWrite
from order_engine.domain.order import (
    Order,
    OrderEvent,
    OrderKind,
    OrderStatus,
    SignedTx,
    Trigger,
)
from order_engine.domain.terms import LimitTerms, PriorityFee, SniperTerms
from order_engine.ports.repository import OrderRepository

SOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
U64_MAX = 2**64 - 1
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def accepted(
    at: datetime = T0, amount_in: int = 10_000_000_000, owner: str | None = None
) -> tuple[Order, OrderEvent]:
    return Order.accept(
        order_id=uuid4(),
        input_mint=SOL,
        output_mint=USDC,
        amount_in=amount_in,
        slippage_bps=50,
        at=at,
        owner=owner,
        details={"inputToken": "SOL", "amount": "10"},
    )


def waiting_limit() -> tuple[Order, OrderEvent]:
    """10 SOL at 151.5 USDC each, for an hour, with an automatic priority fee."""
    return Order.accept(
        order_id=uuid4(),
        input_mint=SOL,
        output_mint=USDC,
        amount_in=10_000_000_000,
        slippage_bps=50,
        at=T0,
        kind=OrderKind.LIMIT,
        terms=LimitTerms(Decimal("151.5"), 1_515_000_000),
        expires_at=T0 + timedelta(hours=1),
        max_price_impact_bps=300,
        priority_fee=PriorityFee(None),
    )


def seconds(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


# Raw bytes with NULs and high bytes: a text column would mangle them.
RAW_TX = b"\x00\x01\xfe\xff" * 64


def signed(tag: str = "a") -> SignedTx:
    return SignedTx(f"5sig{tag}{uuid4().hex}", RAW_TX, last_valid_block_height=2**40)


class OrderRepositoryContract:
    @pytest.fixture
    def repo(self) -> OrderRepository:
        raise NotImplementedError("a subclass provides an empty, migrated store")

    @pytest.fixture
    def unreachable_repo(self) -> OrderRepository:
        raise NotImplementedError("a subclass provides a repository whose store is down")

    # --- create / get / events ---------------------------------------------------

    async def test_a_created_order_reads_back_field_for_field(self, repo: OrderRepository) -> None:
        order, first = accepted(amount_in=U64_MAX, owner="key-123")
        await repo.create(order, first)
        stored = await _stored(repo, order)
        assert stored == order
        assert type(stored.amount_in) is int
        assert await repo.events(order.id) == [first]

    async def test_every_stage_of_a_filled_order_reads_back_exactly(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo, amount_in=U64_MAX)
        await _record_until(repo, order, OrderStatus.CONFIRMED)  # compares after every step
        stored = await _stored(repo, order)
        assert stored.status is OrderStatus.CONFIRMED
        assert stored.tx is not None
        assert stored.tx.raw == RAW_TX
        assert stored.tx.last_valid_block_height == 2**40
        assert stored.fill == {"amountOut": U64_MAX, "price": 0.5}

    async def test_a_failed_order_keeps_its_reason_for_post_mortem(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo)
        await repo.record(order, order.apply(Trigger.ROUTE, seconds(1)))
        order.error_code = "slippage_exceeded"
        order.error_message = "expected at least 1000 out, the pool gave 990 ✗"
        failed = order.apply(Trigger.FAIL, seconds(2), {"code": order.error_code, "attempts": 3})
        await repo.record(order, failed)
        assert await repo.get(order.id) == order
        assert (await repo.events(order.id, after_seq=2)) == [failed]

    async def test_an_unknown_order_reads_as_none_with_no_events(
        self, repo: OrderRepository
    ) -> None:
        assert await repo.get(uuid4()) is None
        assert await repo.events(uuid4()) == []

    async def test_events_come_back_in_seq_order_after_the_given_seq(
        self, repo: OrderRepository
    ) -> None:
        order, first = accepted()
        await repo.create(order, first)
        later = await _record_until(repo, order, OrderStatus.CONFIRMED)
        assert await repo.events(order.id) == [first, *later]
        assert await repo.events(order.id, after_seq=2) == later[1:]
        assert await repo.events(order.id, after_seq=5) == []

    async def test_timestamps_come_back_as_the_same_instant_in_utc(
        self, repo: OrderRepository
    ) -> None:
        plus_two = T0.astimezone(timezone(timedelta(hours=2)))
        order = await _created(repo, at=plus_two)
        stored = await _stored(repo, order)
        assert stored.created_at == T0
        assert stored.created_at.utcoffset() == timedelta(0)
        (event,) = await repo.events(order.id)
        assert event.at == T0
        assert event.at.utcoffset() == timedelta(0)

    async def test_naive_timestamps_are_refused(self, repo: OrderRepository) -> None:
        order, first = accepted(at=T0.replace(tzinfo=None))
        with pytest.raises(ValueError, match="timezone-aware"):
            await repo.create(order, first)
        assert await repo.get(order.id) is None

    async def test_a_waiting_order_is_created_pending_and_open_at_once_with_its_terms(
        self, repo: OrderRepository
    ) -> None:
        order, pending = waiting_limit()
        opened = order.apply(Trigger.WAIT, T0, {"waitingFor": "price"})
        await repo.create(order, pending, opened)
        stored = await _stored(repo, order)
        assert stored == order
        assert stored.terms == LimitTerms(Decimal("151.5"), 1_515_000_000)
        assert stored.min_amount_out == 1_515_000_000
        assert stored.expires_at == T0 + timedelta(hours=1)
        assert stored.priority_fee == PriorityFee(None)
        assert [e.status for e in await repo.events(order.id)] == [
            OrderStatus.PENDING,
            OrderStatus.OPEN,
        ]

    async def test_a_sniper_orders_filters_and_fee_read_back_exactly(
        self, repo: OrderRepository
    ) -> None:
        terms = SniperTerms(U64_MAX, require_mint_authority_revoked=True)
        order, first = Order.accept(
            order_id=uuid4(), input_mint=SOL, output_mint=USDC, amount_in=5, slippage_bps=1500,
            at=T0, kind=OrderKind.SNIPER, terms=terms, max_price_impact_bps=2000,
            priority_fee=PriorityFee(10**12),
        )  # fmt: skip
        await repo.create(order, first)
        stored = await _stored(repo, order)
        assert stored == order
        assert stored.terms == terms
        assert stored.min_amount_out is None

    async def test_create_refuses_a_first_event_that_is_not_seq_one(
        self, repo: OrderRepository
    ) -> None:
        order, _ = accepted()
        event = order.apply(Trigger.ROUTE, seconds(1))
        with pytest.raises(ValueError, match="seq 1"):
            await repo.create(order, event)
        assert await repo.get(order.id) is None

    # --- record -------------------------------------------------------------------

    async def test_recording_a_transition_updates_the_order_and_appends_its_event(
        self, repo: OrderRepository
    ) -> None:
        order, first = accepted()
        await repo.create(order, first)
        order.route = {"venue": "meteora"}
        event = order.apply(Trigger.ROUTE, seconds(1), {"quotes": []})
        await repo.record(order, event)
        assert await repo.get(order.id) == order
        assert await repo.events(order.id) == [first, event]

    async def test_record_refuses_a_stale_seq_and_writes_nothing(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo)
        stale = copy.deepcopy(order)
        await repo.record(order, order.apply(Trigger.ROUTE, seconds(1)))
        stale.error_code = "no_route"
        late = stale.apply(Trigger.FAIL, seconds(2), {"error": "too late"})
        with pytest.raises(StaleWrite, match="seq 1"):
            await repo.record(stale, late)
        assert await repo.get(order.id) == order
        assert [e.seq for e in await repo.events(order.id)] == [1, 2]

    async def test_record_refuses_an_event_that_skips_a_seq(self, repo: OrderRepository) -> None:
        order, first = accepted()
        await repo.create(order, first)
        order.apply(Trigger.ROUTE, seconds(1))
        skipping = order.apply(Trigger.BUILD, seconds(2))
        with pytest.raises(StaleWrite):
            await repo.record(order, skipping)
        assert await repo.events(order.id) == [first]

    async def test_record_refuses_an_order_that_was_never_created(
        self, repo: OrderRepository
    ) -> None:
        order, _ = accepted()
        with pytest.raises(StaleWrite, match="no such order"):
            await repo.record(order, order.apply(Trigger.ROUTE, seconds(1)))
        assert await repo.events(order.id) == []

    async def test_record_rejects_an_event_that_does_not_describe_the_order(
        self, repo: OrderRepository
    ) -> None:
        order, first = accepted()
        other, _ = accepted()
        await repo.create(order, first)
        foreign = other.apply(Trigger.ROUTE, seconds(1))
        order.apply(Trigger.ROUTE, seconds(1))
        with pytest.raises(ValueError, match="expected an event for order"):
            await repo.record(order, foreign)
        assert await repo.events(order.id) == [first]

    async def test_several_consecutive_events_are_recorded_in_one_write(
        self, repo: OrderRepository
    ) -> None:
        order, first = accepted()
        await repo.create(order, first)
        order.route = {"venue": "raydium"}
        routed = order.apply(Trigger.ROUTE, seconds(1), {"quotes": []})
        built = order.apply(Trigger.BUILD, seconds(1), {"dex": "raydium"})
        await repo.record(order, routed, built)
        assert await repo.get(order.id) == order
        assert await repo.events(order.id) == [first, routed, built]

    async def test_a_stale_multi_event_record_writes_none_of_its_events(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo)
        stale = copy.deepcopy(order)
        await repo.record(order, order.apply(Trigger.ROUTE, seconds(1)))
        routed = stale.apply(Trigger.ROUTE, seconds(2))
        built = stale.apply(Trigger.BUILD, seconds(2))
        with pytest.raises(StaleWrite, match="expected stored seq 1 to write seq 2, found seq 2"):
            await repo.record(stale, routed, built)
        assert [e.seq for e in await repo.events(order.id)] == [1, 2]
        assert await repo.get(order.id) == order

    async def test_events_recorded_together_must_be_consecutive_and_end_at_the_order(
        self, repo: OrderRepository
    ) -> None:
        order, first = accepted()
        await repo.create(order, first)
        routed = order.apply(Trigger.ROUTE, seconds(1))
        order.apply(Trigger.BUILD, seconds(1))
        submitted = order.apply(Trigger.SUBMIT, seconds(1))
        order.tx = signed()
        with pytest.raises(ValueError, match="expected consecutive events"):
            await repo.record(order, routed, submitted)
        with pytest.raises(ValueError, match="expected at least one event"):
            await repo.record(order)
        assert await repo.events(order.id) == [first]

    async def test_a_terminal_write_drops_the_lease_and_an_active_one_keeps_it(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo)
        await repo.claim(order.id, "w1", T0, 30)
        await repo.record(order, order.apply(Trigger.ROUTE, seconds(1)))
        assert await repo.renew(order.id, "w1", seconds(2), 30) is True
        await repo.record(order, order.apply(Trigger.FAIL, seconds(3), {"error": "no route"}))
        assert await repo.renew(order.id, "w1", seconds(4), 30) is False

    async def test_racing_writers_on_one_order_win_exactly_one_seq_each(
        self, repo: OrderRepository
    ) -> None:
        current = await _created(repo)
        for round_ in range(5):
            contenders = [copy.deepcopy(current) for _ in range(8)]
            events = [
                c.apply(Trigger.ROUTE, seconds(round_ + 1), {"contender": i})
                for i, c in enumerate(contenders)
            ]
            results = await asyncio.gather(
                *(repo.record(c, e) for c, e in zip(contenders, events, strict=True)),
                return_exceptions=True,
            )
            winners = [i for i, r in enumerate(results) if r is None]
            assert len(winners) == 1, results
            assert all(isinstance(r, StaleWrite) for r in results if r is not None), results
            current = contenders[winners[0]]
            assert (await repo.events(current.id, after_seq=current.seq - 1)) == [
                events[winners[0]]
            ]
        assert [e.seq for e in await repo.events(current.id)] == [1, 2, 3, 4, 5, 6]
        assert await repo.get(current.id) == current

    async def test_a_hundred_concurrent_records_on_different_orders_all_land(
        self, repo: OrderRepository
    ) -> None:
        pairs = [accepted() for _ in range(100)]
        await asyncio.gather(*(repo.create(order, first) for order, first in pairs))
        events = [
            order.apply(Trigger.ROUTE, seconds(1), {"n": n}) for n, (order, _) in enumerate(pairs)
        ]
        await asyncio.gather(
            *(repo.record(order, e) for (order, _), e in zip(pairs, events, strict=True))
        )
        for (order, first), event in zip(pairs, events, strict=True):
            assert await repo.events(order.id) == [first, event]

    async def test_record_leaves_the_attempt_count_to_claim(self, repo: OrderRepository) -> None:
        order = await _created(repo)
        assert await repo.claim(order.id, "w1", T0, 30) is not None
        # The worker's snapshot predates the claim and still says attempts=0.
        await repo.record(order, order.apply(Trigger.ROUTE, seconds(1)))
        stored = await _stored(repo, order)
        assert stored.attempts == 1

    async def test_a_rebuilt_transaction_replaces_the_persisted_one(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo)
        await _record_until(repo, order, OrderStatus.SUBMITTED)
        order.tx = signed("rebuilt")
        await repo.record(order, order.apply(Trigger.REBUILD, seconds(10)))
        stored = await _stored(repo, order)
        assert stored.tx == order.tx

    # --- claim / renew / release ----------------------------------------------------

    async def test_claiming_an_active_order_leases_it_and_counts_an_attempt(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo)
        claimed = await repo.claim(order.id, "w1", T0, 30)
        assert claimed == dataclasses.replace(order, attempts=1)

    async def test_a_finished_order_cannot_be_claimed(self, repo: OrderRepository) -> None:
        failed = await _created(repo)
        await repo.record(failed, failed.apply(Trigger.FAIL, seconds(1), {"error": "no route"}))
        confirmed = await _created(repo)
        await _record_until(repo, confirmed, OrderStatus.CONFIRMED)
        assert await repo.claim(failed.id, "w1", seconds(2), 30) is None
        assert await repo.claim(confirmed.id, "w1", seconds(2), 30) is None
        stored = await _stored(repo, failed)
        assert stored.attempts == 0

    async def test_an_unknown_order_cannot_be_claimed(self, repo: OrderRepository) -> None:
        assert await repo.claim(uuid4(), "w1", T0, 30) is None

    async def test_another_workers_lease_blocks_a_claim_until_it_expires(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo)
        assert await repo.claim(order.id, "w1", T0, 30) is not None
        assert await repo.claim(order.id, "w2", seconds(29.999), 30) is None
        taken = await repo.claim(order.id, "w2", seconds(30), 30)
        assert taken is not None
        assert taken.attempts == 2
        assert await repo.claim(order.id, "w1", seconds(31), 30) is None

    async def test_the_same_worker_may_claim_again_and_it_counts(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo)
        await repo.claim(order.id, "w1", T0, 30)
        again = await repo.claim(order.id, "w1", seconds(1), 30)
        assert again is not None
        assert again.attempts == 2

    async def test_racing_claims_have_exactly_one_winner(self, repo: OrderRepository) -> None:
        order = await _created(repo)
        results = await asyncio.gather(*(repo.claim(order.id, f"w{i}", T0, 30) for i in range(10)))
        assert sum(r is not None for r in results) == 1
        stored = await _stored(repo, order)
        assert stored.attempts == 1

    async def test_renewing_extends_the_holders_lease(self, repo: OrderRepository) -> None:
        order = await _created(repo)
        await repo.claim(order.id, "w1", T0, 10)
        assert await repo.renew(order.id, "w1", seconds(5), 10) is True
        assert await repo.claim(order.id, "w2", seconds(12), 10) is None
        assert await repo.claim(order.id, "w2", seconds(15), 10) is not None

    async def test_a_worker_that_lost_its_lease_cannot_renew_it(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo)
        await repo.claim(order.id, "w1", T0, 10)
        await repo.claim(order.id, "w2", seconds(10), 10)
        assert await repo.renew(order.id, "w1", seconds(11), 10) is False
        assert await repo.claim(order.id, "w1", seconds(12), 10) is None
        assert await repo.renew(uuid4(), "w1", seconds(11), 10) is False

    async def test_releasing_lets_another_worker_claim_at_once(self, repo: OrderRepository) -> None:
        order = await _created(repo)
        await repo.claim(order.id, "w1", T0, 30)
        await repo.release(order.id, "w1")
        taken = await repo.claim(order.id, "w2", seconds(1), 30)
        assert taken is not None
        assert taken.attempts == 2

    async def test_releasing_someone_elses_lease_changes_nothing(
        self, repo: OrderRepository
    ) -> None:
        order = await _created(repo)
        await repo.claim(order.id, "w1", T0, 30)
        await repo.release(order.id, "w2")
        assert await repo.claim(order.id, "w3", seconds(1), 30) is None
        assert await repo.renew(order.id, "w1", seconds(1), 30) is True

    async def test_a_lease_must_be_positive(self, repo: OrderRepository) -> None:
        order = await _created(repo)
        with pytest.raises(ValueError, match="positive lease"):
            await repo.claim(order.id, "w1", T0, 0)

    # --- unfinished -------------------------------------------------------------------

    async def test_unfinished_lists_active_orders_updated_before_the_cutoff_oldest_first(
        self, repo: OrderRepository
    ) -> None:
        minutes = [3, 1, 4, 2]  # created out of order
        active = {}
        for m in minutes:
            order = await _created(repo, at=T0 + timedelta(minutes=m))
            active[m] = order.id
        failed = await _created(repo, at=T0)
        await repo.record(failed, failed.apply(Trigger.FAIL, T0 + timedelta(minutes=1)))
        touched, first = accepted(at=T0)  # created first, but updated after the cutoff
        await repo.create(touched, first)
        await repo.record(touched, touched.apply(Trigger.ROUTE, T0 + timedelta(minutes=9)))
        await _created(repo, at=T0 + timedelta(minutes=5))  # not strictly before the cutoff

        cutoff = T0 + timedelta(minutes=5)
        assert list(await repo.unfinished(cutoff, 10)) == [active[m] for m in (1, 2, 3, 4)]
        assert list(await repo.unfinished(cutoff, 2)) == [active[1], active[2]]
        assert list(await repo.unfinished(cutoff, 0)) == []

    async def test_unfinished_leaves_out_orders_whose_lease_is_live_or_lapsed_after_the_cutoff(
        self, repo: OrderRepository
    ) -> None:
        held = await _created(repo, at=T0)
        lapsed_early = await _created(repo, at=T0)
        lapsed_late = await _created(repo, at=T0)
        # Claims at T0 leave updated_at alone: only the lease says a worker is on it.
        assert await repo.claim(held.id, "w1", T0, lease_seconds=3600)
        assert await repo.claim(lapsed_early.id, "w2", T0, lease_seconds=60)
        assert await repo.claim(lapsed_late.id, "w3", T0, lease_seconds=540)

        cutoff = T0 + timedelta(minutes=5)
        assert list(await repo.unfinished(cutoff, 10)) == [lapsed_early.id]

    async def test_an_open_order_is_left_to_its_trigger_service_not_claimed_nor_reconciled(
        self, repo: OrderRepository
    ) -> None:
        waiting = await _created(repo, at=T0)
        await repo.record(waiting, waiting.apply(Trigger.WAIT, T0))
        running = await _created(repo, at=T0)
        cutoff = T0 + timedelta(minutes=5)
        assert list(await repo.unfinished(cutoff, 10)) == [running.id]
        assert await repo.claim(waiting.id, "w1", T0, lease_seconds=60) is None

        await repo.record(waiting, waiting.apply(Trigger.FIRE, seconds(1), {"price": "151.5"}))
        claimed = await repo.claim(waiting.id, "w1", seconds(2), lease_seconds=60)
        assert claimed is not None
        assert claimed.status is OrderStatus.TRIGGERED
        assert claimed.attempts == 1

    async def test_cancel_racing_a_trigger_has_exactly_one_winner(
        self, repo: OrderRepository
    ) -> None:
        for round_ in range(5):
            order = await _created(repo)
            await repo.record(order, order.apply(Trigger.WAIT, T0))
            cancel, fire = copy.deepcopy(order), copy.deepcopy(order)
            writes = [
                (cancel, cancel.apply(Trigger.CANCEL, seconds(round_))),
                (fire, fire.apply(Trigger.FIRE, seconds(round_))),
            ]
            results = await asyncio.gather(
                *(repo.record(o, e) for o, e in writes), return_exceptions=True
            )
            winners = [o for (o, _), r in zip(writes, results, strict=True) if r is None]
            assert len(winners) == 1, results
            assert all(isinstance(r, StaleWrite) for r in results if r is not None), results
            stored = await _stored(repo, winners[0])
            assert stored.status in {OrderStatus.CANCELLED, OrderStatus.TRIGGERED}
            assert [e.seq for e in await repo.events(order.id)] == [1, 2, 3]

    async def test_ids_come_back_as_plain_uuids_whatever_the_driver(
        self, repo: OrderRepository
    ) -> None:
        # asyncpg has its own UUID class, which orjson (the Redis bus) refuses.
        order = await _created(repo, at=T0)
        loaded = await repo.get(order.id)
        assert loaded is not None
        assert type(loaded.id) is uuid.UUID
        assert all(type(e.order_id) is uuid.UUID for e in await repo.events(order.id))
        assert all(type(i) is uuid.UUID for i in await repo.unfinished(T0 + timedelta(hours=1), 5))

    # --- ping ---------------------------------------------------------------------------

    async def test_ping_succeeds_on_a_reachable_store(self, repo: OrderRepository) -> None:
        await repo.ping()

    async def test_ping_raises_when_the_store_is_unreachable(
        self, unreachable_repo: OrderRepository
    ) -> None:
        with pytest.raises(Exception):  # noqa: B017, PT011 - the port promises only that it raises
            await unreachable_repo.ping()


async def _created(repo: OrderRepository, **kw: Any) -> Order:
    order, first = accepted(**kw)
    await repo.create(order, first)
    return order


async def _stored(repo: OrderRepository, order: Order) -> Order:
    stored = await repo.get(order.id)
    assert stored is not None, f"order {order.id} is missing"
    return stored


async def _record_until(
    repo: OrderRepository, order: Order, until: OrderStatus
) -> list[OrderEvent]:
    """Drive ``order`` along the happy path, recording each step, until it reaches ``until``."""
    events = []
    for n, trigger in enumerate((Trigger.ROUTE, Trigger.BUILD, Trigger.SUBMIT, Trigger.CONFIRM), 1):
        if trigger is Trigger.ROUTE:
            order.route = {"venue": "raydium", "amountOut": U64_MAX}
        elif trigger is Trigger.SUBMIT:
            order.tx = signed()
        elif trigger is Trigger.CONFIRM:
            order.fill = {"amountOut": U64_MAX, "price": 0.5}
        event = order.apply(trigger, seconds(n), {"step": n})
        await repo.record(order, event)
        assert await repo.get(order.id) == order
        events.append(event)
        if order.status is until:
            break
    return events


# --- adapters ------------------------------------------------------------------------


class TestSqliteOrderRepository(OrderRepositoryContract):
    @pytest.fixture
    def sqlite_url(self, tmp_path: Path) -> str:
        url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
        run_migrations(url)
        return url

    @pytest.fixture
    async def repo(self, sqlite_url: str) -> AsyncIterator[OrderRepository]:
        engine = create_engine(sqlite_url)
        repo = SqlOrderRepository(Database(engine))
        yield repo
        await repo.db.close()

    @pytest.fixture
    async def unreachable_repo(self, tmp_path: Path) -> AsyncIterator[OrderRepository]:
        # A file that is not a database, rather than a missing directory: aiosqlite's
        # failed-open path finishes its worker thread after the test's loop closed.
        garbage = tmp_path / "orders.db"
        garbage.write_bytes(b"this is not a SQLite database. " * 100)
        engine = create_engine(f"sqlite+aiosqlite:///{garbage}")
        repo = SqlOrderRepository(Database(engine))
        yield repo
        await repo.db.close()


@pytest.fixture(scope="session")
def migrated_pg_url(pg_database_url: str) -> str:
    run_migrations(pg_database_url)
    return pg_database_url


@pytest.mark.postgres
class TestPostgresOrderRepository(OrderRepositoryContract):
    @pytest.fixture
    async def repo(self, migrated_pg_url: str) -> AsyncIterator[OrderRepository]:
        engine = create_engine(migrated_pg_url)
        # One migrated database serves the session; emptying it gives each test
        # the empty store the contract assumes (unfinished() sees every order).
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE order_events, orders"))
        repo = SqlOrderRepository(Database(engine))
        yield repo
        await repo.db.close()

    @pytest.fixture
    async def unreachable_repo(self) -> AsyncIterator[OrderRepository]:
        engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
        repo = SqlOrderRepository(Database(engine))
        yield repo
        await repo.db.close()
