"""Read-side HTTP routes: list orders, an order's events, and a quote (dry run).

Every route sees only the caller's orders: another key's order is a 404, the
same as an order that does not exist; lists never include it.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from order_engine.api.problems import INVALID_CURSOR, invalid_parameter
from order_engine.api.routes import (
    AUTH_ERRORS,
    NOT_FOUND,
    CallerDep,
    engine_of,
    json_response,
    order_uuid,
    order_view,
)
from order_engine.api.schemas import OrderEvents, OrderList, Problem, Quote
from order_engine.domain.errors import ErrorCode, ValidationError
from order_engine.domain.order import OrderKind, OrderStatus
from order_engine.ports.order_queries import OrderFilter, PageKey

if TYPE_CHECKING:
    from order_engine.bootstrap import Engine

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
# ISO 8601 date and time, optional fraction and offset (no offset: UTC).
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?$"
MAX_SEQ = 2**31 - 1
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "A parameter is invalid; the problem names it"},
}

router = APIRouter()


# --- GET /api/orders ------------------------------------------------------------------


@router.get(
    "/api/orders",
    response_model=OrderList,
    responses={**AUTH_ERRORS, **INVALID},
    summary="Your orders, newest first, filtered and paged by cursor",
)
async def list_orders(
    request: Request,
    caller: CallerDep,
    *,
    status: Annotated[
        list[OrderStatus] | None,
        Query(
            description="Only these statuses; repeat for several (?status=confirmed&status=failed)."
        ),
    ] = None,
    kind: Annotated[
        list[OrderKind] | None,
        Query(
            alias="type",
            description="Only these order types; repeat for several (?type=limit&type=sniper).",
        ),
    ] = None,
    pair: Annotated[
        str | None,
        Query(
            max_length=140,
            description="Input and output token, e.g. SOL-USDC or SOL/USDC (symbols or mints): "
            "orders that sold SOL for USDC.",
        ),
    ] = None,
    dex: Annotated[
        str | None,
        Query(
            pattern="^[a-z][a-z0-9_]{0,31}$",
            description="Routed through this venue (raydium, meteora), alone or in a split.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        Query(
            pattern=TIMESTAMP,
            description="Created at or after, e.g. 2025-03-01T12:00:00Z (UTC if no offset).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(pattern=TIMESTAMP, description="Created before (UTC if no offset)."),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="nextCursor of the previous page.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Orders per page.")
    ] = DEFAULT_LIMIT,
) -> Response:
    engine = engine_of(request)
    input_mint, output_mint = _pair(engine, pair)
    where = OrderFilter(
        owner=caller.owner,
        statuses=tuple(status or ()),
        kinds=tuple(kind or ()),
        input_mint=input_mint,
        output_mint=output_mint,
        dex=dex,
        since=_utc("since", since),
        until=_utc("until", until),
    )
    after = None if cursor is None else decode_page_key(cursor)
    found = await engine.gateway.queries.list_orders(where, limit=limit + 1, after=after)
    page = found[:limit]
    more = len(found) > limit
    return json_response(
        {
            "orders": [order_view(engine, order) for order in page],
            "nextCursor": encode_page_key(page[-1].created_at, page[-1].id) if more else None,
        }
    )


def _pair(engine: Engine, pair: str | None) -> tuple[str | None, str | None]:
    if pair is None:
        return None, None
    separator = "/" if "/" in pair else "-"
    left, found, right = pair.partition(separator)
    if not found or not left or not right:
        raise invalid_parameter(
            "pair",
            "query",
            f"expected INPUT-OUTPUT such as SOL-USDC or SOL/USDC, got {pair[:40]!r}",
        )
    try:
        return engine.tokens.resolve(left).mint, engine.tokens.resolve(right).mint
    except ValidationError as exc:
        raise invalid_parameter(
            "pair", "query", exc.message, ErrorCode.UNKNOWN_TOKEN.value
        ) from None


def _utc(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise invalid_parameter(
            name,
            "query",
            f"expected an ISO 8601 time between years 1 and 9999 in UTC, got {text[:40]!r}",
        ) from None


def encode_page_key(created_at: datetime, order_id: UUID) -> str:
    raw = orjson.dumps([created_at.isoformat(), str(order_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_key(cursor: str) -> PageKey:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, order_id = orjson.loads(raw)
        when = datetime.fromisoformat(created_at)
        # In UTC here, where a time at the calendar's edge (year 1 at +23:59) can
        # still be refused, rather than overflow in the store's conversion.
        key = PageKey(when.astimezone(UTC), UUID(order_id)) if when.tzinfo else None
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError, OverflowError):
        key = None
    if key is None:
        raise invalid_parameter(
            "cursor", "query", "expected the nextCursor of a previous page", INVALID_CURSOR
        )
    return key


# --- GET /api/orders/{order_id}/events ------------------------------------------------------


@router.get(
    "/api/orders/{order_id}/events",
    response_model=OrderEvents,
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID},
    summary="An order's event history after afterSeq",
)
async def order_event_history(
    order_id: str,
    request: Request,
    caller: CallerDep,
    *,
    after_seq: Annotated[
        int,
        Query(alias="afterSeq", ge=0, le=MAX_SEQ, description="Only events with a greater seq."),
    ] = 0,
) -> Response:
    engine = engine_of(request)
    order, events = await engine.orders.history(
        order_uuid(order_id), caller.owner, after_seq=after_seq
    )
    return json_response(
        {
            "orderId": str(order.id),
            "status": order.status.value,
            "events": [e.to_message() for e in events],
        }
    )


# --- GET /api/quote -------------------------------------------------------------------------


@router.get(
    "/api/quote",
    response_model=Quote,
    responses={**AUTH_ERRORS, **INVALID},
    summary="A dry run: every venue's quote and the route the engine would take",
)
async def quote(
    request: Request,
    caller: CallerDep,
    *,
    input_token: Annotated[
        str, Query(alias="inputToken", min_length=1, max_length=64, description="Symbol or mint.")
    ],
    output_token: Annotated[
        str, Query(alias="outputToken", min_length=1, max_length=64, description="Symbol or mint.")
    ],
    amount: Annotated[
        str,
        Query(
            min_length=1,
            max_length=64,
            description="Amount of inputToken in UI units, e.g. 10 or 0.25.",
        ),
    ],
    slippage_bps: Annotated[
        int | None,
        Query(alias="slippageBps", ge=1, le=5000, description="Default 50."),
    ] = None,
) -> Response:
    """Nothing is persisted, enqueued or executed. Amounts are base-unit strings as in
    Jupiter's quote API; ``ui`` has them in UI units."""
    del caller  # authenticated and rate limited; a quote belongs to nobody
    engine = engine_of(request)
    order_request = engine.orders.validate(input_token, output_token, amount, slippage_bps)
    return json_response(await engine.gateway.quotes.quote(order_request))
