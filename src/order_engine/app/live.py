"""One tailer per process: every live stream of the process fed by one bus subscription.

A socket does not subscribe to the bus. It registers a ``Listener`` (a
bounded buffer of wire messages) with the process's ``StreamTailer``, under
an order id (the per-order stream) or an owner (the account stream); the
tailer's one reader task hands each event, encoded once, to exactly the
listeners its order or owner has, and to nobody else.

* **Per-order listeners** get events straight from the bus: the seq says
  where each belongs, and a gap, a bus outage, or an order silent for a whole
  ``sweep_s`` makes the listener re-read its order from the store
  (``app/streaming.py``).
* **Account listeners** need the store's global order (``cursor``, decision
  0004), which the bus does not carry. So the bus only wakes the tailer, and
  the tailer, not each listener, reads the log after its own cursor: one
  query per wake-up per process (a burst that arrives while a read is in
  flight is covered by the next read), however many sockets listen. Each
  event read is encoded once and offered to its owner's listeners. On
  PostgreSQL an event becomes readable only once every older transaction has
  ended, a moment after it was published: the tailer remembers which
  announced events it has not read yet and re-reads, with a short doubling
  delay, until it has them.

**Idle costs nothing per listener.** A listener is a few slots (its buffer and
wake-up future exist only while it has something to wait for); it has no
timer and never queries the store on its own while it is live. The tailer
alone keeps one timer, ``sweep_s``, and only while streams are open: one read
of the log (account listeners), or a re-read by each per-order listener whose
order said nothing for a whole sweep. It recovers a publish lost without an
outage being seen (say, a publisher's connection failing after the commit).

**Slow consumers are bounded.** A live listener whose buffer holds
``buffer_events`` undelivered messages is closed: the tailer cancels its
sending task and flags it ``too_slow``, and the socket closes with
``CLOSE_TOO_SLOW`` naming the cursor to resume from. While a listener is
reading the store (catching up), live messages that overflow its buffer are
simply dropped and ``lagged`` is set: they are in the store, and it reads
again.
Nothing the tailer does waits for a listener.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Hashable
from typing import Any
from uuid import UUID

import structlog

from order_engine.app.wire import account_text, event_text
from order_engine.domain.order import TERMINAL, OrderEvent
from order_engine.ports.bus import EventBus, Subscription
from order_engine.ports.order_queries import START, AccountEvent, EventCursor, OrderQueries

log = structlog.get_logger(__name__)

# (position, message, terminal): the position is a seq on per-order streams and an
# EventCursor on account streams; the message is shared by every listener.
Delivery = tuple[Any, str, bool]

BATCH = 500
SEEN_ORDERS = 16_384  # orders whose last read seq the tailer remembers (see _announce)
RETRY_FIRST_S = 0.002
RETRY_MAX_S = 0.5
RETRIES = 12  # about 3 s of re-reads for an announced event; then the sweep's turn


class StreamClosed(Exception):
    """The tailer was closed (the process is stopping)."""


class Listener:
    """One socket's place on the tail: a bounded buffer and a wake-up signal.

    Ten thousand of these sit idle at once, so an idle one holds no buffer and no
    event: the deque exists only while messages wait, and the consumer's wake-up
    is a bare future made when it starts waiting (an ``asyncio.Event`` and an
    empty deque are about 1.4 KB per listener, most of a listener's cost)."""

    __slots__ = (
        "_buffer",
        "_limit",
        "_tailer",
        "_waiter",
        "catching_up",
        "closed",
        "heard",
        "key",
        "lagged",
        "task",
        "too_slow",
    )

    def __init__(self, tailer: StreamTailer, key: Hashable, limit: int) -> None:
        self._tailer = tailer
        self.key = key
        self._limit = limit
        self._buffer: deque[Delivery] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.catching_up = True  # reading the store: overflow means "read again", not "too slow"
        self.lagged = False
        self.too_slow = False
        self.closed = False
        self.heard = False  # something arrived since the last sweep
        self.task: asyncio.Task[Any] | None = None  # the sender, cancelled when too slow

    def offer(self, delivery: Delivery) -> None:
        """Queue ``delivery``; never waits (called by the tailer's reader)."""
        if self.closed or self.too_slow:
            return
        self.heard = True
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = deque()
        elif len(buffer) >= self._limit:
            if self.catching_up:
                self.resync()
                return
            self.too_slow = True
            self._buffer = None
            self._wake()
            if self.task is not None:
                self.task.cancel()  # it is stuck sending; the socket closes with CLOSE_TOO_SLOW
            return
        buffer.append(delivery)
        self._wake()

    def resync(self) -> None:
        """What is buffered may have holes: drop it and have the consumer re-read the store."""
        self._buffer = None
        self.lagged = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self) -> Delivery | None:
        """The next live delivery, or ``None`` when the consumer must re-read the store."""
        while True:
            if self.closed:
                raise StreamClosed("the live tail was closed")
            if self.lagged:
                self.lagged = False  # from here on the buffer is complete again
                return None
            buffer = self._buffer
            if buffer:
                delivery = buffer.popleft()
                if not buffer:
                    self._buffer = None
                return delivery
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._buffer = None
            self._wake()
            self._tailer._forget(self)


