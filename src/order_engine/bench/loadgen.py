"""The load generator: POST each order, then follow it on its WebSocket.

Lean on purpose, because a client that spends more CPU per order than the
server measures itself: one ``aiohttp.ClientSession`` (pooled keep-alive
connections for the POSTs, one WebSocket per followed order), bodies
serialized once, orjson parsing, and nothing but a few floats and ints stored
per event. Histograms and checks are computed after the run from the records.

Closed loop (``concurrency``): that many orders in flight, each slot starting
the next order when its previous one finished (terminal event, or accepted
when not subscribing). Open loop (``rate``): orders start at scheduled times
whatever the engine does, up to ``max_in_flight``; the delay between when an
order was due and when its POST started is recorded (``due``), so that a
client falling behind its schedule shows in the report instead of silently
lowering the load.

Bounds: no new order after ``orders`` or ``duration_s``, whichever comes
first; then up to ``drain_timeout_s`` for in-flight orders to finish; the rest
are cancelled and reported as unfinished.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from time import perf_counter
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from order_engine.bench.schedule import Arrivals, OrderMix, arrival_offsets
from order_engine.bench.stats import TERMINAL

EXECUTE_PATH = "/api/orders/execute"
UNFINISHED = "unfinished at the drain timeout"
UNANSWERED = "POST unanswered at the drain timeout"
# Below this, sleeping until an order is due costs more than it is worth.
MIN_SLEEP_S = 0.0005
# The server closes each stream after its terminal event, so the client never
# waits for a close reply except when it gives up on a stream (drain timeout):
# then one second is plenty on loopback.
WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0)


@dataclass(slots=True)
class OrderRecord:
    """One order as the client saw it; times are ``perf_counter`` seconds."""

    index: int
    pair: str
    size: str
    due: float
    post_start: float = 0.0
    post_end: float = 0.0
    http_status: int = 0
    order_id: str | None = None
    error: str | None = None
    seqs: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    terminal_status: str | None = None
    terminal_code: str | None = None
    terminal_at: float | None = None
    close_code: int | None = None
    subscribed: bool = False


@dataclass
class Live:
    """Counters the progress line reads while the run goes on."""

    submitted: int = 0
    accepted: int = 0
    rejected: int = 0
    terminal: int = 0
    in_flight: int = 0
    subscribers: int = 0
    peak_subscribers: int = 0
    peak_in_flight: int = 0


@dataclass(frozen=True)
class LoadPlan:
    urls: list[str]
    orders: int
    duration_s: float
    drain_timeout_s: float
    concurrency: int | None
    rate: float | None
    arrivals: Arrivals
    subscribe: bool
    max_in_flight: int
    api_key: str | None
    seed: int


@dataclass
class LoadResult:
    records: list[OrderRecord]
    started: float
    submit_stopped: float
    finished: float
    cancelled_tasks: int  # still running at the drain timeout (slots, in a closed loop)


def session_for(max_in_flight: int) -> aiohttp.ClientSession:
    """The one session of a run: unlimited pool (the loop bounds the load), no
    total timeout (the drain bound ends stuck requests), no compression."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=None)
    # No per-request timers at all (measured: a few % of the client's CPU): the
    # run's drain bound cancels whatever is still waiting.
    timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    )


