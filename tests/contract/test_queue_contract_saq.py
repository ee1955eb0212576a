"""``SaqJobQueue`` against the queue contract and the faults of distributed mode,
on a real Redis (``redis_url``), each test on its own queue name."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest
from redis.asyncio import Redis
from tests.contract.test_queue_contract import WAIT, JobQueueContract, Recorder

from order_engine.adapters.redis import SaqJobQueue, SaqQueueConfig
from order_engine.domain.errors import TransientError
from order_engine.ports.queue import Job

pytestmark = pytest.mark.redis

HEARTBEAT_S = 1.5
SWEEP_S = 0.5


def build(redis_url: str, name: str, **overrides: Any) -> SaqJobQueue:
    settings: dict[str, Any] = {
        "name": name,
        "max_attempts": JobQueueContract.MAX_ATTEMPTS,
        "backoff_base": JobQueueContract.BACKOFF_BASE,
        "backoff_max": JobQueueContract.BACKOFF_MAX,
        "seed": 1,
        "heartbeat_s": HEARTBEAT_S,
        "sweep_s": SWEEP_S,
        "dequeue_timeout_s": 0.2,
    }
    return SaqJobQueue.from_url(redis_url, SaqQueueConfig(**(settings | overrides)))


async def delete_queue_keys(redis_url: str, name: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        for pattern in (f"saq:{name}:*", f"saq:job:{name}:*"):
            keys = [key async for key in redis.scan_iter(match=pattern, count=500)]
            if keys:
                await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture
async def queue_name(redis_url: str, unique_prefix: str) -> AsyncIterator[str]:
    yield unique_prefix
    await delete_queue_keys(redis_url, unique_prefix)


class TestSaqJobQueue(JobQueueContract):
    # Delays are exact to the scheduler's 0.05 s poll, so the contract's timings hold.
    SETTLE: ClassVar[float] = 0.6

    @pytest.fixture
    async def queue(self, redis_url: str, queue_name: str) -> AsyncIterator[SaqJobQueue]:
        queue = build(redis_url, queue_name)
        yield queue
        await queue.close()

    async def test_a_job_returned_by_a_stopping_worker_is_taken_by_another_one(
        self, queue: SaqJobQueue, redis_url: str, queue_name: str
    ) -> None:
        order_id = uuid4()
        other = build(redis_url, queue_name)
        first = Recorder(lambda job: asyncio.Event().wait())
        second = Recorder()
        try:
            await queue.start(first, concurrency=1)
            await queue.enqueue(order_id)
            await first.until(lambda: len(first.deliveries) == 1, "the job running")
            await other.start(second, concurrency=1)

            await queue.stop(drain_timeout=0.05)

            await second.until(lambda: len(second.done) == 1, "the job run by the other worker")
            assert [job.attempt for job, _ in second.deliveries] == [1]
        finally:
            await other.close()

    async def test_a_finished_job_leaves_no_key_behind_so_another_node_can_enqueue_it_again(
        self, queue: SaqJobQueue, redis_url: str, queue_name: str
    ) -> None:
        order_id = uuid4()
        api_node = build(redis_url, queue_name)
        recorder = Recorder()
        redis = Redis.from_url(redis_url)
        try:
            await queue.start(recorder, concurrency=1)
            await api_node.enqueue(order_id)
            await recorder.until(lambda: len(recorder.done) == 1, "the first run done")
            await asyncio.sleep(0.1)  # the finish is written after the handler returns
            assert await redis.exists(f"saq:job:{queue_name}:{order_id}") == 0

            await api_node.enqueue(order_id)
            await recorder.until(lambda: len(recorder.done) == 2, "the second run done")
            assert recorder.attempts_of(order_id) == [1, 1]
        finally:
            await api_node.close()
            await redis.aclose()

    async def test_the_same_order_enqueued_by_two_api_nodes_at_once_runs_once(
        self, queue: SaqJobQueue, redis_url: str, queue_name: str
    ) -> None:
        orders = [uuid4() for _ in range(20)]
        node_a, node_b = build(redis_url, queue_name), build(redis_url, queue_name)
        recorder = Recorder()
        try:
            await asyncio.gather(
                *(node.enqueue(order_id) for order_id in orders for node in (node_a, node_b))
            )
            assert await queue.depth() == 20

            await queue.start(recorder, concurrency=4)
            await recorder.until(lambda: len(recorder.done) == 20, "every order run")
            await asyncio.sleep(self.SETTLE)

            assert sorted(recorder.delivered()) == sorted(orders)
        finally:
            await node_a.close()
            await node_b.close()

    async def test_retries_wait_their_backoff_in_redis_and_not_in_the_worker(
        self, redis_url: str, queue_name: str
    ) -> None:
        order_id = uuid4()
        slow = build(redis_url, queue_name, backoff_base=1.0, backoff_max=1.0)
        recorder = Recorder(_fail_first)
        try:
            await slow.start(recorder, concurrency=1)
            await slow.enqueue(order_id)
            await recorder.until(lambda: len(recorder.deliveries) == 1, "the first attempt")
            await asyncio.sleep(0.1)

            assert await slow.depth() == 1  # the retry is scheduled, not held by a worker
            await recorder.until(lambda: len(recorder.done) == 1, "the retry done")
            first, second = recorder.started_at(order_id)
            assert second - first >= 0.5  # equal jitter: at least half of the 1 s step
        finally:
            await slow.close()

    async def test_a_socket_timeout_not_above_the_dequeue_timeout_is_refused(
        self, redis_url: str, queue_name: str
    ) -> None:
        with pytest.raises(ValueError, match="socket_timeout_s must exceed dequeue_timeout_s"):
            build(redis_url, queue_name, dequeue_timeout_s=1.0, socket_timeout_s=1.0)

    async def test_an_idle_worker_keeps_its_connections_while_its_dequeues_block(
        self, redis_url: str, queue_name: str
    ) -> None:
        idle = build(redis_url, queue_name, dequeue_timeout_s=0.5, socket_timeout_s=0.8)
        admin = Redis.from_url(redis_url, decode_responses=True)
        recorder = Recorder()

        async def connection_ids() -> set[str]:
            clients = await admin.client_list()
            return {c["id"] for c in clients if c.get("name") == f"saq:{queue_name}"}

        try:
            await idle.start(recorder, concurrency=2)
            await asyncio.sleep(0.3)
            blocking = await connection_ids()
            await asyncio.sleep(2.0)  # several dequeues, each blocking for 0.5 s

            assert blocking <= await connection_ids()  # a socket timeout would have closed one
            await idle.enqueue(order_id := uuid4())
            await recorder.until(lambda: len(recorder.done) == 1, "the job done")
            assert recorder.delivered() == [order_id]
        finally:
            await idle.close()
            await admin.aclose()

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"max_attempts": 0}, "max_attempts must be >= 1"),
            ({"backoff_base": -0.1}, "base must be"),
            ({"heartbeat_s": 0.0}, "heartbeat_s must be"),
            ({"dequeue_timeout_s": 0.0}, "dequeue_timeout_s must be"),
        ],
    )
    def test_a_queue_with_no_attempts_or_a_meaningless_timing_is_refused(
        self, redis_url: str, queue_name: str, overrides: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            build(redis_url, queue_name, **overrides)

    @pytest.mark.parametrize("delay", [-1.0, float("nan"), float("inf")])
    async def test_a_delay_that_is_not_a_finite_non_negative_number_is_refused(
        self, queue: SaqJobQueue, delay: float
    ) -> None:
        with pytest.raises(ValueError, match="delay must be"):
            await queue.enqueue(uuid4(), delay=delay)

    async def test_a_closed_queue_refuses_jobs_and_closing_twice_is_harmless(
        self, queue: SaqJobQueue
    ) -> None:
        await queue.start(Recorder(), concurrency=1)
        await queue.close()
        await queue.close()

        with pytest.raises(RuntimeError, match="closed"):
            await queue.enqueue(uuid4())
        with pytest.raises(RuntimeError, match="closed"):
            await queue.start(Recorder(), concurrency=1)


async def _fail_first(job: Job) -> None:
    if job.attempt == 1:
        raise TransientError("venue down")


# A worker in its own process: it runs one job whose handler hangs, and says so on
# lines marked with '@'.
WORKER_SCRIPT = f"""
import asyncio, sys
from order_engine.adapters.redis import SaqJobQueue, SaqQueueConfig

