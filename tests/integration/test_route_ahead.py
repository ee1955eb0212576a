"""A delivery quotes its order while the lease is being taken (``_route_ahead``), and
signs that quote only when it is still the order's and still fresh."""

from __future__ import annotations

from typing import Any

from order_engine.adapters.clock import SystemClock
from order_engine.app.router import RouteDecision, Router
from order_engine.bootstrap import Engine
from order_engine.domain.order import OrderStatus
from tests.integration.helpers import deliver_until_done, submit, worker


class CountingRouter:
    """The engine's router, counting its decisions."""

    def __init__(self, inner: Router) -> None:
        self.inner = inner
        self.venues = inner.venues
        self.decisions = 0

    async def decide(self, *args: Any, **kwargs: Any) -> RouteDecision:
        self.decisions += 1
        return await self.inner.decide(*args, **kwargs)


class SlowMonotonic(SystemClock):
    """A clock on which a second passes between any two monotonic readings."""

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        self.t += 1.0
        return self.t


def executor_with(engine: Engine, router: CountingRouter, **kwargs: Any) -> Any:
    executor = worker(engine, "worker-ahead", **kwargs)
    executor.router = router  # type: ignore[assignment]
    return executor


async def test_a_fresh_order_is_quoted_once_and_that_quote_is_what_gets_signed(
    idle_engine: Engine,
) -> None:
    order_id = (await submit(idle_engine, "SOL", "USDC", "1")).id
    router = CountingRouter(idle_engine.router)
    await deliver_until_done(executor_with(idle_engine, router), idle_engine, order_id)
    done = await idle_engine.repo.get(order_id)
    assert done is not None
    assert done.status is OrderStatus.CONFIRMED
    assert router.decisions == 1


async def test_a_quote_older_than_the_bound_when_the_lease_comes_is_taken_again(
    idle_engine: Engine,
) -> None:
    order_id = (await submit(idle_engine, "SOL", "USDC", "1")).id
    router = CountingRouter(idle_engine.router)
    executor = executor_with(idle_engine, router, clock=SlowMonotonic())
    await deliver_until_done(executor, idle_engine, order_id)
    done = await idle_engine.repo.get(order_id)
    assert done is not None
    assert done.status is OrderStatus.CONFIRMED
    assert router.decisions == 2  # the early quote was a second old: routed again


async def test_an_order_with_a_transaction_in_flight_is_not_quoted_ahead(
    idle_engine: Engine,
) -> None:
    order_id = (await submit(idle_engine, "SOL", "USDC", "1")).id
    await deliver_until_done(worker(idle_engine, "first"), idle_engine, order_id)
    router = CountingRouter(idle_engine.router)
    # A redelivery of a finished order: nothing to route, nothing quoted.
    await deliver_until_done(executor_with(idle_engine, router), idle_engine, order_id)
    assert router.decisions == 0
