"""Every error response has one shape: RFC 9457 problem+json plus a stable ``code``
and a human ``message`` (the same text as ``detail``).

Bad input is always a 4xx naming what was expected and what arrived; an
unreachable backend (PostgreSQL or Redis down, restarting) is a 503 with
``Retry-After``; any other unexpected exception is a 500 that reveals nothing
internal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.websockets import WebSocket, WebSocketState

from order_engine.api.schemas import ExecuteOrderRequest
from order_engine.bootstrap import BACKEND_ERRORS, backend_unavailable
from order_engine.domain.errors import (
    EngineError,
    ErrorCode,
    OrderNotCancellable,
    OrderNotFound,
    TransientError,
    ValidationError,
)
from order_engine.domain.order import OrderKind

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = 1  # what a 503 for an unreachable backend asks clients to wait
CLOSE_TRY_AGAIN_LATER = 1013  # the WebSocket close code for the same

# Which request field a pydantic error points at decides the stable code; a
# missing field is a malformed request, whichever field it is.
_FIELD_CODES = {
    "amount": ErrorCode.INVALID_AMOUNT,
    "slippageBps": ErrorCode.INVALID_SLIPPAGE,
    "inputToken": ErrorCode.UNKNOWN_TOKEN,
    "outputToken": ErrorCode.UNKNOWN_TOKEN,
    "type": ErrorCode.UNSUPPORTED_ORDER_TYPE,
    "limitPrice": ErrorCode.INVALID_LIMIT_PRICE,
    "expiresInS": ErrorCode.INVALID_EXPIRY,
    "expiresAt": ErrorCode.INVALID_EXPIRY,
    "maxPriceImpactBps": ErrorCode.INVALID_PRICE_IMPACT,
    "priorityFee": ErrorCode.INVALID_PRIORITY_FEE,
    "minLiquidity": ErrorCode.INVALID_SNIPER_FILTER,
    "requireMintAuthorityRevoked": ErrorCode.INVALID_SNIPER_FILTER,
    "requireFreezeAuthorityRevoked": ErrorCode.INVALID_SNIPER_FILTER,
}
# What each field should have been, for the message.
_EXPECTED = {
    "amount": 'a JSON number or a decimal string of at most 64 characters, e.g. 10 or "0.25"',
    "slippageBps": "an integer from 1 to 5000 (basis points)",
    "inputToken": "a token symbol (SOL, USDC, USDT, BONK, JUP) or its mint address",
    "outputToken": "a token symbol (SOL, USDC, USDT, BONK, JUP) or its mint address",
    "type": "one of " + ", ".join(repr(kind.value) for kind in OrderKind),
    "limitPrice": 'a positive decimal string or JSON number, e.g. "151.5"',
    "expiresInS": "whole seconds (an integer)",
    "expiresAt": 'an RFC 3339 time, e.g. "2026-12-07T15:00:00Z"',
    "maxPriceImpactBps": "an integer from 1 to 10000 (basis points)",
    "priorityFee": 'micro-lamports per compute unit (an integer) or "auto"',
    "minLiquidity": 'a decimal string or JSON number in inputToken UI units, e.g. "50"',
    "requireMintAuthorityRevoked": "true or false",
    "requireFreezeAuthorityRevoked": "true or false",
}
ORDER_FIELDS = ", ".join(ExecuteOrderRequest.model_fields)
ORDER_SHAPE = (
    'a JSON object {"inputToken", "outputToken", "amount", "slippageBps"?, "type"?}, '
    'e.g. {"inputToken": "SOL", "outputToken": "USDC", "amount": 10}'
)
_JSON_NAMES = {type(None): "null", bool: "a boolean", list: "an array", str: "a string"}

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    426: "Upgrade Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class RequestProblem(Exception):
    """A request the API refuses before it reaches the engine; becomes problem+json."""

    def __init__(
        self,
        status: int,
        code: ErrorCode | str,
        message: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code.value if isinstance(code, ErrorCode) else code
        self.message = message
        self.errors = errors
        self.headers = headers


def problem(
    status: int,
    code: ErrorCode | str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    code_value = code.value if isinstance(code, ErrorCode) else code
    body = {
        "type": f"urn:order-engine:error:{code_value}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": message,
        "code": code_value,
        "message": message,
        **extra,
    }
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def shown(value: Any, limit: int = 40) -> str:
    """A client's value as it looked on the wire (JSON where possible), cut short."""
    if isinstance(value, Decimal):  # how the JSON number was written
        text = str(value)
    else:
        try:
            text = orjson.dumps(value, default=str).decode()
        except TypeError:  # a lone surrogate, ...
            text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _kind(value: Any) -> str:
    for cls, name in _JSON_NAMES.items():
        if isinstance(value, cls):
            return name
    return "a number" if isinstance(value, (int, float, Decimal)) else "an object"


