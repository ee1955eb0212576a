"""The load generator's bounds, against the in-process stub server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from time import perf_counter

import pytest
from aiohttp import web

from order_engine.bench.loadgen import (
    UNFINISHED,
    Live,
    LoadGenerator,
    LoadPlan,
    OrderRecord,
    session_for,
)
from order_engine.bench.schedule import Arrivals, OrderMix, Pair
from order_engine.bench.stats import check_stream
from order_engine.bench.stub import PATH, execute, make_app


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def plan(url: str, **overrides: object) -> LoadPlan:
    values: dict[str, object] = {
        "urls": [url],
        "orders": 50,
        "duration_s": 10.0,
        "drain_timeout_s": 5.0,
        "concurrency": 5,
        "rate": None,
        "arrivals": Arrivals.FIXED,
        "subscribe": True,
        "max_in_flight": 1000,
        "api_key": None,
        "seed": 1,
    }
    values.update(overrides)
    return LoadPlan(**values)  # type: ignore[arg-type]


async def run(load: LoadPlan) -> tuple[list[OrderRecord], Live, float]:
    live = Live()
    mix = OrderMix([Pair("SOL", "USDC")], ["1"], seed=1)
    async with session_for(load.max_in_flight) as session:
        result = await LoadGenerator(load, mix, session, live).run()
    return list(result.records), live, result.finished - result.started


async def test_a_closed_loop_submits_exactly_the_order_bound_with_complete_streams() -> None:
    async with serving(make_app()) as url:
        live = Live()
        mix = OrderMix([Pair("SOL", "USDC")], ["1"], seed=1)
        async with session_for(100) as session:
            result = await LoadGenerator(plan(url, orders=40), mix, session, live).run()
    assert len(result.records) == 40
    assert live.peak_in_flight <= 5
    assert live.terminal == 40
    assert result.cancelled_tasks == 0
    for record in result.records:
        assert record.http_status == 201
        assert check_stream(record.seqs, record.statuses).complete
        assert record.close_code == 1000
        assert record.terminal_at is not None
        assert record.terminal_at >= record.post_end >= record.post_start


async def test_the_duration_bound_stops_submitting_before_the_order_bound() -> None:
    async with serving(make_app()) as url:
        records, _live, elapsed = await run(plan(url, orders=10**9, duration_s=0.5))
    assert 0 < len(records) < 10**9
    assert elapsed < 5.0


async def test_an_open_loop_submits_at_its_rate_whatever_the_responses() -> None:
    async with serving(make_app()) as url:
        records, live, _ = await run(
            plan(url, orders=10**6, rate=100.0, concurrency=None, duration_s=1.0)
        )
    assert 95 <= len(records) <= 101
    assert live.terminal == len(records)
    dues = [r.due for r in records]
    assert all(b - a == pytest.approx(0.01, abs=1e-6) for a, b in itertools.pairwise(dues))


async def _silent_stream(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        return web.json_response({"orderId": "0" * 8}, status=201)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str('{"orderId": "x", "seq": 1, "status": "pending"}')
    await asyncio.sleep(3600)  # never finishes: only the drain bound ends this
    return ws


async def test_orders_still_open_at_the_drain_timeout_are_cancelled_and_reported() -> None:
    app = web.Application()
    app.router.add_route("*", PATH, _silent_stream)
    async with serving(app) as url:
        started = perf_counter()
        records, live, _ = await run(plan(url, orders=3, drain_timeout_s=0.3))
        assert perf_counter() - started < 3.0
    assert len(records) == 3
    assert live.terminal == 0
    for record in records:
        assert record.error == UNFINISHED
        assert not check_stream(record.seqs, record.statuses).complete


async def test_a_rejected_order_is_recorded_with_its_status_and_code() -> None:
    async def reject(_request: web.Request) -> web.Response:
        return web.json_response({"code": "invalid_amount", "message": "no"}, status=422)

    app = web.Application()
    app.router.add_post(PATH, reject)
    async with serving(app) as url:
        records, live, _ = await run(plan(url, orders=4))
    assert live.rejected == 4
    assert {r.error for r in records} == {"http 422 invalid_amount"}


async def test_an_api_key_goes_as_a_bearer_token_on_post_and_as_api_key_on_the_websocket() -> None:
    seen: dict[str, list[str | None]] = {"authorization": [], "apiKey": []}

    async def record(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            seen["authorization"].append(request.headers.get("Authorization"))
        else:
            seen["apiKey"].append(request.query.get("apiKey"))
        return await execute(request)

    app = web.Application()
    app.router.add_route("*", PATH, record)
    async with serving(app) as url:
        _, live, _ = await run(plan(url, orders=3, api_key="k&y/1"))
    assert live.terminal == 3
    assert seen == {"authorization": ["Bearer k&y/1"] * 3, "apiKey": ["k&y/1"] * 3}