class LoadGenerator:
    def __init__(
        self, plan: LoadPlan, mix: OrderMix, session: aiohttp.ClientSession, live: Live
    ) -> None:
        self.plan = plan
        self.mix = mix
        self.session = session
        self.live = live
        self.records: list[OrderRecord] = []
        headers = {"Content-Type": "application/json"}
        if plan.api_key:
            headers["Authorization"] = f"Bearer {plan.api_key}"
        self._headers = headers
        self._post_urls = [URL(u + EXECUTE_PATH, encoded=True) for u in plan.urls]
        self._ws_bases = [
            u.replace("http", "ws", 1) + EXECUTE_PATH + "?orderId=" for u in plan.urls
        ]
        self._ws_suffix = f"&apiKey={quote(plan.api_key, safe='')}" if plan.api_key else ""
        self._deadline = 0.0
        self._stopped = asyncio.Event()
        self._stopped_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    # --- bounds ---------------------------------------------------------------------
    def _may_submit(self) -> bool:
        if self._stopped.is_set():
            return False
        if len(self.records) >= self.plan.orders or perf_counter() >= self._deadline:
            self._stop_submitting()
            return False
        return True

    def _stop_submitting(self) -> None:
        if not self._stopped.is_set():
            self._stopped_at = perf_counter()
            self._stopped.set()

    def _new_record(self, due: float) -> tuple[OrderRecord, bytes]:
        pair, size, body = self.mix.next_body()
        record = OrderRecord(index=len(self.records), pair=str(pair), size=size, due=due)
        self.records.append(record)
        return record, body

    # --- run ------------------------------------------------------------------------
    async def run(self) -> LoadResult:
        started = perf_counter()
        self._deadline = started + self.plan.duration_s
        if self.plan.rate is not None:
            submitter = asyncio.create_task(self._open_loop(started, self.plan.rate))
        else:
            submitter = asyncio.create_task(self._closed_loop(self.plan.concurrency or 1))
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=self.plan.duration_s)
            self._stop_submitting()
            # The open loop may be waiting for room under max_in_flight: it must
            # not hold the run past its duration, so it is stopped, not awaited.
            submitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await submitter
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=self.plan.drain_timeout_s)
        finally:
            submitter.cancel()
            pending = [t for t in self._tasks if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        return LoadResult(
            records=self.records,
            started=started,
            submit_stopped=self._stopped_at or perf_counter(),
            finished=perf_counter(),
            cancelled_tasks=len(pending),
        )

    def _spawn(self, record: OrderRecord, body: bytes) -> asyncio.Task[None]:
        task = asyncio.create_task(self._one(record, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _closed_loop(self, concurrency: int) -> None:
        async def slot() -> None:
            while self._may_submit():
                await self._one(*self._new_record(perf_counter()))

        for _ in range(concurrency):
            task = asyncio.create_task(slot())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _open_loop(self, started: float, rate: float) -> None:
        # Reproducible arrivals, not security.
        rng = random.Random(self.plan.seed)  # noqa: S311
        room = asyncio.Semaphore(self.plan.max_in_flight)
        for offset in arrival_offsets(rate, self.plan.arrivals, rng):
            due = started + offset
            if due >= self._deadline or not self._may_submit():
                break
            delay = due - perf_counter()
            if delay > MIN_SLEEP_S:
                await asyncio.sleep(delay)
            await room.acquire()
            if not self._may_submit():
                room.release()
                break
            task = self._spawn(*self._new_record(due))
            task.add_done_callback(lambda _t: room.release())
        self._stop_submitting()

    # --- one order --------------------------------------------------------------------
    async def _one(self, record: OrderRecord, body: bytes) -> None:
        live = self.live
        live.submitted += 1
        live.in_flight += 1
        live.peak_in_flight = max(live.peak_in_flight, live.in_flight)
        slot = record.index % len(self._post_urls)
        try:
            record.post_start = perf_counter()
            async with self.session.post(
                self._post_urls[slot], data=body, headers=self._headers
            ) as response:
                raw = await response.read()
            record.post_end = perf_counter()
            record.http_status = response.status
            if response.status != 201:
                record.error = _rejection(response.status, raw)
                live.rejected += 1
                return
            record.order_id = orjson.loads(raw)["orderId"]
            live.accepted += 1
            if self.plan.subscribe:
                await self._follow(record, self._ws_bases[slot])
        except asyncio.CancelledError:
            if record.terminal_status is None:
                record.error = record.error or (UNFINISHED if record.order_id else UNANSWERED)
            if record.order_id is None:
                live.rejected += 1
            raise
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError) as exc:
            record.error = f"{type(exc).__name__}: {exc}"[:200]
            if record.order_id is None:
                live.rejected += 1
        finally:
            live.in_flight -= 1

    async def _follow(self, record: OrderRecord, ws_base: str) -> None:
        live = self.live
        url = URL(ws_base + str(record.order_id) + self._ws_suffix, encoded=True)
        async with self.session.ws_connect(url, autoping=True, timeout=WS_TIMEOUT) as ws:
            record.subscribed = True
            live.subscribers += 1
            live.peak_subscribers = max(live.peak_subscribers, live.subscribers)
            try:
                async for message in ws:
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        if message.type is aiohttp.WSMsgType.ERROR:
                            record.error = f"websocket error: {ws.exception()!r}"[:200]
                        continue
                    event = orjson.loads(message.data)
                    status = event.get("status")
                    if status is None:  # {"type": "error", ...}: say what the server said
                        record.error = f"stream error {event.get('code')}: {event.get('message')}"
                        continue
                    record.seqs.append(event.get("seq", 0))
                    record.statuses.append(status)
                    if status in TERMINAL and record.terminal_at is None:
                        record.terminal_at = perf_counter()
                        record.terminal_status = status
                        record.terminal_code = event.get("code")
                        live.terminal += 1
            finally:
                live.subscribers -= 1
            record.close_code = ws.close_code


def _rejection(status: int, raw: bytes) -> str:
    code = None
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        code = orjson.loads(raw).get("code")
    return f"http {status}" + (f" {code}" if code else "")