def describe_validation(errors: Sequence[Mapping[str, Any]]) -> RequestProblem:
    """One 422 problem for pydantic's errors on an order body: which fields are
    missing, and for each wrong field what was expected and what arrived.

    Accepts locations with or without FastAPI's leading ``"body"``.
    """
    missing: list[str] = []
    unknown: list[str] = []
    details: dict[str, str] = {}
    code = ErrorCode.INVALID_REQUEST
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc[:1] == ["body"]:
            loc = loc[1:]
        kind = err.get("type", "")
        if not loc or kind in ("json_invalid", "model_type", "model_attributes_type"):
            what = "is not valid JSON"
            if kind != "json_invalid":
                what = f"is {_kind(err.get('input'))}"
            return RequestProblem(
                422,
                ErrorCode.INVALID_REQUEST,
                f"request body {what}: expected {ORDER_SHAPE}",
                [{"field": "body", "message": f"expected {ORDER_SHAPE}"}],
            )
        field = loc[0]
        if kind == "missing":
            missing.append(field)
            continue
        if kind == "extra_forbidden":
            unknown.append(field)
            continue
        if field in details:
            continue  # a union reports once per member; one message per field is enough
        expected = _EXPECTED.get(field, err.get("msg", "a valid value"))
        details[field] = f"{field}: expected {expected}, got {shown(err.get('input'))}"
        if code is ErrorCode.INVALID_REQUEST and field in _FIELD_CODES:
            code = _FIELD_CODES[field]
    field_errors = [{"field": f, "message": f"field {f!r} is required"} for f in missing]
    field_errors += [{"field": f, "message": m} for f, m in details.items()]
    if unknown:
        field_errors += [{"field": f, "message": f"unknown field {f[:40]!r}"} for f in unknown]
        code = ErrorCode.UNKNOWN_FIELD if code is ErrorCode.INVALID_REQUEST else code
        details["_unknown"] = _unknown_fields(unknown)
    if missing:
        code = ErrorCode.INVALID_REQUEST
        names = ", ".join(repr(f) for f in missing)
        plural = "s" if len(missing) > 1 else ""
        message = f"missing required field{plural} {names}: expected {ORDER_SHAPE}"
        if details:
            message += "; " + "; ".join(details.values())
    else:
        message = "; ".join(details.values()) or "invalid request"
    return RequestProblem(422, code, message, field_errors)


def _unknown_fields(names: list[str]) -> str:
    listed = ", ".join(repr(f[:40]) for f in names[:5]) + (", ..." if len(names) > 5 else "")
    plural = "s" if len(names) > 1 else ""
    return (
        f"unknown field{plural} {listed}: expected only {ORDER_FIELDS} (a field the engine "
        "does not honour is refused, not ignored)"
    )


