"""Distributed job queue: ``ports.queue.JobQueue`` on SAQ and Redis.

Any number of API nodes enqueue and any number of workers consume one named
queue. The SAQ ``Worker`` runs the jobs; ``saq_fenced.FencedRedisQueue`` holds
the Redis side (why it overrides SAQ's scripts is written there).

Timings, and what they buy:

* ``heartbeat_s`` (default 3 s): a running job's heartbeat key expires this
  long after its last beat; beats are sent every ``heartbeat_s / 3``.
* ``sweep_s`` (default 1 s): how often, at most, some worker sweeps the queue.
  A job is requeued once two sweeps in a row found it without a heartbeat, so
  a job whose worker was killed runs again within ``heartbeat_s + 2 * sweep_s``
  (5 s by default). A live worker whose event loop stalls longer than
  ``heartbeat_s`` loses its job the same way; fencing keeps it from finishing it.
* ``schedule_s`` (default 0.05 s): how often each worker moves due delayed jobs
  and retries to the queue, so a delay is late by at most about this much.
* ``dequeue_timeout_s`` (default 1 s): how long an idle worker blocks in
  ``BLMOVE``. ``stop`` lets a blocked dequeue return rather than cancelling it
  (a cancelled ``BLMOVE`` can lose the job it popped until a sweep), so ``stop``
  may take this long. ``socket_timeout_s`` must exceed it, or every idle
  dequeue would end in a socket timeout: redis-py 8 defaults to 5 s, which is
  why the default here is ``dequeue_timeout_s + 5``.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import structlog
from redis.asyncio import Redis
from saq.types import Context, PartialTimersDict
from saq.worker import Worker

from order_engine.adapters.memory.backoff import backoff_delay
from order_engine.adapters.redis.client import DEFAULT_MAX_CONNECTIONS, redis_client
from order_engine.adapters.redis.saq_fenced import FUNCTION, FencedRedisQueue
from order_engine.ports.queue import Job, JobHandler, JobQueue

log = structlog.get_logger(__name__)

CANCELLATION_DEADLINE_S = 5.0  # how long a cancelled handler may take to unwind


class _Worker(Worker[Context]):
    """SAQ's worker without its signal handlers (the process owns SIGTERM and
    calls ``SaqJobQueue.stop``) and with the port's drain semantics in ``stop``."""

    SIGNALS: list[Any] = []  # noqa: RUF012 - overrides SAQ's class attribute

    def __init__(self, queue: FencedRedisQueue, **kwargs: Any) -> None:
        super().__init__(queue, **kwargs)
        self.fenced = queue
        self.drain_timeout = 0.0
        self._upkeep: list[asyncio.Task[None]] = []
        self._drained = False

    async def upkeep(self) -> list[asyncio.Task[None]]:
        self._upkeep = await super().upkeep()
        return self._upkeep

    async def stop(self) -> None:
        """Stop dequeuing; wait ``drain_timeout`` for running jobs, then cancel them
        (SAQ's ``process`` returns a cancelled job to the queue). Idle dequeues
        are not cancelled: they return within ``dequeue_timeout``."""
        self.event.set()
        if self._drained:
            return
        self._drained = True
        for task in self._upkeep:
            task.cancel()
        await asyncio.gather(*self._upkeep, return_exceptions=True)
        processes = [task for task in self.tasks if task not in self._upkeep]
        self.tasks.clear()
        if processes:
            _, pending = await asyncio.wait(processes, timeout=self.drain_timeout)
            busy = [task for task in pending if task not in self.fenced.dequeuing]
            if busy:
                log.warning("queue.drain_timeout", cancelled=len(busy))
            for task in busy:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        self.pool.shutdown(wait=False)


