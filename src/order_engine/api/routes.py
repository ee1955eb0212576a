"""HTTP routes: submit an order (idempotently), read an order, health and readiness."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import orjson
import structlog
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from order_engine.api.auth import authenticated, presented_key
from order_engine.api.errors import RequestProblem, problem
from order_engine.api.order_input import parse_order, require_json_content_type
from order_engine.api.problems import (
    IDEMPOTENCY_IN_FLIGHT,
    IDEMPOTENCY_REUSED,
    INVALID_IDEMPOTENCY_KEY,
    queue_full,
)
from order_engine.api.schemas import (
    ExecuteOrderRequest,
    OrderAccepted,
    OrderView,
    Problem,
    WsTicket,
)
from order_engine.app.access import Caller
from order_engine.app.idempotency import KEY_SHAPE, MAX_KEY_LENGTH
from order_engine.app.reporting import ui_amount, wire_time
from order_engine.app.submit import KeyInFlight, QueueFull, SubmitOrder, SubmitRefused
from order_engine.app.waiting_details import options_view
from order_engine.domain.errors import ErrorCode, OrderNotFound
from order_engine.domain.order import Order, OrderEvent

if TYPE_CHECKING:
    from order_engine.bootstrap import Engine

EXECUTE_PATH = "/api/orders/execute"
# Every error is problem+json (problems.install_openapi rewrites the media type).
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, unknown or revoked API key"},
    429: {"model": Problem, "description": "Rate limited; see Retry-After"},
    503: {"model": Problem, "description": "Temporarily unavailable; see Retry-After"},
}
ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    409: {"model": Problem, "description": "Idempotency-Key in use by a request in flight"},
    413: {"model": Problem, "description": "Body too large"},
    415: {"model": Problem, "description": "Body not declared as application/json"},
    422: {"model": Problem, "description": "Invalid order, or Idempotency-Key reused"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such order (for this API key)"},
}
CallerDep = Annotated[Caller, Depends(authenticated)]

router = APIRouter()


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


# The body is parsed by ``parse_order`` (exact decimals, one path shared with the
# WebSocket), so FastAPI does not see a body parameter; document it here instead.
_ORDER_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ExecuteOrderRequest.model_json_schema()}},
    },
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Retry safely: the same key with the same order returns the first "
            "response (and creates nothing); with another order it is a 422; while the first "
            "request is still being handled, a 409. Kept at least 24 h, per API key.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_KEY_LENGTH,
                "pattern": "^[\\x21-\\x7e]+$",
            },
        }
    ],
}


def idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not KEY_SHAPE.fullmatch(raw):
        raise RequestProblem(
            422,
            INVALID_IDEMPOTENCY_KEY,
            f"Idempotency-Key: expected 1 to {MAX_KEY_LENGTH} visible ASCII characters "
            f"(a UUID, say), got {len(raw)} characters {raw[:40]!r}",
            [{"field": "Idempotency-Key", "in": "header", "message": "invalid"}],
        )
    return raw


@router.post(
    EXECUTE_PATH,
    status_code=201,
    response_model=OrderAccepted,
    responses=ERRORS,
    summary="Submit a market order",
    openapi_extra=_ORDER_BODY,
)
async def execute_order(request: Request, caller: CallerDep) -> Response:
    """Validate, persist as ``pending``, enqueue, and return the order id.

    Follow the order live with a WebSocket on this same path (``?orderId=``).
    With an ``Idempotency-Key``, a retry gets the first response again
    (marked ``Idempotent-Replayed: true``) and no second order.
    """
    engine = engine_of(request)
    key = idempotency_key(request.headers.get("idempotency-key"))
    require_json_content_type(request.headers.get("content-type"))
    order_request = parse_order(await request.body(), engine.orders)
    try:
        accepted = await submit_use_case(engine)(order_request, owner=caller.owner, key=key)
    except SubmitRefused as refused:
        raise submit_problem(refused) from None
    stored = accepted.response
    headers = {**stored.headers, "Idempotent-Replayed": "true"} if accepted.replayed else None
    return json_response(stored.body, stored.status, headers=headers or stored.headers)


def submit_use_case(engine: Engine) -> SubmitOrder:
    """The submit use case over this engine's parts (a few attribute reads)."""
    gateway = engine.gateway
    return SubmitOrder(
        engine.orders,
        idempotency=gateway.idempotency,
        backpressure=gateway.backpressure,
        metrics=gateway.metrics,
    )


def submit_problem(refused: SubmitRefused) -> RequestProblem:
    if isinstance(refused, QueueFull):
        return queue_full(refused.depth, refused.bound)
    if isinstance(refused, KeyInFlight):
        return RequestProblem(
            409, IDEMPOTENCY_IN_FLIGHT, refused.message, headers={"Retry-After": "1"}
        )
    return RequestProblem(422, IDEMPOTENCY_REUSED, refused.message)


