"""WebSocket ``/api/orders/stream``: every event of every order of the caller's key.

* ``?after=<cursor>``: replay from there (each event carries its ``cursor``);
  without it, the stream starts at the current end of the log (live only);
  ``after=0`` replays everything.
* The first message sent is ``{"type": "subscribed", "cursor": ...}``, the
  position the stream starts after; then events, each one the same message
  as on the per-order stream plus ``cursor``. Reconnecting with the last
  cursor received misses nothing and repeats nothing (``app/account_stream.py``).
* A client that reads too slowly for its bounded buffer (``STREAM_BUFFER_EVENTS``)
  is closed with 4008 and a reason naming the cursor to resume from.
* Keys as on the order socket (header, ``?apiKey=``, or a first message
  ``{"apiKey": ..., "after": ...}``); errors likewise (4401, 4429, 1008 for a
  malformed cursor).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from order_engine.api.auth import authenticate_socket
from order_engine.api.problems import INVALID_CURSOR
from order_engine.api.sockets import (
    CLOSE_POLICY,
    CLOSE_TOO_SLOW,
    CLOSE_UNAVAILABLE,
    SocketRejected,
    close,
    open_sockets,
    reject,
    send_error,
    send_until_disconnect,
)
from order_engine.app.account_stream import AccountStream, open_account_stream
from order_engine.domain.errors import ErrorCode
from order_engine.ports.order_queries import START, EventCursor

if TYPE_CHECKING:
    from order_engine.bootstrap import Engine

log = structlog.get_logger(__name__)

STREAM_PATH = "/api/orders/stream"
_CURSOR = re.compile(r"(?:([0-9]{1,19})-)?([0-9]{1,19})")
_BIGINT_MAX = 2**63 - 1

router = APIRouter()


def parse_cursor(raw: Any) -> EventCursor | None:
    """``None`` for no cursor; ``txid-position`` (or a bare position, txid 0) otherwise."""
    if raw is None:
        return None
    match = _CURSOR.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise SocketRejected(
            INVALID_CURSOR,
            f"after: expected a cursor received from this stream (or 0), got {str(raw)[:40]!r}",
            CLOSE_POLICY,
        )
    txid, position = int(match.group(1) or 0), int(match.group(2))
    if txid > _BIGINT_MAX or position > _BIGINT_MAX:
        raise SocketRejected(INVALID_CURSOR, "after: cursor out of range", CLOSE_POLICY)
    return EventCursor(txid, position)


@router.websocket(STREAM_PATH)
async def account_socket(websocket: WebSocket) -> None:
    engine: Engine = websocket.app.state.engine
    await websocket.accept()
    try:
        caller, first = await authenticate_socket(websocket, engine, expecting="")
        raw_after = websocket.query_params.get("after", (first or {}).get("after"))
        after = parse_cursor(raw_after)
        queries = engine.gateway.queries
        if after is not None and after > START and after > await queries.account_head(None):
            raise SocketRejected(
                INVALID_CURSOR,
                f"after: cursor {after} is beyond the end of the event log: expected a cursor "
                "received from this stream, or 0",
                CLOSE_POLICY,
            )
        stream = await open_account_stream(
            caller.owner, queries=queries, tailer=engine.streams, after=after
        )
    except SocketRejected as rejected:
        await reject(websocket, rejected)
        return
    except WebSocketDisconnect:
        return
    with open_sockets(websocket.app).held():
        await _stream(websocket, engine, stream)


async def _stream(websocket: WebSocket, engine: Engine, stream: AccountStream) -> None:
    metrics = engine.gateway.metrics
    hello: dict[str, Any] = {"type": "subscribed", "cursor": str(stream.cursor)}
    try:
        await websocket.send_text(orjson.dumps(hello).decode())
    except (WebSocketDisconnect, RuntimeError):
        stream.close()
        return
    ended = await send_until_disconnect(
        websocket, stream.messages(), lambda: metrics.events_delivered("account")
    )
    stream.close()  # already closed unless the stream never started
    if ended.left:
        return
    if stream.too_slow:
        await close(
            websocket, CLOSE_TOO_SLOW, f"too slow: reconnect with after={stream.cursor} to resume"
        )
        return
    log.error("account_stream_failed", owner=stream.owner, error=repr(ended.error))
    await send_error(
        websocket,
        ErrorCode.SERVICE_UNAVAILABLE.value,
        f"stream interrupted; reconnect with after={stream.cursor} to resume",
    )
    await close(websocket, CLOSE_UNAVAILABLE, "stream interrupted")
