"""Distributed event bus: ``ports.bus.EventBus`` on Redis pub/sub.

``publish`` is one ``PUBLISH`` of the orjson-encoded event on one channel.
Each bus (one per process) holds **one** pub/sub connection, read by one
background task that decodes every event and fans it out in-process through
an ``InMemoryEventBus``: ten thousand WebSocket subscribers cost ten thousand
in-memory buffers, not ten thousand Redis connections. A node's own publishes
reach its subscribers through Redis too, so every node sees one order.

**Connecting.** The connection is made by ``start()``, or lazily by the first
``subscribe()``; either returns once Redis confirmed the ``SUBSCRIBE``, and
raises if Redis cannot be reached then.

**Live on return.** ``subscribe()`` sends a ``PING`` on the pub/sub connection
and registers the subscription when the reader meets its ``PONG``: messages
ahead of the ``PONG`` were published before ``subscribe()`` was called and are
not delivered; anything published after it returns is behind the ``PONG``.

**Outages.** Events published while the connection is down are lost for good.
When the reader loses the connection (an error, a silent connection that does
not answer a ``PING`` within ``keepalive_s``, or redis-py's own reconnect,
seen as an unexpected ``subscribe`` confirmation) it reconnects with capped
exponential backoff, and once the new ``SUBSCRIBE`` is confirmed it counts one
outage. Every subscription that was open during it, or opened while the
connection was down, then reports ``dropped`` one higher, so a consumer
(``app/streaming.py``) re-reads the store; a re-read from that moment on is
complete, because later events arrive live again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from order_engine.adapters.memory.backoff import backoff_delay
from order_engine.adapters.memory.bus import (
    DEFAULT_BUFFER_SIZE,
    InMemoryEventBus,
    InMemorySubscription,
)
from order_engine.adapters.redis.client import DEFAULT_MAX_CONNECTIONS, redis_client
from order_engine.domain.order import OrderEvent, OrderStatus
from order_engine.ports.bus import EventBus, Subscription

log = structlog.get_logger(__name__)


def encode(event: OrderEvent) -> bytes:
    return orjson.dumps(
        {
            "order_id": event.order_id,
            "seq": event.seq,
            "status": event.status.value,
            "at": event.at,
            "details": dict(event.details),
        }
    )


def decode(payload: bytes) -> OrderEvent:
    data = orjson.loads(payload)
    return OrderEvent(
        UUID(data["order_id"]),
        data["seq"],
        OrderStatus(data["status"]),
        datetime.fromisoformat(data["at"]),
        data["details"],
    )


@contextlib.contextmanager
def _cancellation_kept() -> Iterator[None]:
    """Re-raise a cancellation that redis-py swallowed.

    redis-py sends every command through ``asyncio.wait_for``, which on Python
    3.11 returns normally when its task is cancelled just as the wrapped call
    completes, dropping the cancellation (fixed in 3.12). The request is still
    counted on the task (``Task.cancelling``). Without this, a job cancelled by a
    draining worker while it published an event ran on to the end of its order
    after its job had been handed back to the queue.
    """
    task = asyncio.current_task()
    requested = task.cancelling() if task is not None else 0
    yield
    if task is not None and task.cancelling() > requested:
        raise asyncio.CancelledError


async def _close(pubsub: PubSub) -> None:
    aclose: Callable[[], Awaitable[None]] = pubsub.aclose  # unannotated in redis-py
    await aclose()


class RedisSubscription:
    """An in-memory subscription plus the bus outages it lived through."""

    __slots__ = ("_bus", "_local", "_outages_at_start")

    def __init__(
        self, bus: RedisEventBus, local: InMemorySubscription, outages_at_start: int
    ) -> None:
        self._bus = bus
        self._local = local
        self._outages_at_start = outages_at_start

    @property
    def dropped(self) -> int:
        """Events lost to overflow, plus one per bus outage since subscribing."""
        return self._local.dropped + self._bus.outages - self._outages_at_start

    @property
    def closed(self) -> bool:
        return self._local.closed

    def __aiter__(self) -> RedisSubscription:
        return self

    async def __anext__(self) -> OrderEvent:
        event = await self._local.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def get(self, timeout: float | None = None) -> OrderEvent | None:  # noqa: ASYNC109 - the port's signature
        return await self._local.get(timeout)

    async def close(self) -> None:
        await self._local.close()


class RedisEventBus:
    """Order events over one Redis channel, ``{prefix}:order-events``.

    ``publish`` raises ``RedisError`` when Redis cannot take the event (callers
    log it: subscribers replay from the store); after ``close`` it is dropped.
    The bus owns its client and closes it in ``close``.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "order-engine",
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        keepalive_s: float = 5.0,
        reconnect_base_s: float = 0.05,
        reconnect_max_s: float = 2.0,
    ) -> None:
        if not keepalive_s > 0:
            raise ValueError(f"keepalive_s must be > 0, got {keepalive_s}")
        backoff_delay(1, reconnect_base_s, reconnect_max_s, random.Random(0))  # noqa: S311 - validates
        self._redis = redis
        self.channel = f"{prefix}:order-events"
        self._local = InMemoryEventBus(buffer_size=buffer_size)
        self._keepalive_s = keepalive_s
        self._reconnect = (reconnect_base_s, reconnect_max_s)
        self._rng = random.Random()  # noqa: S311 - jitter only
        self._pubsub: PubSub | None = None  # None while disconnected
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._barriers: dict[bytes, asyncio.Future[None]] = {}
        self._tokens = itertools.count()
        self._closed = False
        self.outages = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "order-engine",
        client_name: str | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        keepalive_s: float = 5.0,
        reconnect_base_s: float = 0.05,
        reconnect_max_s: float = 2.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> RedisEventBus:
        """``client_name`` (default ``{prefix}:bus``) names the bus's connections in
        ``CLIENT LIST``. redis-py retries once, at once, on a dropped connection:
        a publish then survives a Redis restart; the reader's own backoff handles
        the rest."""
        redis = redis_client(
            url,
            max_connections=max_connections,
            socket_timeout=5.0,
            socket_connect_timeout=5.0,
            client_name=client_name or f"{prefix}:bus",
            retry=Retry(NoBackoff(), 1),
        )
        return cls(
            redis,
            prefix=prefix,
            buffer_size=buffer_size,
            keepalive_s=keepalive_s,
            reconnect_base_s=reconnect_base_s,
            reconnect_max_s=reconnect_max_s,
        )

    @property
    def subscription_count(self) -> int:
        return self._local.subscription_count

    @property
    def connected(self) -> bool:
        return self._pubsub is not None

    async def health(self) -> str:
        # The reader reconnects by itself; until it has, live events are lost.
        return "ok" if self.connected else "unavailable (reconnecting)"

    async def start(self) -> None:
        """Connect and subscribe, if not done yet; returns once Redis confirmed."""
        async with self._starting:
            if self._closed:
                raise RuntimeError("cannot start: the event bus is closed")
            if self._reader is None:
                self._pubsub = await self._connect()
                self._reader = asyncio.create_task(self._read(), name=f"bus-{self.channel}")

    async def publish(self, event: OrderEvent) -> None:
        if self._closed:
            log.debug("bus.publish_after_close", order_id=str(event.order_id), seq=event.seq)
            return
        with _cancellation_kept():
            await self._redis.publish(self.channel, encode(event))

    async def subscribe(self, order_id: UUID | None = None) -> RedisSubscription:
        if self._reader is None:
            await self.start()
        if self._closed:
            raise RuntimeError("cannot subscribe: the event bus is closed")
        outages = self.outages
        pubsub = self._pubsub
        if pubsub is not None:  # while disconnected the next outage count covers us
            token = f"barrier-{next(self._tokens)}".encode()
            barrier = asyncio.get_running_loop().create_future()
            self._barriers[token] = barrier
            try:
                with _cancellation_kept():
                    await pubsub.ping(token)
                # Bounded: a PONG lost with its connection is either settled by the
                # reader's reconnect or, at worst, left to the keepalive to notice.
                # (asyncio.timeout, not wait_for: on 3.11 wait_for can drop a cancel.)
                async with asyncio.timeout(2 * self._keepalive_s):
                    await barrier
            except (RedisError, TimeoutError):
                pass  # the reader meets the same failure and counts the outage
            finally:
                self._barriers.pop(token, None)
        return RedisSubscription(self, await self._local.subscribe(order_id), outages)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._starting:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await self._disconnect()
        await self._local.close()
        await self._redis.aclose()

    # --- the reader -----------------------------------------------------------------

    async def _connect(self) -> PubSub:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            async with asyncio.timeout(self._keepalive_s):
                while True:
                    message = await pubsub.get_message(timeout=self._keepalive_s)
                    if message is not None and message["type"] == "subscribe":
                        return pubsub
        except BaseException:
            await _close(pubsub)
            raise

    async def _disconnect(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        for barrier in self._barriers.values():  # pongs that will never come
            if not barrier.done():
                barrier.set_result(None)
        if pubsub is not None:
            await _close(pubsub)

    async def _read(self) -> None:
        while True:
            pubsub = self._pubsub
            if pubsub is None:
                await self._reconnect_until_subscribed()
                continue
            try:
                await self._pump(pubsub)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("bus.connection_lost", channel=self.channel, error=repr(exc))
                await self._disconnect()
            except Exception as exc:  # a dead reader would silence every stream on this node
                log.error("bus.reader_failed", channel=self.channel, error=repr(exc), exc_info=exc)
                await self._disconnect()

    async def _pump(self, pubsub: PubSub) -> None:
        """Deliver messages until the connection proves dead (then raise)."""
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=self._keepalive_s)
            if message is None:
                if pinged:
                    raise TimeoutError(f"no PONG within {self._keepalive_s}s")
                await pubsub.ping(b"keepalive")
                pinged = True
                continue
            pinged = False
            await self._handle(message)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            try:
                event = decode(message["data"])
            except (ValueError, KeyError, TypeError) as exc:
                log.error("bus.undecodable_event", channel=self.channel, error=repr(exc))
                return
            # Never suspends (InMemoryEventBus.publish only appends to buffers), so a
            # barrier's PONG and the events ahead of it are handled strictly in order.
            await self._local.publish(event)
        elif kind == "pong":
            token = message["data"]
            barrier = self._barriers.get(token.encode() if isinstance(token, str) else token)
            if barrier is not None and not barrier.done():
                barrier.set_result(None)
        elif kind == "subscribe":  # redis-py reconnected by itself and resubscribed
            log.warning("bus.resubscribed", channel=self.channel)
            self._outage_over()

    def _outage_over(self) -> None:
        self.outages += 1
        for barrier in self._barriers.values():
            if not barrier.done():
                barrier.set_result(None)

    async def _reconnect_until_subscribed(self) -> None:
        for attempt in itertools.count(1):
            delay = backoff_delay(min(attempt, 30), *self._reconnect, self._rng)
            await asyncio.sleep(delay)
            try:
                self._pubsub = await self._connect()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("bus.reconnect_failed", attempt=attempt, error=repr(exc))
                continue
            log.info("bus.reconnected", channel=self.channel, attempts=attempt)
            self._outage_over()
            return


if TYPE_CHECKING:
    _conforms_to_the_port: type[EventBus] = RedisEventBus
    _subscription_conforms: type[Subscription] = RedisSubscription
