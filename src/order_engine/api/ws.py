"""WebSocket on the execute path: follow an order, or submit one and follow it.

* ``?orderId=<id>[&afterSeq=<n>]``: the order's whole history after ``n``,
  then live events, gapless and without duplicates, closing normally (1000)
  after the terminal event (at once if ``n`` already is the terminal event).
* no ``orderId``: the first message is the order JSON (same body as the POST,
  parsed by the same code, submitted by the same use case, ``app/submit.py``),
  optionally with an ``idempotencyKey`` (or an ``Idempotency-Key`` header on
  the upgrade); the reply is ``{"orderId": ...}`` (plus ``"replayed": true``
  for a key's retry), then the same stream.

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
from order_engine.api.errors import ORDER_SHAPE, RequestProblem, shown
from order_engine.api.order_input import order_from_json
from order_engine.api.problems import INVALID_IDEMPOTENCY_KEY
from order_engine.api.routes import EXECUTE_PATH, idempotency_key, submit_problem, submit_use_case
from order_engine.api.sockets import (
    CLOSE_NORMAL,
    CLOSE_NOT_FOUND,
    CLOSE_POLICY,
    CLOSE_TOO_SLOW,
    CLOSE_UNAVAILABLE,
    SocketRejected,
    close,
    open_sockets,
    receive_object,
    reject,
    send_error,
    send_until_disconnect,
)
from order_engine.app.access import Caller
from order_engine.app.streaming import OrderStream
from order_engine.app.submit import SubmitRefused
from order_engine.domain.errors import EngineError, ErrorCode, OrderNotFound, TransientError

if TYPE_CHECKING:
    from order_engine.bootstrap import Engine

log = structlog.get_logger(__name__)

_SEQ = re.compile(r"[0-9]{1,12}")
FIRST_MESSAGE_TIMEOUT_S = 10.0
ORDER_MESSAGE = "?orderId=... or an order JSON as the first message"
# Fields of a first message that travel with the order without being part of it.
ENVELOPE = frozenset({"apiKey", "idempotencyKey"})

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
    with open_sockets(websocket.app).held():
        await _stream(websocket, engine, order_id, after_seq)


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
        try:
            order = await engine.orders.get(order_id, owner=caller.owner)
        except OrderNotFound as missing:
            raise SocketRejected(
                ErrorCode.ORDER_NOT_FOUND.value, str(missing), CLOSE_NOT_FOUND
            ) from None
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
    order_message = first if first is not None and is_order_message(first) else None
    return await _submit_from_message(websocket, engine, caller, order_message), 0


def is_order_message(message: dict[str, Any]) -> bool:
    """Whether a first message carries an order, not only the key (``{"apiKey": ...}``,
    optionally with ``"type": "auth"``)."""
    return bool(message.keys() - ENVELOPE) and message.get("type") != "auth"


async def _submit_from_message(
    websocket: WebSocket, engine: Engine, caller: Caller, message: dict[str, Any] | None
) -> UUID:
    """Submit the order carried by ``message`` (already read, once, for the key), or
    by the next message; the same use case, in the same order, as the POST."""
    settings = engine.settings
    if message is None:
        message = await receive_object(
            websocket,
            ORDER_MESSAGE,
            max_bytes=settings.max_body_bytes,
            timeout_s=FIRST_MESSAGE_TIMEOUT_S,
        )
        if message is None:
            raise SocketRejected(
                ErrorCode.INVALID_REQUEST.value,
                f"the order message is not a JSON object: expected {ORDER_SHAPE}",
                CLOSE_POLICY,
            )
        client = websocket.client.host if websocket.client else None
        caller = await key_in_message(engine, caller, message, client)
    key = _idempotency_key(websocket, message)
    order = {name: value for name, value in message.items() if name not in ENVELOPE}
    try:
        request = order_from_json(order, engine.orders)
        accepted = await submit_use_case(engine)(request, owner=caller.owner, key=key)
    except RequestProblem as problem:
        raise SocketRejected(problem.code, problem.message, CLOSE_POLICY) from None
    except SubmitRefused as refused:
        status = submit_problem(refused)
        close_code = CLOSE_UNAVAILABLE if status.status in (409, 503) else CLOSE_POLICY
        raise SocketRejected(status.code, refused.message, close_code) from None
    except TransientError as exc:
        raise SocketRejected(
            ErrorCode.SERVICE_UNAVAILABLE.value, exc.message, CLOSE_UNAVAILABLE
        ) from None
    except EngineError as exc:
        raise SocketRejected(exc.code.value, exc.message, CLOSE_POLICY) from None
    reply: dict[str, Any] = {"orderId": str(accepted.order_id)}
    if accepted.replayed:
        reply["replayed"] = True
    await websocket.send_text(orjson.dumps(reply).decode())
    return accepted.order_id


def _idempotency_key(websocket: WebSocket, message: dict[str, Any]) -> str | None:
    """``idempotencyKey`` in the order message, else the upgrade's ``Idempotency-Key``."""
    raw = message.get("idempotencyKey", websocket.headers.get("idempotency-key"))
    if raw is not None and not isinstance(raw, str):
        raise SocketRejected(
            INVALID_IDEMPOTENCY_KEY,
            f"idempotencyKey: expected a string, got {shown(raw)}",
            CLOSE_POLICY,
        )
    try:
        return idempotency_key(raw)
    except RequestProblem as problem:
        raise SocketRejected(problem.code, problem.message, CLOSE_POLICY) from None


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