async def main(url, name):
    queue = SaqJobQueue.from_url(url, SaqQueueConfig(
        name=name, max_attempts=3, backoff_base=0.02, backoff_max=0.25,
        heartbeat_s={HEARTBEAT_S}, sweep_s={SWEEP_S}, dequeue_timeout_s=0.2,
    ))
    async def hang(job):
        print(f"@running {{job.order_id}} attempt {{job.attempt}}", flush=True)
        await asyncio.Event().wait()
    await queue.start(hang, concurrency=1)
    print("@started", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def _read_line(stream: Any, within: float) -> str:
    """The worker's next ``@`` line; its log lines go to the same stdout."""

    def next_marked_line() -> str:
        for line in iter(stream.readline, b""):
            if line.startswith(b"@"):
                return str(line[1:].decode().strip())
        return "<the worker exited>"

    return await asyncio.wait_for(asyncio.to_thread(next_marked_line), within)


async def test_a_job_whose_worker_was_killed_runs_again_on_another_worker_within_seconds(
    redis_url: str, queue_name: str
) -> None:
    order_id = uuid4()
    api_node = build(redis_url, queue_name, max_attempts=3)
    survivor = build(redis_url, queue_name, max_attempts=3)
    recorder = Recorder()
    doomed = subprocess.Popen(  # noqa: ASYNC220, S603 - our own script; killed below
        [sys.executable, "-c", WORKER_SCRIPT, redis_url, queue_name],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert await _read_line(doomed.stdout, WAIT) == "started"
        await api_node.enqueue(order_id)
        assert await _read_line(doomed.stdout, WAIT) == f"running {order_id} attempt 1"

        doomed.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await survivor.start(recorder, concurrency=1)
        await recorder.until(lambda: len(recorder.done) == 1, "the job run again", WAIT)

        recovered_in = recorder.started_at(order_id)[0] - killed_at
        assert recovered_in <= HEARTBEAT_S + 2 * SWEEP_S + 1.5, recovered_in
        # The killed delivery counted as an attempt: the handler may be near its last one.
        assert recorder.attempts_of(order_id) == [2]
        assert await survivor.depth() == 0
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed.wait(timeout=WAIT)
        if doomed.stdout is not None:
            doomed.stdout.close()
        await survivor.close()
        await api_node.close()


async def test_a_job_whose_worker_died_on_its_last_attempt_is_dropped_and_can_be_enqueued_again(
    redis_url: str, queue_name: str
) -> None:
    order_id = uuid4()
    api_node = build(redis_url, queue_name, max_attempts=1)
    doomed = subprocess.Popen(  # noqa: ASYNC220, S603 - our own script; killed below
        [
            sys.executable,
            "-c",
            WORKER_SCRIPT.replace("max_attempts=3", "max_attempts=1"),
            redis_url,
            queue_name,
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    survivor = build(redis_url, queue_name, max_attempts=1)
    recorder = Recorder()
    try:
        assert await _read_line(doomed.stdout, WAIT) == "started"
        await api_node.enqueue(order_id)
        assert await _read_line(doomed.stdout, WAIT) == f"running {order_id} attempt 1"
        doomed.send_signal(signal.SIGKILL)
        await survivor.start(recorder, concurrency=1)

        deadline = time.monotonic() + WAIT
        while await _job_exists(redis_url, queue_name, order_id):
            assert time.monotonic() < deadline, "the dead job was never swept"
            await asyncio.sleep(0.1)
        assert recorder.deliveries == []

        await api_node.enqueue(order_id)  # what the reconciler does for an unfinished order
        await recorder.until(lambda: len(recorder.done) == 1, "the order run again")
        assert recorder.attempts_of(order_id) == [1]
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed.wait(timeout=WAIT)
        if doomed.stdout is not None:
            doomed.stdout.close()
        await survivor.close()
        await api_node.close()


async def _job_exists(redis_url: str, name: str, order_id: UUID) -> bool:
    redis = Redis.from_url(redis_url)
    try:
        return bool(await redis.exists(f"saq:job:{name}:{order_id}"))
    finally:
        await redis.aclose()
