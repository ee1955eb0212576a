"""Retries: transient failures are retried with backoff up to MAX_ATTEMPTS,
permanent ones fail at once, and the final reason reaches the store, the
GET view and the stream. Faults come from the simulator's own knobs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from order_engine.api.app import create_app
from order_engine.bootstrap import Engine
from order_engine.domain.order import OrderEvent, OrderStatus
from tests.integration.helpers import (
    assert_one_gapless_terminal_history,
    executed_signatures,
    executor_of,
    next_event,
    sim_of,
    statuses,
    submit,
    submitted_signatures,
    wait_terminal,
)
from tests.support.harness import engine_settings, running_engine

BACKOFF_BASE_S = 0.1  # first retry waits 50-100 ms, the second 100-200 ms


@pytest.fixture
async def slow_backoff_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    settings = engine_settings(
        tmp_path, backoff_base_ms=int(BACKOFF_BASE_S * 1000), backoff_max_ms=2_000
    )
    async with running_engine(settings) as engine:
        yield engine


async def _attempt_times(engine: Engine, order_id: UUID) -> dict[int, float]:
    """When each attempt was claimed (the store's ``attempts`` counter), until terminal."""
    seen: dict[int, float] = {}
    async with asyncio.timeout(10):
        while True:
            order = await engine.repo.get(order_id)
            assert order is not None
            seen.setdefault(order.attempts, time.monotonic())
            if order.is_terminal:
                return seen
            await asyncio.sleep(0.001)


async def test_a_first_attempt_that_no_venue_can_quote_is_retried_after_a_backoff_and_confirms(
    slow_backoff_engine: Engine,
) -> None:
    engine = slow_backoff_engine
    sim = sim_of(engine)
    sim.faults.transient_failure_rate = 1.0  # every RPC call fails: no venue can quote
    order = await submit(engine, "SOL", "USDC", "1")
    async with asyncio.timeout(5):
        while True:  # the job runs, fails, and is scheduled for a retry
            if await engine.queue.depth() == 1:
                break
            await asyncio.sleep(0.001)
    sim.faults.transient_failure_rate = 0.0

    done = await wait_terminal(engine, order.id)
    events = await engine.repo.events(order.id)

    assert done.status is OrderStatus.CONFIRMED, statuses(events)
    assert statuses(events) == ["pending", "routing", "building", "submitted", "confirmed"]
    assert done.attempts == 2
    assert events[1].details["attempt"] == 2
    assert sim.chain.faults.injected["unavailable"] >= 1
    # The retry came after the backoff's floor (half the first step), not at once.
    waited = (events[1].at - events[0].at).total_seconds()
    assert waited >= BACKOFF_BASE_S / 2


async def test_scattered_rpc_and_venue_failures_are_absorbed_and_every_order_confirms(
    engine: Engine,
) -> None:
    """Failures short of every venue at once cost a skipped venue or a repeated poll,
    not the order: each of these orders still confirms with one execution."""
    sim = sim_of(engine)
    sim.faults.rate_limit_rate = 0.2
    sim.faults.send_timeout_rate = 0.2
    orders = [await submit(engine, "SOL", "USDC", str(n)) for n in (1, 2, 3, 4, 5, 6)]

    done = [await wait_terminal(engine, o.id) for o in orders]

    assert sum(sim.chain.faults.injected.values()) > 0
    for order in done:
        events = await engine.repo.events(order.id)
        assert order.status is OrderStatus.CONFIRMED, (statuses(events), order.error_message)
        assert_one_gapless_terminal_history(events)
    assert sorted(executed_signatures(sim).values()) == [1] * len(orders)


@pytest.mark.parametrize(
    ("pair", "amount", "code", "reason"),
    [
        (("BONK", "SOL"), "0.00001", "insufficient_liquidity", "insufficient liquidity"),
        (("JUP", "USDC"), "6000000000", "insufficient_funds", "InsufficientFunds"),
        (("SOL", "USDC"), "60000000", "insufficient_funds", "ResultWithNegativeLamports"),
    ],
    ids=["no-pool-can-fill", "more-tokens-than-the-wallet", "more-sol-than-the-wallet"],
)
async def test_a_permanent_failure_fails_at_once_after_one_attempt(
    tmp_path: Path, pair: tuple[str, str], amount: str, code: str, reason: str
) -> None:
    # A backoff this long would make any retry obvious: none may happen.
    settings = engine_settings(tmp_path, backoff_base_ms=30_000, backoff_max_ms=30_000)
    async with running_engine(settings) as engine:
        started = time.monotonic()
        order = await submit(engine, *pair, amount)
        done = await wait_terminal(engine, order.id)
        elapsed = time.monotonic() - started
        events = await engine.repo.events(order.id)

        assert elapsed < 15
        assert done.status is OrderStatus.FAILED
        assert done.attempts == 1
        assert done.error_code == code
        assert done.error_message is not None
        assert reason in done.error_message
        failed = events[-1].details
        assert (failed["code"], failed["attempts"]) == (code, 1)
        assert reason in failed["error"]
        assert await engine.queue.depth() == 0
        # Nothing was signed twice: at most the one transaction that landed and failed.
        signatures = submitted_signatures(events)
        assert len(signatures) <= 1
        assert executed_signatures(sim_of(engine)) == dict.fromkeys(signatures, 1)


async def _get_view(engine: Engine, order_id: UUID) -> dict[str, Any]:
    app = create_app(engine.settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    # A loopback name: with no key the API serves only loopback hosts.
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get(f"/api/orders/{order_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


@pytest.mark.parametrize(
    ("knob", "last_error"),
    [
        ("transient_failure_rate", "RPC node unavailable"),
        ("rate_limit_rate", "429 Too Many Requests"),
    ],
)
async def test_when_every_attempt_fails_transiently_the_order_fails_with_the_last_error_everywhere(
    slow_backoff_engine: Engine, knob: str, last_error: str
) -> None:
    engine = slow_backoff_engine
    max_attempts = engine.settings.max_attempts
    setattr(sim_of(engine).faults, knob, 1.0)
    subscription = await engine.bus.subscribe()
    order = await submit(engine, "SOL", "USDC", "1")
    attempts_at = await _attempt_times(engine, order.id)

    streamed: list[OrderEvent] = []
    async with asyncio.timeout(5):
        async for event in subscription:
            if event.order_id == order.id:
                streamed.append(event)
                if event.status is OrderStatus.FAILED:
                    break
    await subscription.close()
    done = await engine.repo.get(order.id)
    events = await engine.repo.events(order.id)

    # Every attempt was spent, each after a backoff that doubles.
    assert done is not None
    assert done.status is OrderStatus.FAILED
    assert done.attempts == max_attempts == 3
    assert sorted(attempts_at)[-3:] == [1, 2, 3]
    first_wait = attempts_at[2] - attempts_at[1]
    second_wait = attempts_at[3] - attempts_at[2]
    assert first_wait >= BACKOFF_BASE_S / 2 * 0.8
    assert second_wait >= BACKOFF_BASE_S * 0.8
    assert await engine.queue.depth() == 0

    # The reason, in the store ...
    assert done.error_code == "venue_unavailable"
    assert done.error_message is not None
    assert done.error_message.startswith(f"gave up after {max_attempts} attempts; last error:")
    assert last_error in done.error_message
    assert statuses(events) == ["pending", "failed"]
    # ... on the stream ...
    assert [e.seq for e in streamed] == [1, 2]
    failed = streamed[-1].details
    assert failed == events[-1].details
    assert failed["code"] == "venue_unavailable"
    assert failed["attempts"] == max_attempts
    assert failed["error"] == done.error_message
    # ... and in what GET /api/orders/{id} shows.
    view = await _get_view(engine, order.id)
    assert view["status"] == "failed"
    assert view["attempts"] == max_attempts
    assert view["error"] == {"code": "venue_unavailable", "message": done.error_message}
    assert view["events"][-1]["code"] == "venue_unavailable"


async def test_an_order_whose_transaction_may_still_land_is_not_failed_when_attempts_run_out(
    engine: Engine,
) -> None:
    """Every RPC call fails from the moment the transaction is persisted: no attempt
    can tell whether it landed. When the attempts run out the order stays
    ``submitted`` (the reconciler's business), and is settled, not re-signed,
    once the chain answers again."""
    sim = sim_of(engine)
    live = await engine.bus.subscribe()
    order = await submit(engine, "SOL", "USDC", "2")
    submitted = await next_event(live, order.id, OrderStatus.SUBMITTED)
    sim.faults.transient_failure_rate = 1.0  # before the first broadcast leaves
    await live.close()

    failures = sim.chain.faults.injected
    async with asyncio.timeout(10):
        while True:  # three deliveries, each giving up after its status polls all fail
            current = await engine.repo.get(order.id)
            assert current is not None
            seen = failures.get("unavailable", 0)
            await asyncio.sleep(0.05)
            quiet = failures.get("unavailable", 0) == seen  # no delivery is polling any more
            if current.attempts == 3 and quiet and await engine.queue.depth() == 0:
                break
    stuck = await engine.repo.get(order.id)
    assert stuck is not None
    assert stuck.status is OrderStatus.SUBMITTED
    assert stuck.error_code is None
    assert await engine.queue.depth() == 0
    assert sim.chain.faults.injected["unavailable"] >= 3 * executor_of(engine).cfg.max_poll_failures

    sim.faults.transient_failure_rate = 0.0
    assert await engine.reconciler.run_once(stale_after_s=0) == 1
    done = await wait_terminal(engine, order.id)

    events = await engine.repo.events(order.id)
    assert statuses(events) == ["pending", "routing", "building", "submitted", "confirmed"]
    assert events[-1].details["txHash"] == submitted.details["txHash"]
    assert executed_signatures(sim) == {submitted.details["txHash"]: 1}
    assert done.attempts == 4
