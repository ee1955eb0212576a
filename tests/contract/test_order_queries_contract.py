"""The OrderQueries port's contract, on SQLite and PostgreSQL: filtered, keyset-paged
order lists, and the account event log in a global order that a cursor can follow
without ever missing an event (on PostgreSQL, even one whose transaction commits
after a later one's)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from uuid import UUID

import pytest
from sqlalchemy import insert
from tests.contract.sql_stores import (
    BONK,
    SOL,
    USDC,
    PostgresStores,
    SqliteStores,
    accepted,
    at,
)

from order_engine.adapters.db import SqlOrderQueries, SqlOrderRepository
from order_engine.adapters.db.repository import _event_row, _mutable_row
from order_engine.adapters.db.schema import orders
from order_engine.domain.order import Order, OrderKind, OrderStatus, Trigger
from order_engine.ports.order_queries import (
    START,
    AccountEvent,
    EventCursor,
    OrderFilter,
    OrderQueries,
    PageKey,
)

WAIT_S = 10.0


async def create(repo: SqlOrderRepository, **kw: object) -> Order:
    order, event = accepted(**kw)  # type: ignore[arg-type]
    await repo.create(order, event)
    return order


async def advance(
    repo: SqlOrderRepository, order: Order, *triggers: Trigger, **changes: object
) -> Order:
    current = dataclasses.replace(order, **changes)  # type: ignore[arg-type]
    for n, trigger in enumerate(triggers, 1):
        event = current.apply(trigger, at(order.seq + n))
        await repo.record(current, event)
    return current


async def read_all(
    queries: OrderQueries,
    owner: str | None,
    after: EventCursor = START,
    limit: int = 3,
    *,
    expect: int | None = None,
) -> list[AccountEvent]:
    """The whole log after ``after``, in pages of ``limit`` (exercising the cursor).

    With ``expect``, read again until that many events are readable: on PostgreSQL
    the log shows a transaction's events once every older transaction on the server
    has ended (decision 0004), so another client's open transaction on a shared
    server (another suite, another database) delays them; it never reorders them.
    """
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        found: list[AccountEvent] = []
        start = after
        while page := await queries.account_events(owner, start, limit):
            found += page
            start = page[-1].cursor
        if expect is None or len(found) >= expect:
            return found
        if asyncio.get_running_loop().time() > deadline:
            return found  # the caller's assertion says what is missing
        await asyncio.sleep(0.05)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"expected {what} within {WAIT_S} s")
        await asyncio.sleep(0.02)


class OrderQueriesContract:
    @pytest.fixture
    def queries(self, sql_repo: SqlOrderRepository) -> OrderQueries:
        return SqlOrderQueries(sql_repo.db)

    # --- lists -------------------------------------------------------------------------

    async def test_an_owner_lists_only_their_orders_newest_first(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        mine = [await create(sql_repo, owner="alice", created=at(i)) for i in range(3)]
        await create(sql_repo, owner="bob", created=at(10))
        await create(sql_repo, owner=None, created=at(11))
        listed = await queries.list_orders(OrderFilter(owner="alice"), limit=10)
        assert [o.id for o in listed] == [o.id for o in reversed(mine)]

    async def test_no_owner_lists_every_order(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        ids = {
            (await create(sql_repo, owner=o, created=at(i))).id for i, o in enumerate(["a", None])
        }
        assert {o.id for o in await queries.list_orders(OrderFilter(), limit=10)} == ids

    async def test_pages_follow_a_stable_order_even_when_times_tie(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        created = [await create(sql_repo, owner="alice", created=at(i // 3)) for i in range(8)]
        expected = sorted(created, key=lambda o: (o.created_at, str(o.id)), reverse=True)
        pages: list[UUID] = []
        after = None
        while page := await queries.list_orders(OrderFilter(owner="alice"), limit=3, after=after):
            pages += [o.id for o in page]
            after = PageKey(page[-1].created_at, page[-1].id)
        assert pages == [o.id for o in expected]

    async def test_filters_by_order_type_alone_and_with_status(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        market = await create(sql_repo, owner="a", created=at(0))
        limits = []
        for n in (1, 2):
            order, event = accepted(owner="a", created=at(n))
            order = dataclasses.replace(order, kind=OrderKind.LIMIT)
            await sql_repo.create(order, event)
            limits.append(order)
        waiting = await advance(sql_repo, limits[0], Trigger.WAIT)

        async def ids(**where: object) -> set[UUID]:
            found = await queries.list_orders(OrderFilter(owner="a", **where), limit=10)  # type: ignore[arg-type]
            return {o.id for o in found}

        assert await ids(kinds=(OrderKind.LIMIT,)) == {o.id for o in limits}
        assert await ids(kinds=(OrderKind.MARKET,)) == {market.id}
        assert await ids(kinds=(OrderKind.SNIPER,)) == set()
        assert await ids(kinds=(OrderKind.LIMIT,), statuses=(OrderStatus.OPEN,)) == {waiting.id}
        assert await ids(kinds=(OrderKind.MARKET, OrderKind.LIMIT)) == {
            market.id,
            *(o.id for o in limits),
        }

    async def test_filters_by_status_pair_and_time_window(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        early = await create(sql_repo, owner="a", created=at(0))
        routed = await advance(
            sql_repo, await create(sql_repo, owner="a", created=at(5)), Trigger.ROUTE
        )
        bonk = await create(sql_repo, owner="a", created=at(9), input_mint=BONK, output_mint=SOL)

        async def ids(**where: object) -> set[UUID]:
            found = await queries.list_orders(OrderFilter(owner="a", **where), limit=10)  # type: ignore[arg-type]
            return {o.id for o in found}

        assert await ids(statuses=(OrderStatus.ROUTING,)) == {routed.id}
        assert await ids(statuses=(OrderStatus.ROUTING, OrderStatus.PENDING)) == {
            early.id,
            routed.id,
            bonk.id,
        }
        assert await ids(input_mint=BONK, output_mint=SOL) == {bonk.id}
        assert await ids(input_mint=SOL, output_mint=USDC) == {early.id, routed.id}
        assert await ids(input_mint=USDC, output_mint=SOL) == set()
        assert await ids(since=at(5)) == {routed.id, bonk.id}
        assert await ids(until=at(5)) == {early.id}
        assert await ids(since=at(1), until=at(9)) == {routed.id}

    async def test_the_dex_filter_matches_a_venue_alone_or_in_a_split(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        routes: dict[str, UUID | None] = dict.fromkeys(
            ("raydium", "meteora", "meteora+raydium", "raydium_x")
        )
        for i, dex in enumerate(routes):
            order = await create(sql_repo, owner="a", created=at(i))
            routes[dex] = (await advance(sql_repo, order, Trigger.ROUTE, route={"dex": dex})).id
        await create(sql_repo, owner="a", created=at(9))  # never routed

        async def ids(dex: str) -> set[UUID | None]:
            return {
                o.id for o in await queries.list_orders(OrderFilter(owner="a", dex=dex), limit=10)
            }

        assert await ids("raydium") == {routes["raydium"], routes["meteora+raydium"]}
        assert await ids("meteora") == {routes["meteora"], routes["meteora+raydium"]}
        assert await ids("raydium_x") == {routes["raydium_x"]}
        assert await ids("raydium%") == set()  # LIKE wildcards are literal text

    # --- the account log -----------------------------------------------------------------

    async def test_the_account_log_holds_every_event_of_the_owners_orders_in_write_order(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        first = await create(sql_repo, owner="alice")
        theirs = await create(sql_repo, owner="bob")
        second = await create(sql_repo, owner="alice")
        first = await advance(sql_repo, first, Trigger.ROUTE, Trigger.BUILD)
        await advance(sql_repo, theirs, Trigger.ROUTE)
        await advance(sql_repo, second, Trigger.ROUTE)
        log = await read_all(queries, "alice", expect=5)
        assert [(e.event.order_id, e.event.seq) for e in log] == [
            (first.id, 1),
            (second.id, 1),
            (first.id, 2),
            (first.id, 3),
            (second.id, 2),
        ]
        cursors = [e.cursor for e in log]
        assert cursors == sorted(cursors)
        assert len(set(cursors)) == len(cursors)
        assert {e.event.order_id for e in await read_all(queries, "bob", expect=2)} == {theirs.id}
        assert len(await read_all(queries, None, expect=7)) == 7

    async def test_the_log_resumes_after_any_cursor_without_gaps_or_repeats(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        for _ in range(3):
            await advance(sql_repo, await create(sql_repo, owner="alice"), Trigger.ROUTE)
        log = await read_all(queries, "alice", expect=6)
        for i, item in enumerate(log):
            assert await read_all(queries, "alice", after=item.cursor) == log[i + 1 :]

    async def test_the_head_is_the_last_readable_event_and_start_when_there_is_none(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        assert await queries.account_head("alice") == START
        await create(sql_repo, owner="alice")
        await create(sql_repo, owner="bob")
        log = await read_all(queries, "alice", expect=1)
        every = await read_all(queries, None, expect=2)
        assert await queries.account_head("alice") == log[-1].cursor
        assert await queries.account_head(None) == every[-1].cursor
        assert await queries.account_events("alice", log[-1].cursor, 10) == []

    async def test_events_written_at_once_all_appear_once_in_one_order(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        created = await asyncio.gather(*(create(sql_repo, owner="alice") for _ in range(30)))
        await asyncio.gather(*(advance(sql_repo, o, Trigger.ROUTE) for o in created))
        log = await read_all(queries, "alice", limit=7, expect=60)
        assert len(log) == 60
        assert len({(e.event.order_id, e.event.seq) for e in log}) == 60
        for order in created:  # each order's own events keep their seq order
            assert [e.event.seq for e in log if e.event.order_id == order.id] == [1, 2]


class TestSqliteOrderQueries(SqliteStores, OrderQueriesContract):
    pass


class TestPostgresOrderQueries(PostgresStores, OrderQueriesContract):
    async def test_an_event_that_commits_late_is_still_read_after_the_cursor(
        self, sql_repo: SqlOrderRepository, queries: OrderQueries
    ) -> None:
        # A transaction takes its position, then stalls before committing; a later
        # one commits first. A reader must not pass the stalled one's position.
        late, late_event = accepted(owner="alice")
        stalled = await sql_repo.engine.connect()
        transaction = await stalled.begin()
        await stalled.execute(insert(orders), _order_row(late))
        await stalled.execute(sql_repo._insert_event, _event_row(late_event, "alice"))
        early = await create(sql_repo, owner="alice")  # a higher position, committed first
        seen = await read_all(queries, "alice")
        assert [e.event.order_id for e in seen] == []  # not readable past the stalled one
        await transaction.commit()
        await stalled.close()

        async def both() -> bool:
            return len(await read_all(queries, "alice")) == 2

        await eventually(both, "both events readable once the stalled transaction ended")
        log = await read_all(queries, "alice")
        assert [e.event.order_id for e in log] == [late.id, early.id]
        assert log[0].cursor < log[1].cursor


def _order_row(order: Order) -> dict[str, object]:
    return {
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
        "created_at": order.created_at,
        **_mutable_row(order),
    }
