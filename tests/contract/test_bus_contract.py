"""Contract of ``ports.bus.EventBus``: every adapter passes ``EventBusContract``.

A new adapter subclasses ``EventBusContract`` and overrides the ``bus`` fixture
and ``subscription_count``. Where a test must show that something was *not*
delivered, it publishes a marker event afterwards and checks that the marker
comes next: delivery is in publish order, so no sleep has to guess how long
a stray event might take.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from order_engine.adapters.memory import InMemoryEventBus
from order_engine.domain.order import OrderEvent, OrderStatus
from order_engine.ports.bus import EventBus, Subscription

WAIT = 10.0  # upper bound for anything that should happen "soon"
SHORT = 0.05  # how long a get() waits when nothing is expected


def event(order_id: UUID, seq: int, status: OrderStatus = OrderStatus.ROUTING) -> OrderEvent:
    return OrderEvent(order_id, seq, status, datetime.now(UTC), {"step": seq, "note": "x"})


async def receive(subscription: Subscription, count: int) -> list[OrderEvent]:
    received: list[OrderEvent] = []
    for _ in range(count):
        got = await subscription.get(timeout=WAIT)
        assert got is not None, f"expected {count} events within {WAIT}s each, got {received}"
        received.append(got)
    return received


class EventBusContract:
    """What every ``EventBus`` adapter guarantees. Not collected itself (no ``Test`` prefix)."""

    @pytest.fixture
    async def bus(self) -> EventBus:
        """Override: yield a bus isolated from every other test (e.g. by channel
        prefix), and ``close()`` it afterwards."""
        raise NotImplementedError("an EventBusContract subclass must provide the bus fixture")

    def subscription_count(self, bus: EventBus) -> int:
        """Override: how many subscriptions the adapter is tracking internally."""
        raise NotImplementedError("an EventBusContract subclass must count its subscriptions")

    @pytest.fixture(autouse=True)
    async def _no_task_outlives_the_bus(self) -> AsyncIterator[None]:
        before = asyncio.all_tasks()
        yield
        leaked = [
            task
            for task in asyncio.all_tasks() - before
            if task is not asyncio.current_task() and not task.done()
        ]
        assert not leaked, f"tasks left running after the bus closed: {leaked}"

    async def test_a_started_bus_reports_itself_healthy_or_has_nothing_to_report(
        self, bus: EventBus
    ) -> None:
        await bus.start()
        await bus.start()  # the runtime may start what a first subscriber already did
        assert await bus.health() in ("ok", None)

    async def test_a_subscriber_receives_the_events_of_its_order_in_publish_order(
        self, bus: EventBus
    ) -> None:
        order_id = uuid4()
        published = [event(order_id, seq) for seq in range(1, 21)]
        subscription = await bus.subscribe(order_id)

        for each in published:
            await bus.publish(each)

        assert await receive(subscription, 20) == published

    async def test_a_subscriber_does_not_receive_the_events_of_other_orders(
        self, bus: EventBus
    ) -> None:
        mine, other, third = uuid4(), uuid4(), uuid4()
        subscription = await bus.subscribe(mine)

        published = [event(other, 1), event(third, 1), ours := event(mine, 1), event(other, 2)]
        for each in published:
            await bus.publish(each)
        await bus.publish(marker := event(mine, 2))

        assert await receive(subscription, 2) == [ours, marker]
        assert await subscription.get(timeout=SHORT) is None

    async def test_the_all_orders_subscription_receives_every_event(self, bus: EventBus) -> None:
        first, second, third = uuid4(), uuid4(), uuid4()
        published = [
            event(first, 1),
            event(second, 1),
            event(first, 2),
            event(third, 1),
            event(second, 2),
        ]
        subscription = await bus.subscribe(None)

        for each in published:
            await bus.publish(each)

        assert await receive(subscription, 5) == published
        assert await subscription.get(timeout=SHORT) is None

    async def test_events_published_before_subscribing_are_not_delivered(
        self, bus: EventBus
    ) -> None:
        order_id = uuid4()
        await bus.publish(event(order_id, 1))
        await bus.publish(event(order_id, 2))

        one_order = await bus.subscribe(order_id)
        every_order = await bus.subscribe(None)
        await bus.publish(marker := event(order_id, 3))

        assert await receive(one_order, 1) == [marker]
        assert await receive(every_order, 1) == [marker]

    async def test_get_returns_none_when_nothing_arrives_within_the_timeout(
        self, bus: EventBus
    ) -> None:
        order_id = uuid4()
        subscription = await bus.subscribe(order_id)

        assert await subscription.get(timeout=SHORT) is None

        await bus.publish(later := event(order_id, 1))
        assert await subscription.get(timeout=WAIT) == later

    async def test_closing_a_subscription_ends_async_iteration(self, bus: EventBus) -> None:
        order_id = uuid4()
        subscription = await bus.subscribe(order_id)
        received: list[OrderEvent] = []
        got_two = asyncio.Event()

        async def consume() -> None:
            async for each in subscription:
                received.append(each)
                if len(received) == 2:
                    got_two.set()

        consumer = asyncio.create_task(consume())
        published = [event(order_id, 1), event(order_id, 2)]
        for each in published:
            await bus.publish(each)
        await asyncio.wait_for(got_two.wait(), WAIT)

        await subscription.close()

        await asyncio.wait_for(consumer, WAIT)
        assert received == published
        await subscription.close()  # idempotent
        assert await asyncio.wait_for(subscription.get(), WAIT) is None

    async def test_closing_a_subscription_wakes_a_consumer_waiting_in_get(
        self, bus: EventBus
    ) -> None:
        subscription = await bus.subscribe(uuid4())
        waiting = asyncio.create_task(subscription.get())
        await asyncio.sleep(SHORT)
        assert not waiting.done()

        await subscription.close()

        assert await asyncio.wait_for(waiting, WAIT) is None

    async def test_many_subscribers_to_one_order_each_get_every_event(self, bus: EventBus) -> None:
        order_id = uuid4()
        subscriptions = [await bus.subscribe(order_id) for _ in range(50)]
        published = [event(order_id, seq) for seq in range(1, 6)]

        for each in published:
            await bus.publish(each)

        for subscription in subscriptions:
            assert await receive(subscription, 5) == published

    async def test_a_thousand_subscriptions_work_and_are_released_when_closed(
        self, bus: EventBus
    ) -> None:
        orders = [uuid4() for _ in range(330)]
        before = self.subscription_count(bus)
        per_order = [(order_id, await bus.subscribe(order_id)) for order_id in orders * 3]
        every_order = [await bus.subscribe(None) for _ in range(10)]
        assert self.subscription_count(bus) == before + 1000

        published = [event(order_id, 1) for order_id in orders]
        for each in published:
            await bus.publish(each)

        for order_id, subscription in per_order:
            [got] = await receive(subscription, 1)
            assert got.order_id == order_id
        for subscription in every_order:
            assert await receive(subscription, len(published)) == published

        for _, subscription in per_order:
            await subscription.close()
        for subscription in every_order:
            await subscription.close()
        assert self.subscription_count(bus) == before

    async def test_closing_the_bus_ends_every_subscription(self, bus: EventBus) -> None:
        one_order, every_order = await bus.subscribe(uuid4()), await bus.subscribe(None)
        consumers = [
            asyncio.create_task(drain(subscription)) for subscription in (one_order, every_order)
        ]
        await asyncio.sleep(SHORT)

        await bus.close()

        assert await asyncio.wait_for(asyncio.gather(*consumers), WAIT) == [[], []]
        await bus.close()  # idempotent


async def drain(subscription: Subscription) -> list[OrderEvent]:
    return [each async for each in subscription]


class TestInMemoryEventBus(EventBusContract):
    @pytest.fixture
    async def bus(self) -> AsyncIterator[InMemoryEventBus]:
        bus = InMemoryEventBus()
        yield bus
        await bus.close()

    def subscription_count(self, bus: EventBus) -> int:
        assert isinstance(bus, InMemoryEventBus)
        return bus.subscription_count

    async def test_a_slow_subscriber_loses_its_oldest_events_and_says_how_many(self) -> None:
        bus = InMemoryEventBus(buffer_size=4)
        order_id = uuid4()
        slow, keeping_up = await bus.subscribe(order_id), await bus.subscribe(order_id)
        published = [event(order_id, seq) for seq in range(1, 11)]

        for each in published:
            await bus.publish(each)
            assert await keeping_up.get(timeout=WAIT) == each

        assert await receive(slow, 4) == published[-4:]
        assert (slow.dropped, slow.overflowed) == (6, True)
        assert (keeping_up.dropped, keeping_up.overflowed) == (0, False)
        await bus.close()

    async def test_publishing_never_waits_for_a_subscriber_that_does_not_read(self) -> None:
        bus = InMemoryEventBus(buffer_size=16)
        order_id = uuid4()
        stalled = await bus.subscribe(order_id)

        async with asyncio.timeout(WAIT):
            for seq in range(1, 10_001):
                await bus.publish(event(order_id, seq))

        assert stalled.dropped == 10_000 - 16
        assert [each.seq for each in await receive(stalled, 16)] == list(range(9_985, 10_001))
        await bus.close()

    async def test_ten_thousand_subscriptions_need_no_task_each(
        self, bus: InMemoryEventBus
    ) -> None:
        tasks_before = len(asyncio.all_tasks())
        subscriptions = [await bus.subscribe(uuid4()) for _ in range(10_000)]

        assert len(asyncio.all_tasks()) == tasks_before
        assert bus.subscribed_order_count == 10_000
        for subscription in subscriptions:
            await subscription.close()
        assert (bus.subscription_count, bus.subscribed_order_count) == (0, 0)

    async def test_after_close_publishing_is_dropped_and_subscribing_is_refused(
        self, bus: InMemoryEventBus
    ) -> None:
        await bus.close()

        await bus.publish(event(uuid4(), 1))
        with pytest.raises(RuntimeError, match="closed"):
            await bus.subscribe(uuid4())
