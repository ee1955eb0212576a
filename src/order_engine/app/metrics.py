"""Metrics from the application's point of view: a no-op default, and the
derivations the executor needs (stage latencies from timestamps it already has).

``ports/metrics.py`` is the interface; ``adapters/metrics.py`` exports it.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from uuid import UUID

from order_engine.domain.errors import EngineError, ErrorCode
from order_engine.domain.order import Order, OrderEvent, OrderStatus
from order_engine.ports.clock import Clock
from order_engine.ports.metrics import Metrics, Stage

_REMEMBERED = 10_000  # submitted-at times kept for submit->confirm, per process


class NullMetrics:
    def order_submitted(self) -> None:
        pass

    def order_finished(self, status: str, code: str, venue: str) -> None:
        pass

    def stage(self, stage: Stage, seconds: float) -> None:
        pass

    def retried(self, reason: str) -> None:
        pass

    def event_published(self) -> None:
        pass

    def events_delivered(self, stream: str, count: int = 1) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass

    def trigger_latency(self, kind: str, seconds: float) -> None:
        pass

    def open_orders(self, kind: str, count: int) -> None:
        pass


NULL_METRICS: Metrics = NullMetrics()


class ExecutionObserver:
    """What the executor reports, in one line per hook.

    Stage latencies are measured where the executor already has the times:
    queue wait from the order's creation to its first claim; routing and
    building by the monotonic clock around them; submit->confirm from the
    ``submitted`` event to the ``confirmed`` one (when this process saw both);
    end to end from creation to the terminal event.
    """

    def __init__(self, metrics: Metrics, clock: Clock) -> None:
        self.metrics = metrics
        self.clock = clock
        self._submitted_at: OrderedDict[UUID, datetime] = OrderedDict()

    def claimed(self, order: Order, now: datetime) -> None:
        if order.attempts == 1 and order.status is OrderStatus.PENDING:
            self.metrics.stage("queue_wait", (now - order.created_at).total_seconds())

    def since(self, stage: Stage, started: float) -> float:
        """Observe ``stage`` as lasting from ``started`` (monotonic) until now; returns now."""
        now = self.clock.monotonic()
        self.metrics.stage(stage, now - started)
        return now

    def retried(self, exc: BaseException | str) -> None:
        if isinstance(exc, str):
            self.metrics.retried(exc)
        else:
            code = exc.code if isinstance(exc, EngineError) else ErrorCode.INTERNAL
            self.metrics.retried(code.value)

    def recorded(self, order: Order, event: OrderEvent, *, published: bool) -> None:
        if published:
            self.metrics.event_published()
        if event.status is OrderStatus.SUBMITTED:
            self._submitted_at[order.id] = event.at
            if len(self._submitted_at) > _REMEMBERED:
                self._submitted_at.popitem(last=False)
            return
        if not order.is_terminal:
            return
        submitted_at = self._submitted_at.pop(order.id, None)
        if event.status is OrderStatus.CONFIRMED and submitted_at is not None:
            self.metrics.stage("submit_to_confirm", (event.at - submitted_at).total_seconds())
        self.metrics.stage("end_to_end", (event.at - order.created_at).total_seconds())
        venue = str((order.route or {}).get("dex") or "none")
        self.metrics.order_finished(event.status.value, order.error_code or "", venue)
