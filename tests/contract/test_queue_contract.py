"""Contract of ``ports.queue.JobQueue``: every adapter passes ``JobQueueContract``.

A new adapter subclasses ``JobQueueContract`` and overrides the ``queue``
fixture (see its docstring). Timings come from the class attributes, so an
adapter with coarser timers (e.g. one that schedules in whole seconds) may
raise them in its subclass. Tests wait on conditions with generous upper
bounds and assert only lower bounds on time, so a loaded machine slows them
down without failing them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest

from order_engine.adapters.memory import InMemoryJobQueue
from order_engine.domain.errors import TransientError
from order_engine.ports.queue import Job, JobQueue

WAIT = 10.0  # upper bound for anything that should happen "soon", even on a loaded CI box

Behaviour = Callable[[Job], Awaitable[Any]]


class Recorder:
    """A handler that records deliveries and lets a test wait for a condition."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self._behaviour = behaviour
        self.deliveries: list[tuple[Job, float]] = []  # (job, monotonic start time)
        self.done: list[Job] = []
        self.cancelled: list[Job] = []
        self.in_flight: Counter[UUID] = Counter()
        self.max_in_flight = 0
        self.max_in_flight_per_order = 0
        self._changed = asyncio.Event()

    async def __call__(self, job: Job) -> None:
        self.deliveries.append((job, time.monotonic()))
        self.in_flight[job.order_id] += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight.total())
        self.max_in_flight_per_order = max(
            self.max_in_flight_per_order, self.in_flight[job.order_id]
        )
        self._changed.set()
        try:
            if self._behaviour is not None:
                await self._behaviour(job)
        except asyncio.CancelledError:
            self.cancelled.append(job)
            raise
        else:
            self.done.append(job)
        finally:
            self.in_flight[job.order_id] -= 1
            self._changed.set()

    def attempts_of(self, order_id: UUID) -> list[int]:
        return [job.attempt for job, _ in self.deliveries if job.order_id == order_id]

    def started_at(self, order_id: UUID) -> list[float]:
        return [at for job, at in self.deliveries if job.order_id == order_id]

    def delivered(self) -> list[UUID]:
        return [job.order_id for job, _ in self.deliveries]

    async def until(self, predicate: Callable[[], bool], what: str, within: float = WAIT) -> None:
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pytest.fail(
                f"expected {what} within {within}s; got deliveries "
                f"{[(str(j.order_id)[:8], j.attempt) for j, _ in self.deliveries]}, "
                f"done {len(self.done)}, cancelled {len(self.cancelled)}"
            )


def fail_until(last_failing_attempt: int) -> Behaviour:
    async def behaviour(job: Job) -> None:
        if job.attempt <= last_failing_attempt:
            raise TransientError(f"venue down on attempt {job.attempt}")

    return behaviour


async def enqueue_all(queue: JobQueue, order_ids: Iterable[UUID]) -> None:
    for order_id in order_ids:
        await queue.enqueue(order_id)