@dataclass(frozen=True, slots=True)
class SaqQueueConfig:
    """Everything a ``SaqJobQueue`` is tuned by (the timings: module docstring),
    checked once here rather than wherever a queue is built."""

    name: str
    max_attempts: int
    backoff_base: float
    backoff_max: float
    seed: int | None = None
    heartbeat_s: float = 3.0
    sweep_s: float = 1.0
    schedule_s: float = 0.05
    dequeue_timeout_s: float = 1.0
    job_timeout_s: int = 0  # 0: no limit
    socket_timeout_s: float | None = None  # None: dequeue_timeout_s + 5
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        backoff_delay(1, self.backoff_base, self.backoff_max, random.Random(0))  # noqa: S311 - validates
        for label, value in [
            ("heartbeat_s", self.heartbeat_s),
            ("sweep_s", self.sweep_s),
            ("schedule_s", self.schedule_s),
            ("dequeue_timeout_s", self.dequeue_timeout_s),
        ]:
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{label} must be a finite number of seconds > 0, got {value!r}")
        if self.job_timeout_s < 0:
            raise ValueError(f"job_timeout_s must be >= 0 (0: no limit), got {self.job_timeout_s}")
        if not self.socket_timeout > self.dequeue_timeout_s:
            raise ValueError(
                f"socket_timeout_s must exceed dequeue_timeout_s ({self.dequeue_timeout_s}), "
                f"or every blocking dequeue times out; got {self.socket_timeout_s}"
            )

    @property
    def socket_timeout(self) -> float:
        """redis-py's socket timeout: longer than a blocking dequeue (module docstring)."""
        if self.socket_timeout_s is None:
            return self.dequeue_timeout_s + 5.0
        return self.socket_timeout_s


