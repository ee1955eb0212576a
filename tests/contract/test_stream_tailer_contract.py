"""The stream tailer (``app/live.py``) on every bus, over a real store: one bus
subscription per process, every listener gets exactly its events in store order,
resumes exactly from a cursor under load, and a listener that stops reading is
closed without holding up the others.

Orders are written the way the engine writes them: persisted, then published.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import orjson
import pytest
from tests.contract.sql_stores import PostgresStores, SqliteStores, accepted, at

from order_engine.adapters.db import SqlOrderQueries, SqlOrderRepository
from order_engine.adapters.memory import InMemoryEventBus
from order_engine.adapters.redis import RedisEventBus
from order_engine.app.account_stream import AccountStream, open_account_stream
from order_engine.app.live import StreamClosed, StreamTailer
from order_engine.app.streaming import OrderStream
from order_engine.domain.order import Order, OrderEvent, Trigger
from order_engine.ports.bus import EventBus
from order_engine.ports.order_queries import START, EventCursor

WAIT = 10.0
LIFE = (Trigger.ROUTE, Trigger.BUILD, Trigger.SUBMIT, Trigger.CONFIRM)


class CountingQueries(SqlOrderQueries):
    """The real queries, counting the log reads (the idle test needs the number)."""

    reads = 0

    async def account_events(self, owner: str | None, after: EventCursor, limit: int) -> Any:
        self.reads += 1
        return await super().account_events(owner, after, limit)


class Writer:
    """Creates and advances orders as the engine does: persist, then publish."""

    def __init__(self, repo: SqlOrderRepository, bus: EventBus) -> None:
        self.repo, self.bus = repo, bus

    async def place(self, owner: str | None, *, publish: bool = True) -> Order:
        order, first = accepted(owner=owner)
        await self.repo.create(order, first)
        if publish:
            await self.bus.publish(first)
        return order

    async def advance(self, order: Order, trigger: Trigger, *, publish: bool = True) -> OrderEvent:
        event = order.apply(trigger, at(order.seq), {"step": order.seq + 1})
        await self.repo.record(order, event)
        if publish:
            await self.bus.publish(event)
        return event

    async def run(self, owner: str | None) -> Order:
        order = await self.place(owner)
        for trigger in LIFE:
            await self.advance(order, trigger)
        return order


def parsed(message: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(message)
    return value


async def take(messages: AsyncIterator[str], count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        while len(got) < count:
            got.append(parsed(await anext(messages)))
    return got


async def stored_log(queries: SqlOrderQueries, owner: str | None) -> list[tuple[str, int]]:
    log: list[tuple[str, int]] = []
    after = START
    while page := await queries.account_events(owner, after, 100):
        log += [(str(e.event.order_id), e.event.seq) for e in page]
        after = page[-1].cursor
    return log


def keys(messages: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(m["orderId"], m["seq"]) for m in messages]


class StreamTailerContract:
    """Not collected itself: subclasses give a ``bus`` and a store (``sql_repo``)."""

    @pytest.fixture
    async def bus(self) -> EventBus:
        """Override: a bus isolated from every other test, closed afterwards."""
        raise NotImplementedError("a StreamTailerContract subclass must provide the bus")

    def bus_subscriptions(self, bus: EventBus) -> int:
        assert isinstance(bus, (InMemoryEventBus, RedisEventBus))
        return bus.subscription_count

    @pytest.fixture
    def queries(self, sql_repo: SqlOrderRepository) -> CountingQueries:
        return CountingQueries(sql_repo.db)

    @pytest.fixture
    async def tailer(self, bus: EventBus, queries: CountingQueries) -> AsyncIterator[StreamTailer]:
        tailer = StreamTailer(bus, queries, buffer_events=64, sweep_s=0.3)
        yield tailer
        await tailer.close()

    @pytest.fixture
    def writer(self, sql_repo: SqlOrderRepository, bus: EventBus) -> Writer:
        return Writer(sql_repo, bus)

    async def test_an_account_listener_gets_its_owners_events_in_store_order_and_no_one_elses(
        self, tailer: StreamTailer, queries: CountingQueries, writer: Writer
    ) -> None:
        stream = await open_account_stream("alice", queries=queries, tailer=tailer, after=None)
        messages = stream.messages()
        for owner in ("alice", "bob", "alice"):
            await writer.run(owner)
        got = await take(messages, 10)
        await messages.aclose()
        assert keys(got) == await stored_log(queries, "alice")
        assert all(m["cursor"] for m in got)

    async def test_ten_thousand_listeners_share_one_bus_subscription_and_an_idle_one_reads_nothing(
        self, tailer: StreamTailer, queries: CountingQueries, bus: EventBus
    ) -> None:
        tailer._sweep_s = 60.0  # this test watches idleness, not the sweep
        streams = [
            await open_account_stream(f"k{i % 100}", queries=queries, tailer=tailer, after=None)
            for i in range(500)
        ]
        listeners = [await tailer.listen_order(UUID(int=i + 1)) for i in range(9_500)]
        assert self.bus_subscriptions(bus) == 1
        assert tailer.listener_count == 10_000
        if tailer._settling is not None:  # the bounded re-reads after following began
            await tailer._settling
        before = queries.reads
        await asyncio.sleep(1.0)
        assert queries.reads == before, "an idle tailer read the store"
        for stream in streams:
            stream.close()
        for listener in listeners:
            listener.close()
        assert tailer.listener_count == 0

    async def test_reconnecting_with_the_last_cursor_under_load_misses_nothing_and_repeats_nothing(
        self, tailer: StreamTailer, queries: CountingQueries, writer: Writer
    ) -> None:
        rng = random.Random(7)
        owners = ["alice", "bob"]
        subscribers = [(owners[i % 2], i) for i in range(8)]
        received: dict[int, list[dict[str, Any]]] = {i: [] for _, i in subscribers}
        total = {"alice": 0, "bob": 0}

        async def load() -> None:
            await asyncio.gather(*(writer.run(owners[n % 2]) for n in range(20)))

        async def subscriber(owner: str, i: int) -> None:
            after: EventCursor | None = START
            while len(received[i]) < 50:  # 10 orders x 5 events per owner
                stream = await open_account_stream(
                    owner, queries=queries, tailer=tailer, after=after
                )
                messages = stream.messages()
                want = min(rng.randint(1, 12), 50 - len(received[i]))
                received[i] += await take(messages, want)
                await messages.aclose()  # a disconnect, mid-load
                after = EventCursor(*map(int, received[i][-1]["cursor"].split("-")))

        await asyncio.gather(load(), *(subscriber(o, i) for o, i in subscribers))
        for owner in owners:
            total[owner] = len(await stored_log(queries, owner))
        for owner, i in subscribers:
            assert keys(received[i]) == await stored_log(queries, owner), f"subscriber {i}"
        assert total == {"alice": 50, "bob": 50}

    async def test_a_listener_that_stops_reading_is_closed_when_its_buffer_fills_others_carry_on(
        self, tailer: StreamTailer, queries: CountingQueries, writer: Writer
    ) -> None:
        stuck = asyncio.Event()
        slow = await open_account_stream("alice", queries=queries, tailer=tailer, after=None)
        fast = await open_account_stream("alice", queries=queries, tailer=tailer, after=None)

        async def read_one_then_hang(stream: AccountStream) -> None:
            messages = stream.messages()
            try:
                await anext(messages)
                await stuck.wait()  # a client whose socket stopped draining
            finally:
                await messages.aclose()

        hanging = asyncio.create_task(read_one_then_hang(slow))
        fast_messages = fast.messages()
        orders = [await writer.run("alice") for _ in range(16)]  # 80 events > 64 buffered
        got = await take(fast_messages, 80)
        await fast_messages.aclose()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(hanging, return_exceptions=True)
        assert hanging.cancelled()
        assert slow.too_slow
        assert not fast.too_slow
        assert keys(got) == [(str(o.id), seq) for o in orders for seq in range(1, 6)]
        assert tailer.listener_count == 0

    async def test_a_per_order_listener_gets_the_history_then_live_events_once_each_to_the_end(
        self, tailer: StreamTailer, sql_repo: SqlOrderRepository, writer: Writer
    ) -> None:
        order = await writer.place("alice")
        await writer.advance(order, Trigger.ROUTE)
        stream = OrderStream(order.id, repo=sql_repo, tailer=tailer, after_seq=1)
        messages = stream.messages()
        first = await take(messages, 1)
        for trigger in LIFE[1:]:
            await writer.advance(order, trigger)
        rest = [parsed(m) async for m in messages]
        assert [m["seq"] for m in first + rest] == [2, 3, 4, 5]
        assert rest[-1]["status"] == "confirmed"
        assert tailer.listener_count == 0

    async def test_an_event_whose_publish_was_lost_still_arrives_on_both_streams_after_a_sweep(
        self, tailer: StreamTailer, queries: CountingQueries, sql_repo: SqlOrderRepository,
        writer: Writer,
    ) -> None:  # fmt: skip
        order = await writer.place("alice")
        account = await open_account_stream("alice", queries=queries, tailer=tailer, after=None)
        account_messages = account.messages()
        per_order = OrderStream(order.id, repo=sql_repo, tailer=tailer, after_seq=1)
        order_messages = per_order.messages()
        routed = asyncio.create_task(take(order_messages, 1))
        await asyncio.sleep(0.05)  # both listening, nothing pending
        event = await writer.advance(order, Trigger.ROUTE, publish=False)
        assert [(m["orderId"], m["seq"]) for m in await take(account_messages, 1)] == [
            (str(order.id), event.seq)
        ]
        assert [m["seq"] for m in await routed] == [2]
        await account_messages.aclose()
        await order_messages.aclose()


class TestStreamTailerOnTheInMemoryBus(SqliteStores, StreamTailerContract):
    @pytest.fixture
    async def bus(self) -> AsyncIterator[EventBus]:
        bus = InMemoryEventBus()
        yield bus
        await bus.close()

    async def test_a_bus_closed_under_the_tailer_ends_its_streams_instead_of_spinning(
        self, tailer: StreamTailer, sql_repo: SqlOrderRepository, bus: EventBus
    ) -> None:
        order, first = accepted(owner="alice")
        await sql_repo.create(order, first)
        messages = OrderStream(order.id, repo=sql_repo, tailer=tailer).messages()
        assert [parsed(m)["seq"] for m in [await anext(messages)]] == [1]
        await bus.close()
        with pytest.raises(StreamClosed):
            async with asyncio.timeout(WAIT):
                await anext(messages)
        assert tailer.listener_count == 0


@pytest.mark.redis
class TestStreamTailerOnRedis(SqliteStores, StreamTailerContract):
    @pytest.fixture
    async def bus(self, redis_url: str, unique_prefix: str) -> AsyncIterator[EventBus]:
        bus = RedisEventBus.from_url(redis_url, prefix=unique_prefix)
        yield bus
        await bus.close()


@pytest.mark.redis
class TestStreamTailerOnRedisAndPostgres(PostgresStores, StreamTailerContract):
    """PostgreSQL makes events readable only below the oldest running transaction:
    the tailer's re-reads of announced events are what this variant exercises."""

    @pytest.fixture
    async def bus(self, redis_url: str, unique_prefix: str) -> AsyncIterator[EventBus]:
        bus = RedisEventBus.from_url(redis_url, prefix=unique_prefix)
        yield bus
        await bus.close()