class StreamTailer:
    """The process's one reader of the event bus, and of the account log behind it."""

    def __init__(
        self,
        bus: EventBus,
        queries: OrderQueries,
        *,
        buffer_events: int = 1000,
        sweep_s: float = 10.0,
        batch: int = BATCH,
    ) -> None:
        if buffer_events < 1 or batch < 1 or not sweep_s > 0:
            raise ValueError("buffer_events and batch must be >= 1, sweep_s > 0")
        self._bus = bus
        self._queries = queries
        self._limit = buffer_events
        self._sweep_s = sweep_s
        # One read is offered to listeners in one synchronous pass: more than a
        # listener's buffer per read would close even a client that keeps up.
        self._batch = min(batch, buffer_events)
        self._orders: dict[Hashable, set[Listener]] = {}
        self._accounts: dict[Hashable, set[Listener]] = {}  # key None: every owner's events
        self._cursor = START
        self._following = False  # self._cursor is where the log was read to
        self._generation = 0  # bumped whenever following stops or restarts
        self._follow_lock = asyncio.Lock()
        self._reading = asyncio.Lock()
        self._settling: asyncio.Task[None] | None = None
        self._pending: dict[UUID, int] = {}  # announced but not read from the log yet
        self._seen: OrderedDict[UUID, int] = OrderedDict()  # last seq read per order
        self._unread = False  # a log read failed or was cut short; read again
        self._subscription: Subscription | None = None
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._closed = False

    @property
    def listener_count(self) -> int:
        return sum(map(len, self._orders.values())) + sum(map(len, self._accounts.values()))

    @property
    def cursor(self) -> EventCursor:
        return self._cursor

    async def start(self) -> None:
        """Subscribe to the bus (live when this returns) and start the reader; idempotent."""
        async with self._starting:
            if self._closed:
                raise StreamClosed("the live tail is closed")
            if self._reader is None:
                self._subscription = await self._bus.subscribe(None)
                self._reader = asyncio.create_task(self._read(), name="stream-tailer")

    async def listen_order(self, order_id: UUID) -> Listener:
        return await self._listen(self._orders, order_id)

    async def listen_account(self, owner: str | None) -> Listener:
        """Register, then make sure the log is followed: once this returns, every
        event after ``self.cursor`` will be offered (a store read started now
        reaches at least that far)."""
        listener = await self._listen(self._accounts, owner)
        try:
            await self._follow()
        except BaseException:
            listener.close()
            raise
        return listener

    async def close(self) -> None:
        self._closed = True
        async with self._starting:
            reader, self._reader = self._reader, None
        for task in (reader, self._settling):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._subscription is not None:
            await self._subscription.close()
        for index in (self._orders, self._accounts):
            for listener in [each for group in index.values() for each in group]:
                listener.close()

    # --- registration ----------------------------------------------------------------

    async def _listen(self, index: dict[Hashable, set[Listener]], key: Hashable) -> Listener:
        if self._reader is None:
            await self.start()
        if self._closed:
            raise StreamClosed("the live tail is closed")
        listener = Listener(self, key, self._limit)
        index.setdefault(key, set()).add(listener)
        return listener

    def _forget(self, listener: Listener) -> None:
        for index in (self._orders, self._accounts):
            group = index.get(listener.key)
            if group is not None and listener in group:
                group.discard(listener)
                if not group:
                    del index[listener.key]
        if not self._accounts and self._following:
            self._following = False  # nobody reads the log: stop paying for it
            self._generation += 1
            self._pending.clear()
            self._seen.clear()

    async def _follow(self) -> None:
        async with self._follow_lock:  # mypy cannot see _forget reset the flag meanwhile
            if self._following:
                return
            head = await self._queries.account_head(None)
            if self._accounts:
                self._cursor, self._following = head, True
                self._generation += 1
                if self._settling is None or self._settling.done():
                    self._settling = asyncio.create_task(self._settle(), name="stream-settle")

    async def _settle(self) -> None:
        """Re-read the log a few times after following starts. Events announced while
        nobody followed were not remembered as pending, and on PostgreSQL some may
        become readable only after ``head`` was taken; these reads find them without
        waiting for the sweep."""
        for retry in range(RETRIES):
            await asyncio.sleep(min(RETRY_FIRST_S * 2.0**retry, RETRY_MAX_S))
            if not self._following:
                return
            await self._read_log()

    # --- the reader ------------------------------------------------------------------

    async def _read(self) -> None:
        subscription = self._subscription
        assert subscription is not None  # noqa: S101 - set by start() before the task
        dropped = subscription.dropped
        retries = 0
        while True:
            event = await subscription.get(timeout=self._timeout(retries))
            if event is None and getattr(subscription, "closed", False):
                # The bus went first (it returns None at once now): end the streams,
                # which close 1013 and resume from their cursors, rather than spin.
                log.warning("stream_tailer.bus_closed")
                for index in (self._orders, self._accounts):
                    for listener in [each for group in index.values() for each in group]:
                        listener.close()
                return
            if event is not None:
                retries = 0
                await self._take_burst(subscription, event)
            else:
                retries = self._after_silence(retries)
            if subscription.dropped != dropped:  # overflow or outage: announcements lost
                dropped = subscription.dropped
                for group in self._orders.values():
                    for listener in group:
                        listener.resync()
                self._unread = True
            if self._following and (self._pending or self._unread):
                await self._read_log()

    async def _take_burst(self, subscription: Subscription, event: OrderEvent) -> None:
        """Announce ``event`` and whatever else is already buffered, before reading once."""
        self._announce(event)
        for _ in range(4 * BATCH):
            more = await subscription.get(timeout=0)
            if more is None:
                return
            self._announce(more)

    def _after_silence(self, retries: int) -> int:
        """A timeout: a re-read is due (announced events still unread), or the sweep."""
        if self._pending or self._unread:
            retries += 1
            if retries > RETRIES:
                self._pending.clear()  # the sweep carries on from here
        else:
            self._sweep()
        self._unread = self._unread or bool(self._accounts)
        return retries

    def _timeout(self, retries: int) -> float | None:
        if self._following and (self._pending or self._unread):
            return min(RETRY_FIRST_S * 2.0**retries, RETRY_MAX_S)
        return self._sweep_s if (self._orders or self._accounts) else None

    def _announce(self, event: OrderEvent) -> None:
        group = self._orders.get(event.order_id)
        if group:
            delivery = (event.seq, event_text(event), event.status in TERMINAL)
            for listener in group:
                listener.offer(delivery)
        if self._following and self._seen.get(event.order_id, 0) < event.seq:
            self._pending[event.order_id] = max(self._pending.get(event.order_id, 0), event.seq)

    def _sweep(self) -> None:
        """Silence for ``sweep_s``: per-order listeners that heard nothing re-read."""
        for group in self._orders.values():
            for listener in group:
                if not listener.heard:
                    listener.resync()
                listener.heard = False

    async def _read_log(self) -> None:
        async with self._reading:  # the reader and _settle: one read at a time, no repeats
            await self._read_log_unlocked()

    async def _read_log_unlocked(self) -> None:
        self._unread = False
        while self._following:
            generation = self._generation
            try:
                batch = await self._queries.account_events(None, self._cursor, self._batch)
            except Exception as exc:  # noqa: BLE001 - a dead reader would stall every stream
                log.warning("stream_tailer.read_failed", error=repr(exc))
                self._unread = True
                return
            if generation != self._generation:
                return  # following stopped or restarted meanwhile; that cursor is stale
            for item in batch:
                self._dispatch(item)
            if batch:
                self._cursor = batch[-1].cursor
            if len(batch) < self._batch:
                return

    def _dispatch(self, item: AccountEvent) -> None:
        event = item.event
        seen = self._seen
        seen[event.order_id] = event.seq
        seen.move_to_end(event.order_id)
        if len(seen) > SEEN_ORDERS:
            seen.popitem(last=False)
        if self._pending.get(event.order_id, event.seq + 1) <= event.seq:
            del self._pending[event.order_id]
        mine = self._accounts.get(item.owner)
        everyone = self._accounts.get(None) if item.owner is not None else None
        if not mine and not everyone:
            return
        delivery = (item.cursor, account_text(event, str(item.cursor)), event.status in TERMINAL)
        for group in (mine, everyone):
            for listener in group or ():
                listener.offer(delivery)
