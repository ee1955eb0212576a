"""GET /metrics and backpressure over real HTTP: what an operator watches, and the
503 that keeps the queue bounded."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from order_engine.adapters.metrics import PrometheusMetrics, serve_metrics
from order_engine.settings import Settings
from tests.e2e.accounts import new_key, post_order, problem_of
from tests.e2e.wire import EXECUTE, follow, order, slots_held, wait_for_status
from tests.support.harness import engine_settings, running_engine, serving

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(session: aiohttp.ClientSession, url: str, key: str | None = None) -> Samples:
    """Once keys are enforced, /metrics needs one too."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with session.get(url + "/metrics", headers=headers) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_orders_by_outcome_and_venue_with_stage_latencies(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        before = await scrape(session, url)
        status, _, good = await post_order(session, url, order("1"))
        assert status == 201
        stream = await follow(session, url, good["orderId"])
        # An order the chain refuses: more SOL than the wallet holds.
        status, _, bad = await post_order(session, url, order("60000000"))
        assert status == 201
        await wait_for_status(engine, bad["orderId"], "failed")
        after = await scrape(session, url)

    dex = stream.events[-1]["dex"]
    failed = await engine.repo.get(uuid.UUID(bad["orderId"]))
    assert failed is not None
    assert failed.error_code is not None
    assert value(after, "order_engine_orders_submitted_total") == 2
    assert value(after, "order_engine_orders_finished_total", status="confirmed", code="") == 1
    assert (
        value(after, "order_engine_orders_finished_total", status="failed", code=failed.error_code)
        == 1
    )
    assert value(after, "order_engine_orders_by_venue_total", venue=dex, status="confirmed") == 1
    for stage in ("queue_wait", "routing", "building", "submit_to_confirm", "end_to_end"):
        count = value(after, "order_engine_stage_seconds_count", stage=stage)
        assert count >= 1, stage
        assert value(after, "order_engine_stage_seconds_sum", stage=stage) >= 0
    assert value(after, "order_engine_events_published_total") >= 5 + 2
    assert value(after, "order_engine_events_delivered_total", stream="order") == 5
    assert value(before, "order_engine_events_published_total") == 0


async def test_metrics_show_queue_depth_and_open_websockets(tmp_path: Path) -> None:
    async with (
        running_engine(engine_settings(tmp_path), workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        for _ in range(3):
            assert (await post_order(session, url, order("1")))[0] == 201
        samples = await scrape(session, url)
        assert value(samples, "order_engine_queue_depth") == 3
        assert value(samples, "order_engine_websocket_connections") == 0
        async with session.ws_connect(url.replace("http", "ws") + "/api/orders/stream") as ws:
            await ws.receive_json()
            samples = await scrape(session, url)
        assert value(samples, "order_engine_websocket_connections") == 1


async def test_retries_are_counted_by_reason(tmp_path: Path) -> None:
    async with (
        running_engine(engine_settings(tmp_path, max_attempts=3)) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        assert engine.simulator is not None
        engine.simulator.faults.transient_failure_rate = 1.0  # every venue call fails
        status, _, body = await post_order(session, url, order("1"))
        assert status == 201
        await wait_for_status(engine, body["orderId"], "failed")
        samples = await scrape(session, url)
    retried = {
        dict(labels)["reason"]: v
        for (name, labels), v in samples.items()
        if name == "order_engine_retries_total"
    }
    assert sum(retried.values()) == 2, retried  # attempts 1 and 2 retried, 3 failed


async def test_over_the_queue_bound_new_orders_get_503_with_retry_after(
    api_settings: Settings,
) -> None:
    settings = api_settings.model_copy(update={"max_queue_depth": 3, "queue_depth_cache_s": 0.0})
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        accepted = [(await post_order(session, url, order("1"), key=key))[0] for _ in range(4)]
        assert accepted == [201] * 4  # depth 0..3 is within the bound
        async with session.post(
            url + EXECUTE, json=order("1"), headers={"Authorization": f"Bearer {key}"}
        ) as response:
            body = await problem_of(response, 503, "queue_full")
            assert response.headers["Retry-After"] == "1"
        assert "4 orders waiting" in body["message"]
        assert await engine.queue.depth() == 4  # nothing was created
        async with session.ws_connect(url.replace("http", "ws") + EXECUTE + f"?apiKey={key}") as ws:
            await ws.send_json(order("1"))
            error = await ws.receive_json()
            await ws.receive()
        assert (error["code"], ws.close_code) == ("queue_full", 1013)
        samples = await scrape(session, url, key)
        assert value(samples, "order_engine_requests_rejected_total", reason="backpressure") == 2


async def test_a_bound_of_zero_admits_however_deep_the_queue(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path, max_queue_depth=0, queue_depth_cache_s=0.0)
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        statuses = [(await post_order(session, url, order("1")))[0] for _ in range(5)]
        assert statuses == [201] * 5


async def test_a_worker_serves_its_own_metrics_on_a_port_of_its_own(tmp_path: Path) -> None:
    metrics = PrometheusMetrics()
    metrics.order_finished("confirmed", "", "raydium")

    async def depth() -> int:
        return 7

    runner, port = await serve_metrics(
        metrics, host="127.0.0.1", port=0, queue_depth=depth, ws_open=lambda: 0
    )
    try:
        async with aiohttp.ClientSession() as session:
            samples = await scrape(session, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
    assert value(samples, "order_engine_queue_depth") == 7
    assert value(samples, "order_engine_orders_by_venue_total", venue="raydium", status="confirmed")


async def test_each_engine_keeps_its_own_registry(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    async with (
        running_engine(engine_settings(tmp_path / "a"), workers=False) as first,
        running_engine(engine_settings(tmp_path / "b"), workers=False) as second,
        serving(first) as url,
        aiohttp.ClientSession() as session,
    ):
        await second.orders.submit(second.orders.validate("SOL", "USDC", "1"))
        samples = await scrape(session, url)
    assert value(samples, "order_engine_orders_submitted_total") == 0


async def test_slow_landings_show_in_the_submit_to_confirm_histogram(tmp_path: Path) -> None:
    async with (
        running_engine(engine_settings(tmp_path)) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
        slots_held(engine) as release,
    ):
        status, _, body = await post_order(session, url, order("1"))
        assert status == 201
        await wait_for_status(engine, body["orderId"], "submitted")
        await asyncio.sleep(0.3)
        await release()
        await wait_for_status(engine, body["orderId"], "confirmed")
        samples = await scrape(session, url)
    assert value(samples, "order_engine_stage_seconds_sum", stage="submit_to_confirm") >= 0.3


async def test_metrics_count_open_orders_by_type_and_time_each_trigger(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path, expiry_sweep_s=0.05)
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        for _ in range(2):
            status, _, waiting = await post_order(
                session, url, order("1", type="limit", limitPrice="1000000")
            )
            assert status == 201, waiting
        status, _, marketable = await post_order(
            session, url, order("1", type="limit", limitPrice="1")
        )
        assert status == 201, marketable
        await wait_for_status(engine, marketable["orderId"], "confirmed")
        await asyncio.sleep(0.2)  # a sweep sets the open-orders gauge
        samples = await scrape(session, url)
    assert value(samples, "order_engine_open_orders", type="limit") == 2
    assert value(samples, "order_engine_open_orders", type="market") == 0
    assert value(samples, "order_engine_trigger_latency_seconds_count", type="limit") == 1
