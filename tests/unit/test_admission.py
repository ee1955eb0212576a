"""Admission: refuse up front what the workers could not start within the wait bound."""

from __future__ import annotations

from datetime import UTC, datetime

from order_engine.app.admission import Backpressure


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class Queue:
    """The depth a queue reports; the test plays the workers by lowering it."""

    def __init__(self) -> None:
        self.waiting = 0

    async def depth(self) -> int:
        return self.waiting


def admission(queue: Queue, clock: Clock, **bounds: float) -> Backpressure:
    return Backpressure(queue, cache_s=0.1, clock=clock, **bounds)  # type: ignore[arg-type]


async def offer(gate: Backpressure, queue: Queue, count: int) -> int:
    """Offer ``count`` orders; admitted ones join the queue. Returns how many were admitted."""
    admitted = 0
    for _ in range(count):
        if await gate.overloaded() is None:
            admitted += 1
            queue.waiting += 1
    return admitted


async def test_under_overload_the_queue_holds_about_max_wait_of_the_workers_rate() -> None:
    queue, clock = Queue(), Clock()
    gate = admission(queue, clock, max_depth=10_000, max_wait_s=0.5)
    for _ in range(50):  # 5 s: 300 orders/s offered, the workers take 100/s
        await offer(gate, queue, 30)
        clock.t += 0.1
        queue.waiting = max(0, queue.waiting - 10)
    assert gate.take_rate is not None
    assert 80 < gate.take_rate < 120
    assert queue.waiting <= 100 * 0.5 * 1.5  # about half a second of work waits, not 1,000
    assert await gate.overloaded() is not None


async def test_a_burst_into_an_idle_engine_is_admitted_while_the_rate_is_unknown() -> None:
    queue, clock = Queue(), Clock()
    gate = admission(queue, clock, max_depth=10_000, max_wait_s=0.5)
    assert await offer(gate, queue, 500) == 500
    assert gate.take_rate is None


async def test_the_depth_bound_refuses_whatever_the_rate() -> None:
    queue, clock = Queue(), Clock()
    gate = admission(queue, clock, max_depth=5)
    assert await offer(gate, queue, 10) == 10  # one reading serves the whole window
    clock.t += 0.2
    assert await gate.overloaded() == 10


async def test_no_bounds_admit_everything() -> None:
    queue, clock = Queue(), Clock()
    gate = admission(queue, clock, max_depth=0, max_wait_s=0)
    queue.waiting = 10**6
    assert await gate.overloaded() is None
