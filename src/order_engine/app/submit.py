"""Submitting an order: the one use case behind ``POST /api/orders/execute`` and the
WebSocket submit, so that both transports check the same things in the same order.

The transport has already authenticated the caller, taken a rate-limit token
and parsed the order from a bounded body or frame. Then, here:

1. **backpressure**: while the queue is deeper than its bound the order is
   refused (``QueueFull``) before anything is written, so an overload costs
   no idempotency row, not one per refused request;
2. **idempotency**: the key is reserved (or replayed, or refused as reused or
   in flight);
3. **submit**: the order is persisted (completing the reservation in the same
   transaction), published and enqueued.

A retry of an order already created, arriving while the queue is full, gets
the 503 too and its replay on the next retry: replaying it first would cost
the very write that backpressure is there to spare.

Refusals are exceptions carrying what each transport needs to say; the HTTP
and WebSocket layers map them to a problem+json status or a close code.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from uuid import UUID, uuid4

import structlog

from order_engine.app.admission import Backpressure
from order_engine.app.idempotency import Idempotency
from order_engine.app.order_terms import WAITING_KINDS
from order_engine.app.orders import OrderRequest, OrderService
from order_engine.domain.order import OrderStatus
from order_engine.ports.idempotency import (
    Completion,
    IdempotencyKeyTaken,
    InFlight,
    Mismatch,
    Replay,
    Reservation,
    StoredResponse,
)
from order_engine.ports.metrics import Metrics


class SubmitRefused(Exception):
    """An order the engine did not take; nothing was created."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QueueFull(SubmitRefused):
    def __init__(self, depth: int, bound: int) -> None:
        super().__init__(
            f"the engine is at capacity ({depth} orders waiting, bound {bound}): expected a "
            "retry after Retry-After seconds; nothing was created"
        )
        self.depth, self.bound = depth, bound


class KeyReused(SubmitRefused):
    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key[:64]!r} was already used with a different order: expected "
            "the same order as its first request, or a new key"
        )


class KeyInFlight(SubmitRefused):
    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key[:64]!r} is in use by a request still in flight: expected a "
            "retry once it has finished"
        )


@dataclass(frozen=True, slots=True)
class Accepted:
    """The response for the order (``replayed``: the stored one of a key's first request)."""

    response: StoredResponse
    replayed: bool = False

    @property
    def order_id(self) -> UUID:
        return UUID(str(self.response.body["orderId"]))


def accepted_response(order_id: UUID, status: OrderStatus = OrderStatus.PENDING) -> StoredResponse:
    return StoredResponse(
        201,
        {
            "orderId": str(order_id),
            "status": status.value,
            "message": "Order accepted; stream its progress over a WebSocket on this path "
            f"with ?orderId={order_id}",
        },
        {"Location": f"/api/orders/{order_id}"},
    )


class SubmitOrder:
    def __init__(
        self,
        orders: OrderService,
        *,
        idempotency: Idempotency,
        backpressure: Backpressure,
        metrics: Metrics,
    ) -> None:
        self.orders = orders
        self.idempotency = idempotency
        self.backpressure = backpressure
        self.metrics = metrics

    async def __call__(
        self, request: OrderRequest, *, owner: str | None, key: str | None = None
    ) -> Accepted:
        """Raises ``QueueFull``, ``KeyReused`` or ``KeyInFlight``; anything else
        (a backend outage) propagates with nothing created."""
        depth = await self.backpressure.overloaded()
        if depth is not None:
            self.metrics.rejected("backpressure")
            raise QueueFull(depth, self.backpressure.max_depth)
        reservation: Reservation | None = None
        if key is not None:
            outcome = await self.idempotency.begin(owner, key, request)
            if isinstance(outcome, Replay):
                return Accepted(outcome.response, replayed=True)
            if isinstance(outcome, Mismatch):
                raise KeyReused(key)
            if isinstance(outcome, InFlight):
                raise KeyInFlight(key)
            reservation = outcome.reservation
        order_id = uuid4()
        structlog.contextvars.bind_contextvars(orderId=str(order_id))
        first = OrderStatus.OPEN if request.kind in WAITING_KINDS else OrderStatus.PENDING
        response = accepted_response(order_id, first)
        uow = self.orders.units()
        if reservation is not None:
            uow.complete_key(Completion(reservation, response), order_id)
        try:
            await self.orders.submit(request, owner=owner, order_id=order_id, uow=uow)
        except IdempotencyKeyTaken:
            raise KeyInFlight(key or "") from None
        except BaseException:
            if reservation is not None:
                # Nothing was created: let a retry with this key run afresh. (If the
                # order did commit, its reservation is completed and this is a no-op.)
                with contextlib.suppress(Exception):
                    await self.idempotency.abandon(reservation)
            raise
        return Accepted(response)