@router.get(EXECUTE_PATH, include_in_schema=False)
async def execute_without_upgrade() -> Response:
    """A plain GET here is a client that forgot the WebSocket upgrade (not an order id)."""
    raise RequestProblem(
        426,
        "upgrade_required",
        f"GET {EXECUTE_PATH} is a WebSocket endpoint: expected an Upgrade to websocket, with "
        "?orderId=<id> to follow an order or no orderId to submit one as the first message",
        headers={"Upgrade": "websocket"},
    )


@router.get(
    "/api/orders/{order_id}",
    response_model=OrderView,
    responses={**AUTH_ERRORS, **NOT_FOUND},
    summary="An order with its status, fill and full event history",
)
async def get_order(order_id: str, request: Request, caller: CallerDep) -> Response:
    engine = engine_of(request)
    order, events = await engine.orders.history(order_uuid(order_id), caller.owner)
    return json_response(order_view(engine, order, events))


@router.delete(
    "/api/orders/{order_id}",
    response_model=OrderView,
    responses={
        **AUTH_ERRORS,
        **NOT_FOUND,
        409: {"model": Problem, "description": "Not open: already triggered, or terminal"},
    },
    summary="Cancel an order still waiting for its trigger",
)
async def cancel_order(order_id: str, request: Request, caller: CallerDep) -> Response:
    engine = engine_of(request)
    cancelled = await engine.orders.cancel(order_uuid(order_id), owner=caller.owner)
    _, events = await engine.orders.history(cancelled.id, caller.owner)
    return json_response(order_view(engine, cancelled, events))


@router.post(
    "/api/ws-tickets",
    status_code=201,
    response_model=WsTicket,
    responses=AUTH_ERRORS,
    summary="A single-use ticket for a WebSocket URL (?ticket=), valid for seconds",
)
async def ws_ticket(request: Request, caller: CallerDep) -> Response:
    """Trade the API key (in a header) for a ticket worth one WebSocket connection
    as ``?ticket=<ticket>``, within ``expiresInS``: a browser cannot set headers on
    a WebSocket, and a long-lived key in a URL ends up in logs."""
    del caller  # authenticated and rate limited; the ticket re-checks the same key
    auth = engine_of(request).gateway.auth
    ticket = await auth.issue_ticket(presented_key(request.headers))
    body = {"ticket": ticket, "expiresInS": auth.ticket_ttl_s}
    return json_response(body, 201, headers={"Cache-Control": "no-store"})


def order_uuid(order_id: str) -> UUID:
    """A path's order id; a malformed one is as unknown as one that does not exist.
    Ownership is ``OrderService.get``'s to check (another key's order is a 404)."""
    try:
        oid = UUID(order_id)
    except ValueError:
        raise OrderNotFound(f"no order with id {order_id[:64]!r}: not a UUID") from None
    structlog.contextvars.bind_contextvars(orderId=str(oid))
    return oid


def order_view(
    engine: Engine, order: Order, events: list[OrderEvent] | None = None
) -> dict[str, Any]:
    tokens = engine.tokens
    token_in = tokens.by_mint(order.input_mint)
    token_out = tokens.lookup(order.output_mint)  # a sniper's token may not be launched yet
    return {
        "orderId": str(order.id),
        "status": order.status.value,
        "type": order.kind.value,
        "inputToken": token_in.symbol,
        "outputToken": token_out.symbol,
        "amountIn": ui_amount(token_in, order.amount_in),
        "amountInRaw": str(order.amount_in),
        "slippageBps": order.slippage_bps,
        "attempts": order.attempts,
        "createdAt": wire_time(order.created_at),
        "updatedAt": wire_time(order.updated_at),
        "txHash": order.tx.signature if order.tx else None,
        "route": order.route,
        "fill": order.fill,
        "error": (
            {"code": order.error_code, "message": order.error_message} if order.error_code else None
        ),
        **options_view(order, token_out),
        **({} if events is None else {"events": [e.to_message() for e in events]}),
    }


@router.get("/healthz", summary="Liveness: the process serves requests")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database (and queue/bus backends) answer",
    responses={503: {"model": Problem}},
)
async def readyz(request: Request) -> Response:
    engine = engine_of(request)
    checks = await engine.readiness()
    failing = {k: v for k, v in checks.items() if v != "ok"}
    if failing:
        return problem(
            503,
            ErrorCode.SERVICE_UNAVAILABLE,
            "not ready: " + ", ".join(f"{k}: {v}" for k, v in failing.items()),
            headers={"Retry-After": "1"},
            checks=checks,
        )
    return json_response({"status": "ready", "checks": checks})
