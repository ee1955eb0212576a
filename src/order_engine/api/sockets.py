"""What the two WebSockets share: refusals as an error message plus a close code,
reading the first message within a bound, and sending a stream until it ends
or the client leaves, whichever comes first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import WebSocket, WebSocketDisconnect

from order_engine.api.errors import RequestProblem
from order_engine.api.order_input import load_json
from order_engine.domain.errors import ErrorCode

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_UNAVAILABLE = 1013  # try again later
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4008  # the client read too slowly: its bounded buffer filled
CLOSE_RATE_LIMITED = 4429
FIRST_MESSAGE_TIMEOUT_S = 10.0


class OpenSockets:
    """The WebSockets this app holds open (the gauge ``GET /metrics`` reports):
    counted at the edge that accepts them, from the handshake to the close."""

    def __init__(self) -> None:
        self.count = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


def open_sockets(app: Any) -> OpenSockets:
    """The app's counter (``create_app`` puts one in its state)."""
    sockets: OpenSockets = app.state.sockets
    return sockets


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
            f"expected {expected} within {timeout_s:g} s",
            CLOSE_POLICY,
        ) from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    raw: str | bytes = message.get("text") or message.get("bytes") or b""
    return raw


def too_large(size: int, max_bytes: int) -> SocketRejected:
    return SocketRejected(
        ErrorCode.PAYLOAD_TOO_LARGE.value,
        f"message of {size} bytes exceeds {max_bytes} bytes: expected a message of a few "
        "hundred bytes",
        CLOSE_POLICY,
    )


async def receive_object(
    websocket: WebSocket, expected: str, *, max_bytes: int, timeout_s: float
) -> dict[str, Any] | None:
    """The first message, bounded in size and time, parsed once and exactly (numbers
    as ``Decimal``, as an HTTP body is); ``None`` if it is JSON but not an object."""
    raw = await receive_first(websocket, expected, timeout_s)
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise too_large(size, max_bytes)
    try:
        value = load_json(raw)
    except RequestProblem as refused:
        raise SocketRejected(refused.code, refused.message, CLOSE_POLICY) from None
    return value if isinstance(value, dict) else None


async def watch_disconnect(websocket: WebSocket) -> None:
    # Reading is the only way to notice a client that went away while we wait;
    # whatever else the client sends meanwhile is ignored.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


@dataclass(frozen=True, slots=True)
class Ended:
    """How ``send_until_disconnect`` ended: the client ``left``, or the stream
    stopped by itself (``error`` ``None``: it finished), or was ``cancelled`` from
    outside (a stream tailer does that to a consumer that is too slow)."""

    left: bool = False
    cancelled: bool = False
    error: BaseException | None = None


async def send_until_disconnect(
    websocket: WebSocket, messages: AsyncGenerator[str, None], sent: Callable[[], None]
) -> Ended:
    """Send ``messages`` until they end or the client disconnects; ``sent`` after each.

    Sending alone would not notice a client that left while the stream waits
    for its next event, so a second task reads the socket meanwhile; whichever
    finishes first cancels the other, and the generator is closed (releasing
    its subscription) even when a send is what gets cancelled.
    """

    async def pump() -> None:
        async with contextlib.aclosing(messages):
            async for message in messages:
                await websocket.send_text(message)
                sent()

    sender = asyncio.create_task(pump())
    watcher = asyncio.create_task(watch_disconnect(websocket))
    try:
        done, _ = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, watcher):
            task.cancel()
        for task in (sender, watcher):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
    if sender not in done:
        return Ended(left=True)
    if sender.cancelled():
        return Ended(cancelled=True)
    error = sender.exception()
    if isinstance(error, (WebSocketDisconnect, RuntimeError)):
        return Ended(left=True)  # the send found the socket gone
    return Ended(error=error)


async def send_error(websocket: WebSocket, code: str, message: str) -> None:
    payload: dict[str, Any] = {"type": "error", "code": code, "message": message}
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(orjson.dumps(payload).decode())


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code, reason[:120])
