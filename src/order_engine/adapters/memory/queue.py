"""In-process job queue: the embedded-mode implementation of ``ports.queue.JobQueue``.

No background loop polls anything: work is started by whatever makes it
runnable (an enqueue, a retry timer firing, a handler finishing, ``start``),
and delayed jobs sit on the event loop's timer heap (``loop.call_later``).
Jobs live only in this process; after a crash the reconciler re-enqueues
every unfinished order from the database.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import OrderedDict
from typing import TYPE_CHECKING
from uuid import UUID

import structlog

from order_engine.adapters.memory.backoff import backoff_delay
from order_engine.ports.queue import Job, JobHandler, JobQueue

log = structlog.get_logger(__name__)


class InMemoryJobQueue:
    """At-least-once job queue for one process, keyed by order id.

    Enqueue rules (the job id *is* the order id):

    * While the order's job is **queued or scheduled** (waiting for a delay or
      a retry), ``enqueue`` is a no-op; the existing job keeps its place and
      its delay.
    * While the order's job is **running**, ``enqueue`` records one re-run:
      when the running delivery ends, the order is queued again as a fresh job
      (attempt 1), however many times it was enqueued meanwhile. The running
      handler may have read the order before whatever prompted the enqueue, so
      dropping the request could lose work; one extra, idempotent run cannot.
      If the delivery ends in a scheduled retry or in a return to the queue
      (``stop``), that pending delivery already is the re-run.
    * Otherwise the job is queued (or scheduled when ``delay > 0``).

    Delivery: at most ``concurrency`` handlers run at once, and never two for
    the same order. A handler that raises *any* ``Exception`` is retried after
    ``backoff_delay(attempt, backoff_base, backoff_max)`` until ``max_attempts``
    deliveries were made; then the job is dropped and logged. The queue cannot
    tell transient from permanent failures: the handler turns a permanent one
    into a terminal order state and returns, and raises only what is worth a
    retry (``Job.is_last_attempt`` tells it when to give up instead).

    ``stop`` interrupts: a job cancelled because it outlived the drain timeout
    goes back to the head of the queue with its attempt number unchanged (a
    shutdown is not the job's failure), so a later ``start`` runs it first.
    ``close`` discards whatever is still queued.
    """

    def __init__(
        self,
        max_attempts: int,
        backoff_base: float,
        backoff_max: float,
        *,
        seed: int | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        # Validates base and cap once, here, rather than at the first failure.
        backoff_delay(1, backoff_base, backoff_max, random.Random(0))  # noqa: S311
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        # Jitter only needs to de-synchronise retries, not to be unpredictable.
        self._rng = random.Random(seed)  # noqa: S311
        self._ready: OrderedDict[UUID, Job] = OrderedDict()
        self._scheduled: dict[UUID, tuple[Job, asyncio.TimerHandle]] = {}
        self._running: dict[UUID, asyncio.Task[None]] = {}
        self._rerun: set[UUID] = set()
        self._handler: JobHandler | None = None
        self._concurrency = 0
        self._started = False
        self._closed = False

    async def enqueue(self, order_id: UUID, *, delay: float = 0.0) -> None:
        if self._closed:
            raise RuntimeError(f"cannot enqueue order {order_id}: the queue is closed")
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError(f"delay must be a finite number of seconds >= 0, got {delay!r}")
        if order_id in self._ready or order_id in self._scheduled:
            log.debug("queue.enqueue_duplicate", order_id=str(order_id))
            return
        if order_id in self._running:
            self._rerun.add(order_id)
            log.debug("queue.rerun_requested", order_id=str(order_id))
            return
        self._put(Job(order_id, 1, self._max_attempts), delay)
        log.debug("queue.enqueued", order_id=str(order_id), delay=delay)

    async def depth(self) -> int:
        return len(self._ready) + len(self._scheduled)

    async def health(self) -> None:
        """In this process: nothing another process could take away."""
        return

    async def start(self, handler: JobHandler, concurrency: int) -> None:
        if self._closed:
            raise RuntimeError("cannot start: the queue is closed")
        if self._started:
            raise RuntimeError("the queue is already started; stop() it first")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self._handler = handler
        self._concurrency = concurrency
        self._started = True
        log.info("queue.started", concurrency=concurrency, depth=await self.depth())
        self._pump()

    async def stop(self, drain_timeout: float) -> None:
        self._started = False  # from here on _pump starts nothing
        tasks = list(self._running.values())
        if not tasks:
            return
        log.info("queue.draining", running=len(tasks), drain_timeout=drain_timeout)
        _, pending = await asyncio.wait(tasks, timeout=max(drain_timeout, 0.0))
        if pending:
            log.warning("queue.drain_timeout", cancelled=len(pending))
            # Cancel newest first: each unwinding task pushes its job to the head,
            # so the oldest one ends up first in line.
            for task in reversed([t for t in tasks if t in pending]):
                task.cancel()
            # A handler that swallows CancelledError still has to return some day;
            # waiting for it is what guarantees no task outlives stop().
            await asyncio.wait(pending)

    async def close(self) -> None:
        if self._closed:
            return
        await self.stop(drain_timeout=0.0)
        self._closed = True
        for _, timer in self._scheduled.values():
            timer.cancel()
        discarded = len(self._ready) + len(self._scheduled)
        if discarded:
            log.warning("queue.closed_with_jobs", discarded=discarded)
        self._ready.clear()
        self._scheduled.clear()
        self._rerun.clear()

    def _put(self, job: Job, delay: float) -> None:
        if delay > 0:
            timer = asyncio.get_running_loop().call_later(delay, self._release, job.order_id)
            self._scheduled[job.order_id] = (job, timer)
        else:
            self._ready[job.order_id] = job
            self._pump()

    def _release(self, order_id: UUID) -> None:
        job, _ = self._scheduled.pop(order_id)
        self._ready[order_id] = job
        self._pump()

    def _pump(self) -> None:
        """Start ready jobs while there are free slots."""
        if not self._started or self._handler is None:
            return
        loop = asyncio.get_running_loop()
        while self._ready and len(self._running) < self._concurrency:
            order_id, job = self._ready.popitem(last=False)
            self._running[order_id] = loop.create_task(
                self._run(self._handler, job), name=f"job-{order_id}-{job.attempt}"
            )

    async def _run(self, handler: JobHandler, job: Job) -> None:
        order_id = str(job.order_id)
        retry_scheduled = False
        try:
            await handler(job)
        except asyncio.CancelledError:
            self._ready[job.order_id] = job
            self._ready.move_to_end(job.order_id, last=False)
            self._rerun.discard(job.order_id)
            log.warning("queue.job_interrupted", order_id=order_id, attempt=job.attempt)
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is retried; the handler decides what to raise
            retry_scheduled = self._after_failure(job, exc)
        else:
            log.debug("queue.job_done", order_id=order_id, attempt=job.attempt)
        finally:
            del self._running[job.order_id]
        if job.order_id in self._rerun:
            self._rerun.discard(job.order_id)
            if not retry_scheduled and not self._closed:
                self._put(Job(job.order_id, 1, self._max_attempts), 0.0)
                log.debug("queue.rerun_queued", order_id=order_id)
        self._pump()

    def _after_failure(self, job: Job, exc: Exception) -> bool:
        """Schedule the next attempt, or drop the job; True when a retry is scheduled."""
        order_id = str(job.order_id)
        if job.is_last_attempt or self._closed:
            log.error(
                "queue.job_dropped",
                order_id=order_id,
                attempts=job.attempt,
                error=repr(exc),
                exc_info=exc,
            )
            return False
        delay = backoff_delay(job.attempt, self._backoff_base, self._backoff_max, self._rng)
        self._put(Job(job.order_id, job.attempt + 1, job.max_attempts), delay)
        log.warning(
            "queue.job_retry_scheduled",
            order_id=order_id,
            attempt=job.attempt,
            next_attempt=job.attempt + 1,
            delay=round(delay, 4),
            error=repr(exc),
        )
        return True


if TYPE_CHECKING:
    _conforms_to_the_port: type[JobQueue] = InMemoryJobQueue
