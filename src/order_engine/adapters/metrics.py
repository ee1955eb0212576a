"""The metrics port on prometheus_client, one registry per process (per ``Engine``).

**Several processes: per-process endpoints.** Every process exposes its own
counters (API processes on ``GET /metrics`` of their HTTP port, workers on
``METRICS_PORT``), and Prometheus scrapes each one as its own target; queries
aggregate across targets (``sum by (status) (rate(...))``). This was chosen
over prometheus_client's multiprocess mode, which shares one directory of
mmap files between processes on one host: it does not work across hosts or
containers, needs the directory wiped at every start and dead processes'
files marked, and supports only some gauge modes. Nothing here is shared, so
nothing can be double counted or lost when a process restarts (counters reset,
which ``rate()`` handles). Gauges that describe shared state (queue depth) are
the same in every process: aggregate them with ``max``, not ``sum``.

A registry per engine rather than the global one also lets several engines
live in one process (the test suite does) without clashing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from order_engine.ports.metrics import ExportedMetrics, Stage

if TYPE_CHECKING:
    from order_engine.ports.metrics import Metrics

CONTENT_TYPE = CONTENT_TYPE_LATEST
# The ``*_created`` series (a timestamp per label set) double the output and
# no query here needs them.
disable_created_metrics()  # type: ignore[no-untyped-call]
# From a few ms (routing at simulator time scale 0) to minutes (a landing that
# waits out blockhash expiry and a re-sign).
STAGE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip


class PrometheusMetrics:
    content_type = CONTENT_TYPE

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.orders_submitted = Counter(
            "order_engine_orders_submitted", "Orders accepted by this API process.", registry=r
        )
        self.orders_finished = Counter(
            "order_engine_orders_finished",
            "Orders that reached a terminal status, by status and failure code.",
            ["status", "code"],
            registry=r,
        )
        self.orders_by_venue = Counter(
            "order_engine_orders_by_venue",
            "Terminal orders by the venue of their route ('a+b' for splits, 'none' if never "
            "routed).",
            ["venue", "status"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "order_engine_stage_seconds",
            "Latency of each stage of an order: queue_wait, routing, building, "
            "submit_to_confirm, end_to_end.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "order_engine_retries",
            "Job retries by error code, and re-signed transactions (reason 'rebuild').",
            ["reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "order_engine_queue_depth",
            "Jobs waiting in the queue (shared: aggregate with max).",
            registry=r,
        )
        self.ws_connections = Gauge(
            "order_engine_websocket_connections",
            "Open WebSocket streams in this process.",
            registry=r,
        )
        self.events_published = Counter(
            "order_engine_events_published", "Order events published on the bus.", registry=r
        )
        self.delivered = Counter(
            "order_engine_events_delivered",
            "Order events sent to WebSocket clients, by stream (order or account).",
            ["stream"],
            registry=r,
        )
        self.rejections = Counter(
            "order_engine_requests_rejected",
            "Requests refused before reaching the engine: rate_limited, backpressure, "
            "unauthorized.",
            ["reason"],
            registry=r,
        )

        self.open = Gauge(
            "order_engine_open_orders",
            "Orders waiting for their trigger, by type (shared: aggregate with max).",
            ["type"],
            registry=r,
        )
        self.trigger_seconds = Histogram(
            "order_engine_trigger_latency_seconds",
            "From the pool state that fired a waiting order being seen to the order "
            "being triggered, by type.",
            ["type"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )

    # --- the port ---------------------------------------------------------------------

    def order_submitted(self) -> None:
        self.orders_submitted.inc()

    def order_finished(self, status: str, code: str, venue: str) -> None:
        self.orders_finished.labels(status, code).inc()
        self.orders_by_venue.labels(venue, status).inc()

    def stage(self, stage: Stage, seconds: float) -> None:
        self.stage_seconds.labels(stage).observe(max(seconds, 0.0))

    def retried(self, reason: str) -> None:
        self.retries.labels(reason).inc()

    def event_published(self) -> None:
        self.events_published.inc()

    def events_delivered(self, stream: str, count: int = 1) -> None:
        self.delivered.labels(stream).inc(count)

    def rejected(self, reason: str) -> None:
        self.rejections.labels(reason).inc()

    def trigger_latency(self, kind: str, seconds: float) -> None:
        self.trigger_seconds.labels(kind).observe(max(seconds, 0.0))

    def open_orders(self, kind: str, count: int) -> None:
        self.open.labels(kind).set(count)

    # --- exposition -------------------------------------------------------------------

    async def render(self, queue_depth: Callable[[], Awaitable[int]], ws_open: int) -> bytes:
        """The text exposition, with the gauges read now."""
        try:
            self.queue_depth.set(await queue_depth())
        except Exception:  # noqa: BLE001 - a scrape must not fail on a queue outage
            self.queue_depth.set(float("nan"))
        self.ws_connections.set(ws_open)
        return generate_latest(self.registry)


async def serve_metrics(
    metrics: ExportedMetrics,
    *,
    host: str,
    port: int,
    queue_depth: Callable[[], Awaitable[int]],
    ws_open: Callable[[], int],
) -> tuple[web.AppRunner, int]:
    """``GET /metrics`` on its own port (for processes without an HTTP API: workers).

    Returns the runner (``await runner.cleanup()`` to stop) and the bound port.
    """

    async def handle(_: web.Request) -> web.Response:
        body = await metrics.render(queue_depth, ws_open())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)


if TYPE_CHECKING:
    _conforms: type[Metrics] = PrometheusMetrics
