"""What the API edge needs besides the order service: who is calling, whether to
let them in, idempotency, and the read side (lists, the account log, quotes)."""

from __future__ import annotations

from dataclasses import dataclass

from order_engine.app.access import Authenticator
from order_engine.app.admission import Backpressure
from order_engine.app.idempotency import Idempotency
from order_engine.app.quotes import QuoteService
from order_engine.ports.metrics import Metrics
from order_engine.ports.order_queries import OrderQueries
from order_engine.ports.ratelimit import RateLimiter


@dataclass
class Gateway:
    auth: Authenticator
    idempotency: Idempotency
    queries: OrderQueries
    quotes: QuoteService
    backpressure: Backpressure
    rate_limiter: RateLimiter | None  # None: no per-key limit
    metrics: Metrics
