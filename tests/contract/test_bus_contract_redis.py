"""``RedisEventBus`` against the bus contract and across nodes, on a real Redis
(``redis_url``), each test on its own channel."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from tests.contract.test_bus_contract import WAIT, EventBusContract, event, receive

from order_engine.adapters.redis import RedisEventBus
from order_engine.adapters.redis.bus import encode
from order_engine.ports.bus import EventBus

pytestmark = pytest.mark.redis


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[Redis]:
    """A separate client that inspects (and kills) the bus's connections."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    yield redis
    await redis.aclose()


async def subscriber_connections(admin: Redis, client_name: str) -> list[dict[str, str]]:
    """The connections named ``client_name`` that hold a channel subscription."""
    clients = await admin.client_list()
    return [c for c in clients if c.get("name") == client_name and int(c.get("sub", 0)) > 0]


async def eventually(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    async def holds() -> bool:
        outcome = condition()
        return await outcome if inspect.isawaitable(outcome) else outcome

    deadline = asyncio.get_running_loop().time() + WAIT
    while True:  # polls: the condition is Redis's state or the bus's, with nothing to await
        if await holds():
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"expected {what} within {WAIT}s")
        await asyncio.sleep(0.02)


class RedisProxy:
    """A TCP relay to Redis that a test takes down and brings back on the same port:
    an outage of Redis as its clients see it, without touching the shared server."""

    def __init__(self, redis_url: str) -> None:
        target = urlsplit(redis_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 6379)
        self._path = target.path
        self._port = 0
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}{self._path}"

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _accept(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        server_in, server_out = await asyncio.open_connection(*self._target)
        self._writers |= {client_out, server_out}
        relays = [
            asyncio.create_task(self._relay(client_in, server_out)),
            asyncio.create_task(self._relay(server_in, client_out)),
        ]
        self._relays.update(relays)
        await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
        for writer in (client_out, server_out):
            writer.close()
            self._writers.discard(writer)

    @staticmethod
    async def _relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()


class TestRedisEventBus(EventBusContract):
    @pytest.fixture
    async def bus(self, redis_url: str, unique_prefix: str) -> AsyncIterator[RedisEventBus]:
        bus = RedisEventBus.from_url(redis_url, prefix=unique_prefix)
        yield bus
        await bus.close()

    def subscription_count(self, bus: EventBus) -> int:
        assert isinstance(bus, RedisEventBus)
        return bus.subscription_count

    async def test_an_event_published_on_one_node_reaches_the_subscribers_of_another(
        self, bus: RedisEventBus, redis_url: str, unique_prefix: str
    ) -> None:
        node_b = RedisEventBus.from_url(redis_url, prefix=unique_prefix)
        try:
            order_id = uuid4()
            on_b, every_order_on_b = await node_b.subscribe(order_id), await node_b.subscribe()
            on_a = await bus.subscribe(order_id)
            published = [event(order_id, seq) for seq in range(1, 4)]

            for each in published:
                await bus.publish(each)

            assert await receive(on_b, 3) == published
            assert await receive(every_order_on_b, 3) == published
            assert await receive(on_a, 3) == published
        finally:
            await node_b.close()

    async def test_a_thousand_subscribers_on_one_node_share_one_redis_subscription(
        self, bus: RedisEventBus, admin: Redis, redis_url: str, unique_prefix: str
    ) -> None:
        orders = [uuid4() for _ in range(500)]
        subscriptions = [await bus.subscribe(order_id) for order_id in orders * 2]
        node_b = RedisEventBus.from_url(redis_url, prefix=unique_prefix)
        try:
            await node_b.subscribe()

            assert await admin.pubsub_numsub(bus.channel) == [(bus.channel, 2)]
            assert len(await subscriber_connections(admin, f"{unique_prefix}:bus")) == 2
            await bus.publish(first := event(orders[0], 1))
            assert await receive(subscriptions[0], 1) == [first]
            assert await receive(subscriptions[500], 1) == [first]
        finally:
            await node_b.close()
        assert await admin.pubsub_numsub(bus.channel) == [(bus.channel, 1)]

    async def test_a_subscriber_gets_none_of_a_burst_published_before_it_subscribed(
        self, bus: RedisEventBus, admin: Redis
    ) -> None:
        order_id = uuid4()
        await bus.start()
        async with admin.pipeline(transaction=False) as burst:
            for seq in range(1, 5001):
                burst.publish(bus.channel, encode(event(order_id, seq)))
            await burst.execute()  # published; the bus's reader is still working through them

        subscription = await bus.subscribe(order_id)
        await bus.publish(marker := event(order_id, 5001))

        assert await receive(subscription, 1) == [marker]

    async def test_after_its_connection_is_killed_the_bus_resubscribes_and_reports_the_gap(
        self, bus: RedisEventBus, admin: Redis, unique_prefix: str
    ) -> None:
        order_id = uuid4()
        one_order, every_order = await bus.subscribe(order_id), await bus.subscribe()
        await bus.publish(before := event(order_id, 1))
        assert await receive(one_order, 1) == [before]
        assert (one_order.dropped, every_order.dropped) == (0, 0)
        [connection] = await subscriber_connections(admin, f"{unique_prefix}:bus")

        await admin.execute_command("CLIENT", "KILL", "ID", connection["id"])  # type: ignore[no-untyped-call]

        await eventually(
            lambda: (one_order.dropped, every_order.dropped) == (1, 1),
            "dropped raised on every live subscription",
        )
        [replacement] = await subscriber_connections(admin, f"{unique_prefix}:bus")
        assert replacement["id"] != connection["id"]
        await bus.publish(after := event(order_id, 2))
        assert await receive(one_order, 1) == [after]
        assert await receive(every_order, 2) == [before, after]
        later = await bus.subscribe(order_id)
        assert later.dropped == 0

    async def test_while_redis_is_unreachable_subscribing_still_works_and_the_gap_is_reported(
        self, redis_url: str, unique_prefix: str
    ) -> None:
        proxy = RedisProxy(redis_url)
        await proxy.up()
        bus = RedisEventBus.from_url(proxy.url, prefix=unique_prefix, reconnect_max_s=0.2)
        try:
            before = await bus.subscribe()

            await proxy.down()
            await eventually(lambda: not bus.connected, "the bus to notice the outage")
            during = await bus.subscribe()
            with pytest.raises(RedisConnectionError):
                await bus.publish(event(uuid4(), 1))
            await proxy.up()

            await eventually(lambda: bus.connected, "the bus to resubscribe")
            assert (before.dropped, during.dropped) == (1, 1)
            await bus.publish(marker := event(uuid4(), 1))
            assert await receive(before, 1) == [marker]
            assert await receive(during, 1) == [marker]
        finally:
            await bus.close()
            await proxy.down()

    async def test_subscribing_first_connects_and_a_bus_that_cannot_reach_redis_says_so(
        self, redis_url: str, unique_prefix: str
    ) -> None:
        unreachable = RedisEventBus.from_url("redis://127.0.0.1:1/0", prefix=unique_prefix)
        try:
            with pytest.raises(RedisConnectionError):
                await unreachable.subscribe()
        finally:
            await unreachable.close()

    async def test_after_close_publishing_is_dropped_and_subscribing_is_refused(
        self, bus: RedisEventBus
    ) -> None:
        await bus.subscribe()
        await bus.close()

        await bus.publish(event(uuid4(), 1))
        with pytest.raises(RuntimeError, match="closed"):
            await bus.subscribe(uuid4())