class SaqJobQueue:
    """At-least-once job queue on Redis, keyed by order id, shared by every node.

    Enqueue rules (the SAQ job key *is* the order id), as in the in-memory queue:

    * While the order's job is **queued or scheduled**, ``enqueue`` is a no-op.
    * While it is **running** (on any worker), ``enqueue`` records one re-run,
      queued as a fresh job (attempt 1) when the running delivery finishes; a
      retry or a return to the queue that follows the delivery stands for it.
    * Otherwise, including after the job finished (finished jobs are deleted,
      not kept for SAQ's ``ttl``), the job is queued, or scheduled when
      ``delay > 0``.

    Delivery: a worker runs at most ``concurrency`` jobs. A handler that raises
    is retried after ``backoff_delay`` (equal jitter, the in-memory queue's
    schedule) until ``max_attempts`` deliveries were made, then the job is
    dropped. A delivery cut short by a dead worker counts as an attempt; one
    cancelled by ``stop`` does not, and goes back to the head of the queue for
    any worker to take. ``close`` releases the connections; queued jobs stay
    in Redis for the other workers.
    """

    def __init__(self, redis: Redis, config: SaqQueueConfig) -> None:
        self.config = config
        self._saq = FencedRedisQueue(
            redis,
            name=config.name,
            max_attempts=config.max_attempts,
            heartbeat_s=config.heartbeat_s,
            job_timeout_s=config.job_timeout_s,
        )
        self._rng = random.Random(config.seed)  # noqa: S311 - jitter only de-synchronises retries
        self._timers = cast(
            "PartialTimersDict",  # SAQ types its timers as whole seconds; floats work
            {"schedule": config.schedule_s, "sweep": config.sweep_s, "abort": 1, "worker_info": 10},
        )
        self._handler: JobHandler | None = None
        self._worker: _Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._beater: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str, config: SaqQueueConfig) -> SaqJobQueue:
        """A queue on its own Redis connection pool, closed by ``close``."""
        redis = redis_client(
            url,
            max_connections=config.max_connections,
            socket_timeout=config.socket_timeout,
            socket_connect_timeout=5.0,
            client_name=f"saq:{config.name}",  # in CLIENT LIST
        )
        return cls(redis, config)

    @property
    def name(self) -> str:
        return self._saq.name

    async def enqueue(self, order_id: UUID, *, delay: float = 0.0) -> None:
        if self._closed:
            raise RuntimeError(f"cannot enqueue order {order_id}: the queue is closed")
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError(f"delay must be a finite number of seconds >= 0, got {delay!r}")
        outcome = await self._saq.enqueue_order(str(order_id), delay)
        event = {0: "queue.enqueue_duplicate", 1: "queue.enqueued", 2: "queue.rerun_requested"}
        log.debug(event[outcome], order_id=str(order_id), delay=delay)

    async def depth(self) -> int:
        return await self._saq.depth()

    async def health(self) -> str:
        await self._saq.depth()  # raises while Redis cannot be reached
        return "ok"

    async def start(self, handler: JobHandler, concurrency: int) -> None:
        if self._closed:
            raise RuntimeError("cannot start: the queue is closed")
        if self._worker is not None:
            raise RuntimeError("the queue is already started; stop() it first")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        await self._saq.check_server()
        self._handler = handler
        self._saq.stopping = False
        started = asyncio.Event()

        async def on_startup(ctx: Context) -> None:
            started.set()

        worker = _Worker(
            self._saq,
            functions=[(FUNCTION, self._execute)],
            concurrency=concurrency,
            startup=on_startup,
            timers=self._timers,
            dequeue_timeout=self.config.dequeue_timeout_s,
            cancellation_hard_deadline_s=CANCELLATION_DEADLINE_S,
        )
        self._worker = worker
        self._worker_task = asyncio.create_task(worker.start(), name=f"saq-worker-{self.name}")
        self._beater = asyncio.create_task(self._beat(worker.id), name=f"saq-beat-{self.name}")
        # Worker.start replaces its stop event before calling startup: wait for it,
        # so that a stop() right after start() sets the event the worker waits on.
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait([waiter, self._worker_task], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        log.info("queue.started", queue=self.name, concurrency=concurrency, worker=worker.id)

    async def stop(self, drain_timeout: float) -> None:
        worker, worker_task, beater = self._worker, self._worker_task, self._beater
        if worker is None or worker_task is None or beater is None:
            return
        self._worker = self._worker_task = self._beater = None
        self._saq.stopping = True
        worker.drain_timeout = max(drain_timeout, 0.0)
        worker.event.set()
        await worker_task  # Worker.start ends by awaiting _Worker.stop
        await self._saq.release_held(worker.id)
        beater.cancel()
        await asyncio.gather(beater, return_exceptions=True)
        log.info("queue.stopped", queue=self.name, worker=worker.id)

    async def close(self) -> None:
        if self._closed:
            return
        await self.stop(drain_timeout=0.0)
        self._closed = True
        # Not RedisQueue.disconnect: it would open a connection just to PUNSUBSCRIBE
        # a pub/sub channel this queue never listened on.
        await self._saq.redis.aclose()

    async def _execute(self, ctx: Context) -> None:
        """The SAQ function: runs the port's handler and sets what SAQ does next."""
        saq_job = ctx["job"]
        job = Job(UUID(saq_job.key), saq_job.attempts, saq_job.retries)
        handler = self._handler
        assert handler is not None  # noqa: S101 - set before the worker starts
        try:
            await handler(job)
        except asyncio.CancelledError:
            if self._saq.stopping:  # a shutdown is not the job's failure
                saq_job.attempts -= 1
                saq_job.retry_delay = 0.0
                log.warning("queue.job_interrupted", order_id=saq_job.key, attempt=job.attempt)
            else:  # SAQ's job timeout
                saq_job.retry_delay = self._retry_delay(job)
            raise
        except Exception as exc:
            saq_job.retry_delay = self._retry_delay(job)
            if job.is_last_attempt:
                log.error("queue.job_dropped", order_id=saq_job.key, attempts=job.attempt)
            else:
                log.warning(
                    "queue.job_retry_scheduled",
                    order_id=saq_job.key,
                    attempt=job.attempt,
                    delay=round(saq_job.retry_delay, 4),
                    error=repr(exc),
                )
            raise

    def _retry_delay(self, job: Job) -> float:
        config = self.config
        return backoff_delay(job.attempt, config.backoff_base, config.backoff_max, self._rng)

    async def _beat(self, worker_id: str) -> None:
        while True:
            try:
                await self._saq.beat(worker_id)
            except Exception as exc:  # noqa: BLE001 - keep beating; a sweep decides, not us
                log.warning("queue.heartbeat_failed", error=repr(exc))
            await asyncio.sleep(self.config.heartbeat_s / 3)


if TYPE_CHECKING:
    _conforms_to_the_port: type[JobQueue] = SaqJobQueue
