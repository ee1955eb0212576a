"""What the two WebSockets share: refusals as an error message plus a close code,
reading the first message within a bound, and watching for the client leaving."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from fastapi import WebSocket, WebSocketDisconnect

from order_engine.domain.errors import ErrorCode

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_UNAVAILABLE = 1013  # try again later
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_RATE_LIMITED = 4429
FIRST_MESSAGE_TIMEOUT_S = 10.0


class SocketRejected(Exception):
    """Refuse the socket: send ``{"type": "error", code, message}``, then close."""

    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code, self.message, self.close_code = code, message, close_code


async def reject(websocket: WebSocket, rejected: SocketRejected) -> None:
    await send_error(websocket, rejected.code, rejected.message)
    await close(websocket, rejected.close_code, rejected.message)


async def receive_first(
    websocket: WebSocket, expected: str, timeout_s: float = FIRST_MESSAGE_TIMEOUT_S
) -> str | bytes:
    """The first message, within ``timeout_s``; ``expected`` says what it should have
    been, for the refusal."""
    try:
        async with asyncio.timeout(timeout_s):
            message = await websocket.receive()
    except TimeoutError:
        raise SocketRejected(
            ErrorCode.INVALID_REQUEST.value,
            f"expected {expected} within {timeout_s:.0f} s",
            CLOSE_POLICY,
        ) from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    raw: str | bytes = message.get("text") or message.get("bytes") or b""
    return raw


def json_object(raw: str | bytes) -> dict[str, Any] | None:
    """``raw`` as a JSON object, or ``None`` if it is not one."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def watch_disconnect(websocket: WebSocket) -> None:
    # Reading is the only way to notice a client that went away while we wait;
    # whatever else the client sends meanwhile is ignored.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def send_error(websocket: WebSocket, code: str, message: str) -> None:
    payload: dict[str, Any] = {"type": "error", "code": code, "message": message}
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(orjson.dumps(payload).decode())


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code, reason[:120])