class JobQueueContract:
    """What every ``JobQueue`` adapter guarantees. Not collected itself (no ``Test`` prefix)."""

    MAX_ATTEMPTS: ClassVar[int] = 4  # four, so three retry delays can show growth
    BACKOFF_BASE: ClassVar[float] = 0.02
    BACKOFF_MAX: ClassVar[float] = 0.25
    # Long enough for a wrong extra delivery (at most BACKOFF_MAX away) to show up.
    SETTLE: ClassVar[float] = 0.6

    @pytest.fixture
    async def queue(self) -> JobQueue:
        """Override: yield an empty, *unstarted* queue built with ``MAX_ATTEMPTS``,
        ``BACKOFF_BASE`` and ``BACKOFF_MAX``, isolated from every other test
        (e.g. by a unique key prefix), and ``close()`` it afterwards. The
        contract starts and stops it; ``stop()`` then ``start()`` on the same
        object must resume consuming the same jobs."""
        raise NotImplementedError("a JobQueueContract subclass must provide the queue fixture")

    @pytest.fixture
    async def _no_task_outlives_the_queue(self) -> AsyncIterator[None]:
        # Set up before ``queue``, so this runs after the queue was closed.
        before = asyncio.all_tasks()
        yield
        leaked = [
            task
            for task in asyncio.all_tasks() - before
            if task is not asyncio.current_task() and not task.done()
        ]
        assert not leaked, f"tasks left running after stop() and close(): {leaked}"

    @pytest.fixture(autouse=True)
    async def _stopped_after_each_test(
        self, _no_task_outlives_the_queue: None, queue: JobQueue
    ) -> AsyncIterator[None]:
        yield
        await queue.stop(drain_timeout=0.0)

    async def test_a_queue_reports_itself_healthy_or_has_nothing_to_report(
        self, queue: JobQueue
    ) -> None:
        assert await queue.health() in ("ok", None)

    async def test_every_enqueued_job_runs_once_when_the_handler_succeeds(
        self, queue: JobQueue
    ) -> None:
        before_start, after_start = [uuid4() for _ in range(6)], [uuid4() for _ in range(6)]
        recorder = Recorder()

        await enqueue_all(queue, before_start)
        await queue.start(recorder, concurrency=3)
        await enqueue_all(queue, after_start)
        await recorder.until(lambda: len(recorder.done) == 12, "12 jobs done")
        await asyncio.sleep(self.SETTLE)

        assert sorted(recorder.delivered()) == sorted(before_start + after_start)
        assert {(job.attempt, job.max_attempts) for job in recorder.done} == {
            (1, self.MAX_ATTEMPTS)
        }
        assert await queue.depth() == 0

    async def test_enqueueing_an_order_that_is_already_queued_runs_it_once(
        self, queue: JobQueue
    ) -> None:
        twice, once = uuid4(), uuid4()
        recorder = Recorder()

        await enqueue_all(queue, [twice, once, twice, twice])
        assert await queue.depth() == 2
        await queue.start(recorder, concurrency=2)
        await recorder.until(lambda: len(recorder.done) == 2, "2 jobs done")
        await asyncio.sleep(self.SETTLE)

        assert sorted(recorder.delivered()) == sorted([twice, once])

    async def test_enqueueing_an_order_that_is_scheduled_neither_runs_it_early_nor_twice(
        self, queue: JobQueue
    ) -> None:
        order_id, delay = uuid4(), 0.3
        recorder = Recorder()
        await queue.start(recorder, concurrency=2)

        enqueued_at = time.monotonic()
        await queue.enqueue(order_id, delay=delay)
        await queue.enqueue(order_id)
        await recorder.until(lambda: len(recorder.done) == 1, "the scheduled job done")
        await asyncio.sleep(self.SETTLE)

        assert recorder.delivered() == [order_id]
        assert recorder.started_at(order_id)[0] - enqueued_at >= delay

    async def test_no_more_than_concurrency_handlers_run_at_once(self, queue: JobQueue) -> None:
        gate = asyncio.Event()

        async def held_at_the_gate(job: Job) -> None:
            await gate.wait()
            await asyncio.sleep(0.005)  # keep released handlers overlapping

        recorder = Recorder(held_at_the_gate)
        await enqueue_all(queue, [uuid4() for _ in range(30)])
        await queue.start(recorder, concurrency=4)

        await recorder.until(lambda: recorder.in_flight.total() == 4, "4 handlers running")
        await asyncio.sleep(0.05)  # room for a fifth to start, if the limit were broken
        assert recorder.in_flight.total() == 4
        assert await queue.depth() == 26

        gate.set()
        await recorder.until(lambda: len(recorder.done) == 30, "30 jobs done")
        assert recorder.max_in_flight == 4

    async def test_a_failing_handler_is_retried_with_growing_delays_and_sees_attempts_1_to_max(
        self, queue: JobQueue
    ) -> None:
        order_id = uuid4()
        recorder = Recorder(fail_until(self.MAX_ATTEMPTS - 1))
        await queue.start(recorder, concurrency=2)

        await queue.enqueue(order_id)
        await recorder.until(lambda: len(recorder.done) == 1, "success on the last attempt")

        assert recorder.attempts_of(order_id) == list(range(1, self.MAX_ATTEMPTS + 1))
        assert [job.is_last_attempt for job, _ in recorder.deliveries] == [
            *([False] * (self.MAX_ATTEMPTS - 1)),
            True,
        ]
        starts = recorder.started_at(order_id)
        gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
        # Equal jitter (adapters.memory.backoff): the wait after attempt n is at least
        # half of min(cap, base * 2**(n-1)), so these floors double from one retry to the next.
        floors = [
            min(self.BACKOFF_MAX, self.BACKOFF_BASE * 2 ** (n - 1)) / 2
            for n in range(1, self.MAX_ATTEMPTS)
        ]
        assert all(gap >= floor for gap, floor in zip(gaps, floors, strict=True)), (gaps, floors)

    async def test_a_job_that_keeps_failing_is_delivered_exactly_max_attempts_times(
        self, queue: JobQueue
    ) -> None:
        doomed, healthy = uuid4(), uuid4()

        async def behaviour(job: Job) -> None:
            if job.order_id == doomed:
                raise RuntimeError("a bug that no retry can fix")

        recorder = Recorder(behaviour)
        await queue.start(recorder, concurrency=2)

        await queue.enqueue(doomed)
        await recorder.until(
            lambda: len(recorder.attempts_of(doomed)) == self.MAX_ATTEMPTS, "every attempt made"
        )
        await asyncio.sleep(self.SETTLE)

        assert recorder.attempts_of(doomed) == list(range(1, self.MAX_ATTEMPTS + 1))
        assert await queue.depth() == 0
        await queue.enqueue(healthy)  # the worker is still serving after dropping a job
        await recorder.until(lambda: len(recorder.done) == 1, "the next order done")

    async def test_an_order_can_be_enqueued_again_once_its_job_has_finished(
        self, queue: JobQueue
    ) -> None:
        succeeded, dropped = uuid4(), uuid4()

        async def behaviour(job: Job) -> None:
            if job.order_id == dropped and len(recorder.attempts_of(dropped)) <= self.MAX_ATTEMPTS:
                raise TransientError("down for the whole first job")

        recorder = Recorder(behaviour)
        await queue.start(recorder, concurrency=2)
        await enqueue_all(queue, [succeeded, dropped])
        await recorder.until(
            lambda: len(recorder.deliveries) == self.MAX_ATTEMPTS + 1, "both first jobs over"
        )
        await asyncio.sleep(self.SETTLE)  # let the dropped job's last failure be processed

        await enqueue_all(queue, [succeeded, dropped])
        await recorder.until(lambda: len(recorder.done) == 3, "both orders run again")

        assert recorder.attempts_of(succeeded) == [1, 1]
        assert recorder.attempts_of(dropped) == [*range(1, self.MAX_ATTEMPTS + 1), 1]

    async def test_a_delayed_job_does_not_run_before_its_delay(self, queue: JobQueue) -> None:
        late, early, delay = uuid4(), uuid4(), 0.3
        recorder = Recorder()
        await queue.start(recorder, concurrency=2)

        enqueued_at = time.monotonic()
        await queue.enqueue(late, delay=delay)
        await queue.enqueue(early)
        await recorder.until(lambda: len(recorder.done) == 2, "both jobs done")

        assert recorder.delivered() == [early, late]
        assert recorder.started_at(late)[0] - enqueued_at >= delay

    async def test_depth_counts_queued_and_scheduled_jobs_but_not_running_ones(
        self, queue: JobQueue
    ) -> None:
        gate = asyncio.Event()
        recorder = Recorder(lambda job: gate.wait())
        assert await queue.depth() == 0

        await enqueue_all(queue, [uuid4() for _ in range(3)])
        await queue.enqueue(uuid4(), delay=60.0)
        assert await queue.depth() == 4

        await queue.start(recorder, concurrency=1)
        await recorder.until(lambda: recorder.in_flight.total() == 1, "one job running")
        assert await queue.depth() == 3

        gate.set()
        await recorder.until(lambda: len(recorder.done) == 3, "the undelayed jobs done")
        assert await queue.depth() == 1

    async def test_stop_lets_a_running_job_finish_and_starts_no_other(
        self, queue: JobQueue
    ) -> None:
        async def short_work(job: Job) -> None:
            await asyncio.sleep(0.1)

        recorder = Recorder(short_work)
        await enqueue_all(queue, [uuid4(), uuid4()])
        await queue.start(recorder, concurrency=1)
        await recorder.until(lambda: len(recorder.deliveries) == 1, "one job running")

        await queue.stop(drain_timeout=WAIT)

        assert len(recorder.done) == 1
        assert recorder.cancelled == []
        await queue.enqueue(uuid4())
        await asyncio.sleep(self.SETTLE)
        assert len(recorder.deliveries) == 1
        assert await queue.depth() == 2

    async def test_stop_cancels_a_job_that_outlives_the_drain_timeout_and_a_restart_reruns_it(
        self, queue: JobQueue
    ) -> None:
        order_id = uuid4()

        async def hangs_the_first_time(job: Job) -> None:
            if len(recorder.deliveries) == 1:
                await asyncio.Event().wait()

        recorder = Recorder(hangs_the_first_time)
        await queue.enqueue(order_id)
        await queue.start(recorder, concurrency=2)
        await recorder.until(lambda: len(recorder.deliveries) == 1, "the job running")

        await queue.stop(drain_timeout=0.05)

        assert [job.order_id for job in recorder.cancelled] == [order_id]
        assert recorder.in_flight.total() == 0
        assert await queue.depth() == 1

        await queue.start(recorder, concurrency=2)
        await recorder.until(lambda: len(recorder.done) == 1, "the job run again")
        first, second = recorder.attempts_of(order_id)
        assert first <= second <= self.MAX_ATTEMPTS

    async def test_an_order_enqueued_while_running_runs_once_more_after_it_finishes(
        self, queue: JobQueue
    ) -> None:
        order_id, gate = uuid4(), asyncio.Event()
        recorder = Recorder(lambda job: gate.wait())
        await queue.start(recorder, concurrency=4)
        await queue.enqueue(order_id)
        await recorder.until(lambda: len(recorder.deliveries) == 1, "the job running")

        for _ in range(3):
            await queue.enqueue(order_id)
        assert await queue.depth() == 0  # remembered as a re-run, not queued
        gate.set()
        await recorder.until(lambda: len(recorder.done) == 2, "the run and its one re-run")
        await asyncio.sleep(self.SETTLE)

        assert recorder.attempts_of(order_id) == [1, 1]
        assert recorder.max_in_flight_per_order == 1

    async def test_a_retry_already_scheduled_stands_for_the_rerun_asked_while_running(
        self, queue: JobQueue
    ) -> None:
        order_id = uuid4()

        async def fails_once_after_a_reenqueue(job: Job) -> None:
            if job.attempt == 1:
                await queue.enqueue(job.order_id)
                raise TransientError("venue down")

        recorder = Recorder(fails_once_after_a_reenqueue)
        await queue.start(recorder, concurrency=2)
        await queue.enqueue(order_id)
        await recorder.until(lambda: len(recorder.done) == 1, "the retry done")
        await asyncio.sleep(self.SETTLE)

        assert recorder.attempts_of(order_id) == [1, 2]

    async def test_a_job_cancelled_by_stop_returns_to_the_head_with_its_attempt_number(
        self, queue: JobQueue
    ) -> None:
        hanging, waiting = uuid4(), uuid4()

        async def hangs_the_first_time(job: Job) -> None:
            if len(recorder.deliveries) == 1:
                await asyncio.Event().wait()

        recorder = Recorder(hangs_the_first_time)
        await enqueue_all(queue, [hanging, waiting])
        await queue.start(recorder, concurrency=1)
        await recorder.until(lambda: len(recorder.deliveries) == 1, "the first job running")
        await queue.stop(drain_timeout=0.02)

        await queue.start(recorder, concurrency=1)
        await recorder.until(lambda: len(recorder.done) == 2, "both jobs done")

        assert recorder.delivered() == [hanging, hanging, waiting]
        assert recorder.attempts_of(hanging) == [1, 1]


