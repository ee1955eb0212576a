"""Long-lived WebSockets served straight from the ASGI middleware stack, not through
FastAPI's router.

A socket routed by FastAPI keeps, for as long as it is open, every frame and
object of the routing path alive: Starlette's exception middleware and router,
FastAPI's route wrapper with its ``AsyncExitStack`` and solved dependencies, the
scope copies each layer makes. That is about 11 KB per socket, a quarter of an
idle account-stream socket's whole cost (docs/performance.md, "Where an open
socket's bytes go"). The account stream takes no dependencies and no path
parameters, so this middleware hands its sockets to the handler directly; it
sits inside the host check and the fresh log context, so those still apply.
The route stays declared on the FastAPI router too (it is what a test client
mounted without this middleware, and the API docs, see).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

SocketHandler = Callable[[WebSocket], Awaitable[None]]


class DirectSockets:
    def __init__(self, app: ASGIApp, routes: Mapping[str, SocketHandler]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get(scope["path"]) if scope["type"] == "websocket" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        await handler(WebSocket(scope, receive, send))