async def close_unavailable(websocket: WebSocket, message: str) -> None:
    """What a WebSocket client gets when a backend is unreachable: an error message,
    then close 1013 (try again later); refused with 403 if not accepted yet."""
    with contextlib.suppress(Exception):  # the client may be gone already
        if websocket.client_state is WebSocketState.CONNECTED:
            error = {
                "type": "error",
                "code": ErrorCode.SERVICE_UNAVAILABLE.value,
                "message": message,
            }
            await websocket.send_text(orjson.dumps(error).decode())
        await websocket.close(CLOSE_TRY_AGAIN_LATER, message[:120])


def install_error_handlers(
    app: FastAPI,
    *,
    backend_errors: tuple[type[Exception], ...] = BACKEND_ERRORS,
    unavailable: Callable[[BaseException], str | None] = backend_unavailable,
) -> None:
    """Every error becomes problem+json. ``backend_errors`` (from the composition
    root) are the exception types a backend outage raises; those that
    ``unavailable`` confirms become 503 with ``Retry-After``, the rest 500."""

    @app.exception_handler(RequestProblem)
    async def _request_problem(_: Request, exc: RequestProblem) -> Response:
        extra = {"errors": exc.errors} if exc.errors else {}
        return problem(exc.status, exc.code, exc.message, headers=exc.headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return await _request_problem(request, describe_validation(exc.errors()))

    @app.exception_handler(ValidationError)
    async def _domain_validation(_: Request, exc: ValidationError) -> Response:
        return problem(422, exc.code, exc.message)

    @app.exception_handler(OrderNotCancellable)
    async def _not_cancellable(_: Request, exc: OrderNotCancellable) -> Response:
        return problem(409, ErrorCode.ORDER_NOT_CANCELLABLE, str(exc))

    @app.exception_handler(OrderNotFound)
    async def _not_found(_: Request, exc: OrderNotFound) -> Response:
        return problem(404, ErrorCode.ORDER_NOT_FOUND, str(exc))

    @app.exception_handler(TransientError)
    async def _unavailable(_: Request, exc: TransientError) -> Response:
        return problem(
            503, ErrorCode.SERVICE_UNAVAILABLE, exc.message, headers={"Retry-After": "1"}
        )

    @app.exception_handler(EngineError)
    async def _engine(_: Request, exc: EngineError) -> Response:
        return problem(422, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: ErrorCode.PAYLOAD_TOO_LARGE.value,
        }.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; a path
            # served by several routes (GET and DELETE /api/orders/{id}) allows all.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed(request))}
        return problem(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.error("unhandled_error", path=request.url.path, error=repr(exc), exc_info=exc)
        return problem(500, ErrorCode.INTERNAL, "internal error; it has been logged")

    async def _backend(request: Request, exc: Exception) -> Response | None:
        backend = unavailable(exc)
        websocket = request.scope["type"] == "websocket"
        if backend is None:  # e.g. a constraint violation: a bug, not an outage
            if websocket:
                raise exc  # the server closes the socket with 1011, as before
            return await _internal(request, exc)
        log.warning("backend_unavailable", path=request.url.path, backend=backend, error=repr(exc))
        message = (
            f"temporarily unavailable: {backend} cannot be reached; expected to recover "
            f"shortly, retry after {RETRY_AFTER_S} s"
        )
        if websocket:  # the handler is given the WebSocket itself; it answers no Response
            await close_unavailable(cast("WebSocket", request), message)
            return None
        return problem(
            503,
            ErrorCode.SERVICE_UNAVAILABLE,
            message,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    # Registered per class (not folded into ``_internal``): a handled exception
    # keeps the connection alive, where an unhandled one is re-raised to the server.
    # One handler for both scopes; Starlette types them apart (it returns None for a socket).
    handler = cast("Callable[[Request, Exception], Awaitable[Response]]", _backend)
    for error_type in backend_errors:
        app.add_exception_handler(error_type, handler)


def _allowed(request: Request) -> list[str]:
    """Every method some route of the app serves at this request's path. Asked of
    each route through Starlette's own ``matches`` (FastAPI nests included routers,
    so the top-level routes are not all plain routes with a path)."""
    allowed: list[str] = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
