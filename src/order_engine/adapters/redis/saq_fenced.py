"""SAQ's Redis queue with the write paths the job-queue port needs.

``saq.queue.redis.RedisQueue`` keeps its key layout, job model, blocking
dequeue (``BLMOVE queued -> active``) and worker bookkeeping; the methods
overridden here replace its Redis scripts where SAQ 0.26 falls short of
``ports.queue``:

* **Finished jobs linger.** SAQ keeps a finished job's key for ``ttl`` (600 s)
  and refuses to re-enqueue it meanwhile; jobs here finish by deletion.
* **Enqueue while running.** SAQ drops it; here it is remembered as one re-run
  (the ``rerun`` set), queued atomically when the running delivery finishes.
* **Scheduling precision.** SAQ's scheduler takes a ``SETEX`` lock for its
  poll interval, so it cannot poll faster than once per whole second; here the
  scheduler takes no lock (the script is atomic) and reads Redis ``TIME``,
  so delays are exact to the poll interval and immune to clock skew between
  nodes. Retry delays likewise are absolute Redis times, never SAQ's
  full-jitter backoff.
* **A retried job that was once scheduled** is pushed to ``queued`` *and*
  keeps its past score, so SAQ's scheduler queues it a second time; here a
  job is in ``queued`` exactly when its score is 0.
* **Sweeping.** SAQ's sweep treats a job that was just popped but not yet
  marked active as stuck, blocks up to 5 s per dead job, and leaves an abort
  key that refuses the order's next enqueue. Here liveness is a heartbeat key
  with a server-side expiry (``beat``); a job in ``active`` is dead once a
  sweep finds it without a heartbeat on two consecutive passes, which are at
  least ``sweep_s`` apart (a global ``PX`` lock), and it is requeued by a
  compare-and-set, so a late heartbeat or finish wins.
* **Fencing.** Marking active, retrying and finishing only act while the stored
  job is active *and held by this worker*, so a worker whose job was swept
  (it stalled past the heartbeat) cannot finish or requeue the job under the
  worker that took it over.

Needs Redis >= 6.2 (``BLMOVE``, ``LPOS``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq.job import Job as SaqJob
from saq.job import Status
from saq.queue.redis import RedisQueue
from saq.types import WorkerInfo

from order_engine.adapters.redis import saq_scripts as scripts

log = structlog.get_logger(__name__)

FUNCTION = "execute_order"
_UNREACHABLE_PAUSE_S = 1.0  # between dequeues while Redis cannot be reached


class JobLost(Exception):
    """The job was taken from this worker (swept) before it could be marked active."""


class FencedRedisQueue(RedisQueue):
    """A ``saq.queue.redis.RedisQueue`` for order jobs; see the module docstring.

    ``stopping`` makes ``dequeue`` hand back whatever it pops, so a worker
    being stopped takes no new job. ``held`` maps the keys this object popped
    and has not yet finished or retried to the worker that popped them.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        name: str,
        max_attempts: int,
        heartbeat_s: float,
        job_timeout_s: int,
    ) -> None:
        super().__init__(redis, name=name)
        self.max_attempts = max_attempts
        self.heartbeat_ms = max(1, round(heartbeat_s * 1000))
        self.job_timeout_s = job_timeout_s
        self.stopping = False
        self.unreachable = False  # the last dequeue could not reach Redis
        self.held: dict[str, str] = {}
        self.dequeuing: set[asyncio.Task[Any]] = set()
        self._rerun = self.namespace("rerun")
        self._suspects = self.namespace("suspects")
        self._beat_prefix = self.namespace("beat") + ":"
        self._scripts = {
            name: redis.register_script(source)
            for name, source in {
                "enqueue": scripts.ENQUEUE,
                "push_back": scripts.PUSH_BACK,
                "mark_active": scripts.MARK_ACTIVE,
                "retry": scripts.RETRY,
                "finish": scripts.FINISH,
                "release": scripts.RELEASE,
                "schedule": scripts.SCHEDULE,
                "sweep": scripts.SWEEP,
                "beat": scripts.BEAT,
            }.items()
        }

    def new_job(self, key: str) -> SaqJob:
        """A fresh job (attempt 0) for ``key``; ``ttl=-1`` makes finishing delete it."""
        return SaqJob(
            function=FUNCTION,
            key=key,
            queue=self,
            retries=self.max_attempts,
            timeout=self.job_timeout_s,
            ttl=-1,
            status=Status.QUEUED,
            queued=round(time.time() * 1000),
        )

    def _keys(self, job_id: str) -> list[str]:
        return [
            job_id,
            self._active,
            self._incomplete,
            self._queued,
            self._rerun,
            self._beat(job_id),
        ]

    def _beat(self, job_id: str) -> str:
        return self._beat_prefix + job_id

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[script](keys=keys, args=args)

    async def enqueue_order(self, key: str, delay: float) -> int:
        """0: already queued or scheduled; 1: enqueued; 2: running, re-run remembered."""
        job = self.new_job(key)
        keys = [self._incomplete, job.id, self._queued, self._active, self._rerun]
        return int(await self._run("enqueue", keys, [self.serialize(job), delay]))

    async def depth(self) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.llen(self._queued)
            pipe.zcount(self._incomplete, "(0", "+inf")
            queued, scheduled = await pipe.execute()
        return int(queued) + int(scheduled)

    async def check_server(self) -> None:
        if await self.version() < (6, 2):
            raise RuntimeError(
                f"the SAQ job queue needs Redis >= 6.2 (BLMOVE, LPOS), got {await self.version()}"
            )

    # --- SAQ hooks ------------------------------------------------------------------

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> SaqJob | None:  # noqa: ASYNC109 - SAQ's signature
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always called from the worker's task
        self.dequeuing.add(task)
        try:
            # Not redis.blmove(): it is typed for whole seconds; Redis takes a decimal timeout.
            execute: Callable[..., Awaitable[Any]] = self.redis.execute_command  # unannotated
            try:
                raw_id = await execute(
                    "BLMOVE", self._queued, self._active, "LEFT", "RIGHT", timeout
                )
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                # SAQ calls dequeue again the moment one fails: without this pause
                # every idle slot spun at full CPU for as long as Redis was down.
                # An idle dequeue takes ``timeout`` anyway, and so may this one.
                if not self.unreachable:
                    log.warning("queue.redis_unreachable", queue=self.name, error=repr(exc))
                self.unreachable = True
                await asyncio.sleep(timeout or _UNREACHABLE_PAUSE_S)
                return None
            if self.unreachable:
                self.unreachable = False
                log.info("queue.redis_reachable", queue=self.name)
            if raw_id is None:
                return None
            job_id = raw_id.decode()
            if self.stopping:  # popped while stopping: give it back, first in line
                await self._run("push_back", [self._active, self._queued], [job_id])
                return None
            job = await self._get_job_by_id(job_id)
            if job is None:  # its key is gone: nothing to run
                await self._run("release", self._keys(job_id), ["", "", "", "0"])
                return None
            self.held[job.key] = ""
            return job
        finally:
            self.dequeuing.discard(task)

    async def _update(self, job: SaqJob, status: Status | None = None, **kwargs: Any) -> None:
        # Only the worker's own "mark active" reaches here (process() after dequeue).
        job.status = status or job.status
        assert job.worker_id is not None  # noqa: S101 - set by the worker before the update
        self.held[job.key] = job.worker_id
        args = [job.worker_id, self.serialize(job), self.heartbeat_ms]
        if not await self._run("mark_active", [job.id, self._active, self._beat(job.id)], args):
            self.held.pop(job.key, None)
            raise JobLost(f"job {job.key} was swept from this worker before it started")

    async def _retry(self, job: SaqJob, error: str | None) -> None:
        worker_id = self.held.get(job.key) or job.worker_id or ""
        job.worker_id = None
        args = [worker_id, self.serialize(job), job.retry_delay]
        try:
            if not await self._run("retry", self._keys(job.id), args):
                log.warning("queue.stale_retry_ignored", order_id=job.key)
        finally:
            self.held.pop(job.key, None)

    async def _finish(
        self, job: SaqJob, status: Status, *, result: Any = None, error: str | None = None
    ) -> None:
        worker_id = self.held.get(job.key) or job.worker_id or ""
        args = [worker_id, self.serialize(self.new_job(job.key))]
        try:
            outcome = await self._run("finish", self._keys(job.id), args)
        finally:
            self.held.pop(job.key, None)
        if not outcome:
            log.warning("queue.stale_finish_ignored", order_id=job.key, status=status.value)
        elif outcome == 2:
            log.debug("queue.rerun_queued", order_id=job.key)

    async def write_worker_info(self, worker_id: str, info: WorkerInfo, ttl: int) -> None:
        # SAQ's version calls SETEX, deprecated in redis-py 8 (a warning per call).
        key = self.namespace(f"worker_info:{worker_id}")
        expires = round(time.time() * 1000) + ttl * 1000
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, json.dumps(info), ex=ttl)
            pipe.zremrangebyscore(self._stats, 0, round(time.time() * 1000))
            pipe.zadd(self._stats, {key: expires})
            pipe.expire(self._stats, ttl)
            await pipe.execute()

    async def schedule(self, lock: int = 1) -> list[str]:
        try:
            due = await self._run("schedule", [self._incomplete, self._queued], [])
        except (RedisConnectionError, RedisTimeoutError, OSError):
            if self.unreachable:  # said once by dequeue; not 20 tracebacks a second
                return []
            raise
        return [job_id.decode() for job_id in due]

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """Requeue jobs whose worker stopped heartbeating; ``lock`` is the sweep period."""
        lock_ms = max(1, round(lock * 1000))
        keys = [self._sweep, self._active, self._suspects]
        dead = await self._run("sweep", keys, [lock_ms, self._beat_prefix])
        swept = []
        for raw_id in dead:
            job_id = raw_id.decode()
            if await self._requeue_dead(job_id):
                swept.append(job_id)
        return swept

    # --- releasing held jobs ----------------------------------------------------------

    async def _requeue_dead(self, job_id: str) -> bool:
        raw = await self.redis.get(job_id)
        if raw is None:
            return bool(await self._run("release", self._keys(job_id), ["", "", "", "1"]))
        job = self.deserialize(raw)
        assert job is not None  # noqa: S101 - raw is not empty
        fresh = self.serialize(self.new_job(job.key))
        if job.status != Status.ACTIVE:  # popped, never started: the delivery did not count
            new = raw
        elif job.attempts >= job.retries:
            new = b""
            log.error(
                "queue.job_dropped_after_worker_died", order_id=job.key, attempts=job.attempts
            )
        else:  # the dead worker's delivery counts as an attempt
            job.status, job.worker_id, job.error = Status.QUEUED, None, "swept: no heartbeat"
            new = self.serialize(job)
        outcome = await self._run("release", self._keys(job_id), [raw, new, fresh, "1"])
        if outcome:
            log.warning("queue.job_swept", order_id=job.key, attempts=job.attempts)
        return bool(outcome)

    async def release_held(self, worker_id: str) -> None:
        """Return what ``worker_id`` still holds (stop interrupted it) with its attempt number."""
        for key in [key for key, holder in self.held.items() if holder in {"", worker_id}]:
            job_id = self.job_id(key)
            raw = await self.redis.get(job_id)
            self.held.pop(key, None)
            job = self.deserialize(raw) if raw else None
            if job is None:
                continue
            if job.status == Status.ACTIVE:
                if job.worker_id != worker_id:
                    continue
                job.attempts -= 1
                job.status, job.worker_id = Status.QUEUED, None
            fresh = self.serialize(self.new_job(key))
            args = [raw, self.serialize(job), fresh, "0"]
            if await self._run("release", self._keys(job_id), args):
                log.warning("queue.job_returned", order_id=key, attempt=job.attempts + 1)

    async def beat(self, worker_id: str) -> None:
        keys = [
            key
            for job_key, holder in self.held.items()
            if holder == worker_id
            for key in (self.job_id(job_key), self._beat(self.job_id(job_key)))
        ]
        if keys:
            await self._run("beat", keys, [worker_id, self.heartbeat_ms])
