"""The API-access problems (401, 409, 429, 503 ...), their stable codes, and what
makes the OpenAPI document say what the API really sends.

``errors.py`` turns every ``RequestProblem`` into problem+json; this module
only names the new refusals, and handles FastAPI's validation errors for
query, path and header parameters (body errors keep going to
``errors.describe_validation``), so that each names the offending parameter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.responses import Response

from order_engine.api.errors import (
    PROBLEM_JSON,
    RequestProblem,
    describe_validation,
    problem,
    shown,
)
from order_engine.api.schemas import Problem
from order_engine.domain.errors import ErrorCode

UNAUTHORIZED = "unauthorized"
RATE_LIMITED = ErrorCode.RATE_LIMITED.value
QUEUE_FULL = "queue_full"
IDEMPOTENCY_IN_FLIGHT = "idempotency_key_in_use"
IDEMPOTENCY_REUSED = "idempotency_key_reused"
INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
INVALID_CURSOR = "invalid_cursor"

# Query parameters whose refusal has a more specific code than invalid_request.
_PARAMETER_CODES = {
    "amount": ErrorCode.INVALID_AMOUNT.value,
    "slippageBps": ErrorCode.INVALID_SLIPPAGE.value,
    "cursor": INVALID_CURSOR,
    "after": INVALID_CURSOR,
}


def unauthorized(message: str) -> RequestProblem:
    return RequestProblem(
        401, UNAUTHORIZED, message, headers={"WWW-Authenticate": 'Bearer realm="order-engine"'}
    )


def rate_limited(wait_s: float, limit: float, burst: int) -> RequestProblem:
    retry_after = max(1, math.ceil(wait_s))
    return RequestProblem(
        429,
        RATE_LIMITED,
        f"rate limit exceeded for this API key: expected at most {limit:g} requests/s "
        f"(bursts of {burst}); retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def queue_full(depth: int, bound: int) -> RequestProblem:
    return RequestProblem(
        503,
        QUEUE_FULL,
        f"the engine is at capacity ({depth} orders waiting, bound {bound}): expected a retry "
        "after Retry-After seconds; nothing was created",
        headers={"Retry-After": "1"},
    )


def invalid_parameter(
    name: str, location: str, message: str, code: str | None = None
) -> RequestProblem:
    return RequestProblem(
        422,
        code or _PARAMETER_CODES.get(name, ErrorCode.INVALID_REQUEST.value),
        f"{location} parameter {name!r}: {message}",
        [{"field": name, "in": location, "message": message}],
    )


def describe_parameters(errors: Sequence[Mapping[str, Any]]) -> RequestProblem:
    """One 422 naming every refused query/path/header parameter (body errors go to
    ``describe_validation``)."""
    if any(str(next(iter(e.get("loc", ())), "")) == "body" for e in errors):
        return describe_validation(errors)
    items: list[dict[str, str]] = []
    code = None
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]  # ("query", name[, index of a list item])
        location, name = (loc[0], loc[1]) if len(loc) >= 2 else ("query", "".join(loc))
        if err.get("type") == "missing":
            message = "expected a value, got none (it is required)"
        else:
            message = f"expected {_expectation(err)}, got {shown(err.get('input'))}"
        if any(i["field"] == name for i in items):
            continue
        items.append({"field": name, "in": location, "message": message})
        code = code or _PARAMETER_CODES.get(name)
    text = "; ".join(f"{i['in']} parameter {i['field']!r}: {i['message']}" for i in items)
    return RequestProblem(422, code or ErrorCode.INVALID_REQUEST.value, text, items)


def _expectation(err: Mapping[str, Any]) -> str:
    """Pydantic's message as what was expected: "Input should be X" -> "X"."""
    text = str(err.get("msg") or "a valid value")
    for lead in ("Input should be ", "Value error, "):
        if text.startswith(lead):
            return text[len(lead) :]
    return text[:1].lower() + text[1:]


def install_parameter_validation(app: FastAPI) -> None:
    """Replaces the body-only handler from ``errors.install_error_handlers`` with one
    that also names query, path and header parameters; body errors are described
    exactly as before."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        found = describe_parameters(exc.errors())
        extra = {"errors": found.errors} if found.errors else {}
        return problem(found.status, found.code, found.message, headers=found.headers, **extra)


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def install_openapi(app: FastAPI) -> None:
    """Errors documented as problem+json (what every error handler sends), the
    Problem schema in components, and the API-key security schemes."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        components["securitySchemes"] = SECURITY_SCHEMES
        problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if status[:1] in ("4", "5"):
                        response["content"] = problem_content
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
