"""Who is calling, on HTTP and WebSocket, and whether they may go ahead (rate limit).

A key arrives as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; a
WebSocket may also send it as ``?apiKey=<key>`` or in its first message
(``{"apiKey": "<key>"}``, which may also be the order itself), or instead
present a short-lived, single-use ``?ticket=`` from ``POST /api/ws-tickets``. The modes and
the key format are in ``app/access.py``. Rate limits apply per key; anonymous
callers (open mode) count against their client address, and so do refused keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from fastapi import Request, Security, WebSocket
from fastapi.security import APIKeyHeader, HTTPBearer

from order_engine.api.errors import RequestProblem
from order_engine.api.problems import RATE_LIMITED, UNAUTHORIZED, rate_limited, unauthorized
from order_engine.api.sockets import (
    CLOSE_RATE_LIMITED,
    CLOSE_UNAUTHORIZED,
    SocketRejected,
    receive_object,
)
from order_engine.app.access import MISSING_KEY, Caller, Unauthorized

if TYPE_CHECKING:
    from order_engine.app.gateway import Gateway
    from order_engine.bootstrap import Engine

# Declared for the OpenAPI document (and /docs' "Authorize"); the checks below
# read the headers themselves, so that a malformed one is a 401 that says so.
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="bearer")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey")
MAX_KEY_CHARS = 256


def presented_key(headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> str | None:
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthorized(
                f"Authorization header: expected `Bearer <key>`, got scheme {scheme[:20]!r}"
                + ("" if value.strip() else " without a key")
            )
        return value.strip()[:MAX_KEY_CHARS]
    for found in (headers.get("x-api-key"), (query or {}).get("apiKey")):
        if found is not None:
            return found.strip()[:MAX_KEY_CHARS]
    return None


def bucket_of(caller: Caller, client: str | None) -> str | None:
    """Whose tokens a request takes: its key's, or (open mode) its address's."""
    if caller.owner is not None:
        return caller.owner
    return None if client is None else f"anonymous:{client}"


async def admit(gateway: Gateway, caller: Caller, client: str | None = None) -> None:
    """Take a token from the caller's bucket (its key's; without a key, its client
    address's); raise a 429 problem when there is none."""
    limiter = gateway.rate_limiter
    bucket = bucket_of(caller, client)
    if limiter is None or bucket is None:
        return
    wait = await limiter.acquire(bucket)
    if wait > 0:
        gateway.metrics.rejected("rate_limited")
        limit = getattr(limiter, "rate", 0.0)
        raise rate_limited(wait, limit, getattr(limiter, "burst", 0))


async def identify(gateway: Gateway, presented: str | None, client: str | None = None) -> Caller:
    """The caller behind ``presented``. A refused key also costs a token from the
    client address's failure bucket, so guessing keys is rate limited like anything
    else (a 429 once that bucket is empty)."""
    try:
        caller = await gateway.auth.authenticate(presented)
    except Unauthorized as exc:
        gateway.metrics.rejected("unauthorized")
        limiter = gateway.rate_limiter
        if limiter is not None and client is not None and exc.reason != "missing":
            wait = await limiter.acquire(f"auth-failures:{client}")
            if wait > 0:
                gateway.metrics.rejected("rate_limited")
                raise rate_limited(
                    wait, getattr(limiter, "rate", 0.0), getattr(limiter, "burst", 0)
                ) from None
        raise unauthorized(exc.message) from None
    if caller.owner is not None:
        structlog.contextvars.bind_contextvars(apiKey=caller.owner)
    return caller


async def identify_ticket(gateway: Gateway, ticket: str, client: str | None) -> Caller:
    """The caller a WebSocket ticket stands for; a refused ticket costs a token
    from the address's failure bucket, as a refused key does."""
    try:
        caller = await gateway.auth.redeem_ticket(ticket)
    except Unauthorized as exc:
        gateway.metrics.rejected("unauthorized")
        limiter = gateway.rate_limiter
        if limiter is not None and client is not None:
            wait = await limiter.acquire(f"auth-failures:{client}")
            if wait > 0:
                gateway.metrics.rejected("rate_limited")
                raise rate_limited(
                    wait, getattr(limiter, "rate", 0.0), getattr(limiter, "burst", 0)
                ) from None
        raise unauthorized(exc.message) from None
    if caller.owner is not None:
        structlog.contextvars.bind_contextvars(apiKey=caller.owner)
    return caller


async def authenticated(
    request: Request,
    _bearer: Annotated[Any, Security(bearer_scheme)] = None,
    _api_key: Annotated[Any, Security(api_key_scheme)] = None,
) -> Caller:
    """The FastAPI dependency of every ``/api`` route: 401 or 429 problem, or the caller."""
    engine: Engine = request.app.state.engine
    client = request.client.host if request.client else None
    caller = await identify(engine.gateway, presented_key(request.headers), client)
    await admit(engine.gateway, caller, client)
    return caller


async def authenticate_socket(
    websocket: WebSocket, engine: Engine, *, expecting: str
) -> tuple[Caller, dict[str, Any] | None]:
    """The caller of an accepted socket, and the first message if it had to be read
    for the key (it may carry more than the key). ``expecting`` describes the first
    message for a refusal."""
    gateway = engine.gateway
    first: dict[str, Any] | None = None
    client = websocket.client.host if websocket.client else None
    try:
        ticket = websocket.query_params.get("ticket")
        if ticket is not None:
            caller = await identify_ticket(gateway, ticket[:MAX_KEY_CHARS], client)
            await admit(gateway, caller, client)
            return caller, None
        presented = presented_key(websocket.headers, websocket.query_params)
        if presented is None and await gateway.auth.enforced():
            # Read once, bounded, exactly: this message may also be the order.
            first = await receive_object(
                websocket,
                f'{{"apiKey": "<key>"}}{expecting}',
                max_bytes=engine.settings.max_body_bytes,
                timeout_s=engine.settings.ws_auth_timeout_s,
            )
            key = (first or {}).get("apiKey")
            if not isinstance(key, str):
                gateway.metrics.rejected("unauthorized")
                raise SocketRejected(UNAUTHORIZED, MISSING_KEY, CLOSE_UNAUTHORIZED)
            presented = key
        caller = await identify(gateway, presented, client)
        await admit(gateway, caller, client)
    except RequestProblem as refused:
        close_code = CLOSE_RATE_LIMITED if refused.code == RATE_LIMITED else CLOSE_UNAUTHORIZED
        raise SocketRejected(refused.code, refused.message, close_code) from None
    return caller, first


async def key_in_message(
    engine: Engine, caller: Caller, message: dict[str, Any] | None, client: str | None = None
) -> Caller:
    """An open-mode socket whose order message names a key is that key's caller (and
    takes a token from that key's bucket)."""
    key = (message or {}).get("apiKey")
    if not caller.anonymous or not isinstance(key, str):
        return caller
    try:
        keyed = await identify(engine.gateway, key[:MAX_KEY_CHARS], client)
        await admit(engine.gateway, keyed, client)
    except RequestProblem as refused:
        close_code = CLOSE_RATE_LIMITED if refused.code == RATE_LIMITED else CLOSE_UNAUTHORIZED
        raise SocketRejected(refused.code, refused.message, close_code) from None
    return keyed