class TestInMemoryJobQueue(JobQueueContract):
    @pytest.fixture
    async def queue(self) -> AsyncIterator[InMemoryJobQueue]:
        queue = InMemoryJobQueue(self.MAX_ATTEMPTS, self.BACKOFF_BASE, self.BACKOFF_MAX, seed=1)
        yield queue
        await queue.close()

    async def test_close_without_stop_cancels_running_jobs_and_refuses_new_ones(
        self, queue: InMemoryJobQueue
    ) -> None:
        recorder = Recorder(lambda job: asyncio.Event().wait())
        await queue.start(recorder, concurrency=2)
        await enqueue_all(queue, [uuid4(), uuid4()])
        await queue.enqueue(uuid4(), delay=0.05)
        await recorder.until(lambda: recorder.in_flight.total() == 2, "two jobs running")

        await queue.close()
        await queue.close()

        assert len(recorder.cancelled) == 2
        assert await queue.depth() == 0
        with pytest.raises(RuntimeError, match="closed"):
            await queue.enqueue(uuid4())
        await asyncio.sleep(0.1)  # past the delayed job's timer, which close cancelled
        assert len(recorder.deliveries) == 2

    @pytest.mark.parametrize("delay", [-1.0, float("nan"), float("inf")])
    async def test_a_delay_that_is_not_a_finite_non_negative_number_is_refused(
        self, queue: InMemoryJobQueue, delay: float
    ) -> None:
        with pytest.raises(ValueError, match="delay must be"):
            await queue.enqueue(uuid4(), delay=delay)

    async def test_starting_twice_or_with_no_concurrency_is_refused(
        self, queue: InMemoryJobQueue
    ) -> None:
        with pytest.raises(ValueError, match="concurrency must be >= 1, got 0"):
            await queue.start(Recorder(), concurrency=0)
        await queue.start(Recorder(), concurrency=1)
        with pytest.raises(RuntimeError, match="already started"):
            await queue.start(Recorder(), concurrency=1)

    @pytest.mark.parametrize(
        ("max_attempts", "base", "cap", "message"),
        [(0, 0.1, 1.0, "max_attempts must be >= 1"), (3, -0.1, 1.0, "base must be")],
    )
    def test_a_queue_with_no_attempts_or_a_negative_backoff_is_refused(
        self, max_attempts: int, base: float, cap: float, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            InMemoryJobQueue(max_attempts, base, cap)
