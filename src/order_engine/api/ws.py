"""WebSocket on the execute path: follow an order, or submit one and follow it.

* ``?orderId=<id>[&afterSeq=<n>]``: the order's whole history after ``n``,
  then live events, gapless and without duplicates, closing normally (1000)
  after the terminal event (at once if ``n`` already is the terminal event).
* no ``orderId``: the first message is the order JSON (same body as the POST,
  parsed by the same code); the reply is ``{"orderId": ...}``, then the same
  stream.

The key (when keys are enforced) comes as a header, as ``?apiKey=``, or as
the first message ``{"apiKey": ...}``, which may also be the order itself.
Another key's order is an unknown order.

Errors are a JSON message ``{"type": "error", "code", "message"}`` followed by
a close: 1008 (policy violation) for malformed input or an invalid order, 4404
for an unknown order, 4401 for a missing or bad key, 4429 when rate limited,
1013 (try again later) when the engine cannot take it, 4008 when the client
reads too slowly for its bounded buffer (``STREAM_BUFFER_EVENTS``; the reason
names the ``afterSeq`` to resume from).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from order_engine.api.auth import authenticate_socket, key_in_message
from order_engine.api.errors import RequestProblem
from order_engine.api.order_input import parse_order
from order_engine.api.routes import EXECUTE_PATH
from order_engine.api.sockets import (
    CLOSE_NORMAL,
    CLOSE_NOT_FOUND,
    CLOSE_POLICY,
    CLOSE_TOO_SLOW,
    CLOSE_UNAVAILABLE,
    SocketRejected,
    close,
    json_object,
    receive_first,
    reject,
    send_error,
    send_until_disconnect,
)
from order_engine.app.access import Caller
from order_engine.app.streaming import OrderStream
from order_engine.domain.errors import EngineError, ErrorCode, TransientError

if TYPE_CHECKING:
    from order_engine.bootstrap import Engine

log = structlog.get_logger(__name__)

_SEQ = re.compile(r"[0-9]{1,12}")
FIRST_MESSAGE_TIMEOUT_S = 10.0
ORDER_MESSAGE = "?orderId=... or an order JSON as the first message"

router = APIRouter()


@router.websocket(EXECUTE_PATH)
async def order_socket(websocket: WebSocket) -> None:
    engine: Engine = websocket.app.state.engine
    await websocket.accept()
    try:
        caller, first = await authenticate_socket(
            websocket, engine, expecting=" (or the order JSON with an apiKey field)"
        )
        order_id, after_seq = await _target(websocket, engine, caller, first)
    except SocketRejected as rejected:
        await reject(websocket, rejected)
        return
    except WebSocketDisconnect:
        return
    structlog.contextvars.bind_contextvars(orderId=str(order_id))
    engine.metrics_ws_open(+1)
    try:
        await _stream(websocket, engine, order_id, after_seq)
    finally:
        engine.metrics_ws_open(-1)


async def _target(
    websocket: WebSocket, engine: Engine, caller: Caller, first: dict[str, Any] | None
) -> tuple[UUID, int]:
    params = websocket.query_params
    raw_after = params.get("afterSeq", "0")
    if not _SEQ.fullmatch(raw_after):  # str.isdigit() would take "²", which int() refuses
        raise SocketRejected(
            ErrorCode.INVALID_REQUEST.value,
            f"afterSeq must be a non-negative integer, got {raw_after[:32]!r}",
            CLOSE_POLICY,
        )
    after_seq = int(raw_after)
    raw_id = params.get("orderId")
    if raw_id is not None:
        try:
            order_id = UUID(raw_id)
        except ValueError:
            raise SocketRejected(
                ErrorCode.INVALID_REQUEST.value,
                f"orderId must be a UUID, got {raw_id[:64]!r}",
                CLOSE_POLICY,
            ) from None
        order = await engine.repo.get(order_id)
        if order is None or (caller.owner is not None and order.owner != caller.owner):
            raise SocketRejected(
                ErrorCode.ORDER_NOT_FOUND.value, f"no order with id {order_id}", CLOSE_NOT_FOUND
            )
        if after_seq > order.seq:
            # Events are persisted before anyone sees them: a client cannot have
            # seen a seq the store does not hold yet.
            raise SocketRejected(
                ErrorCode.INVALID_REQUEST.value,
                f"afterSeq {after_seq} is beyond the order's latest event (seq {order.seq}): "
                "expected the seq of an event already received, or 0",
                CLOSE_POLICY,
            )
        return order_id, after_seq
    order_message = first if first is not None and first.keys() - {"apiKey", "type"} else None
    return await _submit_from_message(websocket, engine, caller, order_message), 0


async def _submit_from_message(
    websocket: WebSocket, engine: Engine, caller: Caller, message: dict[str, Any] | None
) -> UUID:
    """Submit the order carried by ``message`` (already read for the key), or by the
    next message."""
    raw: str | bytes
    if message is None:
        raw = await receive_first(websocket, ORDER_MESSAGE, FIRST_MESSAGE_TIMEOUT_S)
        if len(raw) > engine.settings.max_body_bytes:
            raise SocketRejected(
                ErrorCode.PAYLOAD_TOO_LARGE.value,
                f"order message exceeds {engine.settings.max_body_bytes} bytes: expected an "
                "order of a few hundred bytes",
                CLOSE_POLICY,
            )
        caller = await key_in_message(engine, caller, json_object(raw))
    else:
        raw = orjson.dumps(message)
    try:
        request = parse_order(raw, engine.orders)
    except RequestProblem as problem:
        raise SocketRejected(problem.code, problem.message, CLOSE_POLICY) from None
    except EngineError as exc:
        raise SocketRejected(exc.code.value, exc.message, CLOSE_POLICY) from None
    depth = await engine.gateway.backpressure.overloaded()
    if depth is not None:
        engine.gateway.metrics.rejected("backpressure")
        raise SocketRejected(
            "queue_full",
            f"the engine is at capacity ({depth} orders waiting): try again later",
            CLOSE_UNAVAILABLE,
        )
    try:
        order = await engine.orders.submit(request, owner=caller.owner)
    except TransientError as exc:
        raise SocketRejected(
            ErrorCode.SERVICE_UNAVAILABLE.value, exc.message, CLOSE_UNAVAILABLE
        ) from None
    await websocket.send_text(orjson.dumps({"orderId": str(order.id)}).decode())
    return order.id


async def _stream(websocket: WebSocket, engine: Engine, order_id: UUID, after_seq: int) -> None:
    metrics = engine.gateway.metrics
    stream = OrderStream(order_id, repo=engine.repo, tailer=engine.streams, after_seq=after_seq)
    ended = await send_until_disconnect(
        websocket, stream.messages(), lambda: metrics.events_delivered("order")
    )
    if ended.left:
        return
    if stream.too_slow:
        await close(
            websocket,
            CLOSE_TOO_SLOW,
            f"too slow: reconnect with afterSeq={stream.last} to resume",
        )
    elif ended.cancelled:
        await close(websocket, CLOSE_UNAVAILABLE, "stream interrupted")
    elif ended.error is None:
        await close(websocket, CLOSE_NORMAL, "order finished")
    else:
        log.error("stream_failed", order_id=str(order_id), error=repr(ended.error))
        await send_error(
            websocket,
            ErrorCode.SERVICE_UNAVAILABLE.value,
            f"stream interrupted; reconnect with afterSeq={stream.last} to resume",
        )
        await close(websocket, CLOSE_UNAVAILABLE, "stream interrupted")
