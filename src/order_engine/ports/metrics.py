"""Metrics port: what the application reports, without knowing the exporter.

``adapters/metrics.py`` implements it with prometheus_client; the application
layer only calls these methods (``app/metrics.py`` has the no-op default).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

Stage = Literal["queue_wait", "routing", "building", "submit_to_confirm", "end_to_end"]


class Metrics(Protocol):
    def order_submitted(self) -> None: ...

    def order_finished(self, status: str, code: str, venue: str) -> None:
        """A terminal event was recorded: ``code`` is empty for a confirmed order,
        ``venue`` is the route's dex (``none`` when it failed before routing)."""
        ...

    def stage(self, stage: Stage, seconds: float) -> None: ...

    def retried(self, reason: str) -> None:
        """A job is retried (``reason``: the error code), or a transaction re-signed."""
        ...

    def event_published(self) -> None: ...

    def events_delivered(self, stream: str, count: int = 1) -> None:
        """Events sent to WebSocket clients; ``stream`` is ``order`` or ``account``."""
        ...

    def rejected(self, reason: str) -> None:
        """A request refused by admission: ``rate_limited``, ``backpressure``, ``unauthorized``."""
        ...

    def trigger_latency(self, kind: str, seconds: float) -> None:
        """A waiting order fired ``seconds`` after its trigger service saw the state
        that fired it (``kind``: limit, sniper)."""
        ...

    def open_orders(self, kind: str, count: int) -> None:
        """How many orders of ``kind`` are open now (read from the database)."""
        ...


class ExportedMetrics(Metrics, Protocol):
    """The metrics of a process that also serves them (``GET /metrics``)."""

    content_type: str

    async def render(self, queue_depth: Callable[[], Awaitable[int]], ws_open: int) -> bytes:
        """The exposition, with the gauges (queue depth, open WebSockets) read now."""
        ...
