"""Contract of ``ports.clock.Clock``: every clock passes ``ClockContract``.

A subclass provides the ``clock`` fixture. The tests bound time from below
only, so a loaded machine slows them without failing them.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from order_engine.adapters.clock import ReferenceClock, SystemClock
from order_engine.ports.clock import Clock

# asyncio may wake a timer up to the clock's resolution early (BaseEventLoop._run_once).
RESOLUTION = time.get_clock_info("monotonic").resolution


class ClockContract:
    """What every ``Clock`` adapter guarantees. Not collected itself (no ``Test`` prefix)."""

    @pytest.fixture
    def clock(self) -> Clock:
        raise NotImplementedError("a ClockContract subclass must provide the clock fixture")

    def test_now_is_timezone_aware_utc_wall_time(self, clock: Clock) -> None:
        before = datetime.now(UTC)
        now = clock.now()
        after = datetime.now(UTC)

        assert now.tzinfo is not None
        assert now.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= now <= after + timedelta(seconds=1)

    def test_monotonic_never_goes_backwards(self, clock: Clock) -> None:
        readings = [clock.monotonic() for _ in range(10_000)]

        assert all(isinstance(r, float) for r in readings)
        assert readings == sorted(readings)

    async def test_sleeping_zero_seconds_lets_other_tasks_run(self, clock: Clock) -> None:
        ran: list[str] = []

        async def other() -> None:
            ran.append("other")

        task = asyncio.create_task(other())
        await clock.sleep(0)
        ran.append("sleeper")
        await task

        assert ran == ["other", "sleeper"]

    @pytest.mark.parametrize("seconds", [0.01, 0.05])
    async def test_sleep_waits_at_least_the_given_duration(
        self, clock: Clock, seconds: float
    ) -> None:
        start, wall_start = clock.monotonic(), time.monotonic()
        await clock.sleep(seconds)

        assert clock.monotonic() - start >= seconds - RESOLUTION
        assert time.monotonic() - wall_start >= seconds - RESOLUTION

    async def test_a_sleep_can_be_cancelled(self, clock: Clock) -> None:
        sleeper = asyncio.create_task(clock.sleep(3600))
        await asyncio.sleep(0)
        sleeper.cancel()

        async with asyncio.timeout(5):
            with pytest.raises(asyncio.CancelledError):
                await sleeper


class TestSystemClock(ClockContract):
    @pytest.fixture
    def clock(self) -> Clock:
        return SystemClock()


async def _host_time() -> datetime:
    return datetime.now(UTC)


class TestReferenceClock(ClockContract):
    @pytest.fixture
    async def clock(self) -> Clock:
        clock = ReferenceClock(_host_time)
        assert await clock.sync()
        return clock


async def test_a_reference_clock_keeps_the_references_time_not_the_hosts() -> None:
    ahead = timedelta(minutes=5)

    async def reference() -> datetime:
        return datetime.now(UTC) + ahead

    clock = ReferenceClock(reference)
    assert await clock.sync()
    assert abs(clock.now() - (datetime.now(UTC) + ahead)) < timedelta(milliseconds=100)
    assert abs(clock.offset - ahead) < timedelta(milliseconds=100)


async def test_a_failed_sync_keeps_the_last_reading() -> None:
    readings = [datetime.now(UTC) + timedelta(hours=2)]

    async def reference() -> datetime:
        if not readings:
            raise ConnectionRefusedError("the database is down")
        return readings.pop()

    clock = ReferenceClock(reference)
    assert await clock.sync()
    assert not await clock.sync()
    assert clock.synced
    assert clock.now() - datetime.now(UTC) > timedelta(hours=1, minutes=59)


async def test_a_reference_clock_that_never_synced_keeps_trying_every_second() -> None:
    calls: list[datetime] = []
    answered = asyncio.Event()

    async def reference() -> datetime:
        calls.append(datetime.now(UTC))
        if len(calls) < 2:
            raise ConnectionRefusedError("the database is still starting")
        answered.set()
        return datetime.now(UTC) + timedelta(hours=1)

    clock = ReferenceClock(reference, resync_s=3600)
    assert not await clock.sync()
    assert clock.offset == timedelta(0)  # never synced: the host's time
    syncing = asyncio.create_task(clock.keep_synced())
    try:
        async with asyncio.timeout(5):
            await answered.wait()
        await asyncio.sleep(0)  # let sync() record the reading it was answered
    finally:
        syncing.cancel()
    assert clock.synced
    assert clock.now() - datetime.now(UTC) > timedelta(minutes=59)
