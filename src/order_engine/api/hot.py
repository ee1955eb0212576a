"""The two hot endpoints, ``POST`` and WebSocket ``/api/orders/execute``, and the
long-lived account stream socket, ``/api/orders/stream``, served without
FastAPI's router.

Every order crosses both, and Starlette/FastAPI put a dozen ASGI layers (error
middleware, telemetry, exception wrappers, an exit stack, router matching,
dependency solving) between the server and the handler: about a third of a
millisecond per order, more than the order's routing costs (see
docs/performance.md); and a socket routed that way keeps those layers' frames
alive for as long as it is open. ``EngineApp`` sends these requests straight to
the same handlers, behind the same guards this project adds (fresh log context,
the open-mode host check, the body limit) and with the same exception handlers,
looked up the way Starlette does; every other request, and these two paths
with any other method, take the whole stack as before. The tests exercise the
guards through this path (it is the one a client takes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import FastAPI, Request, WebSocket
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from order_engine.api.account_ws import STREAM_PATH, account_socket
from order_engine.api.auth import authenticated
from order_engine.api.middleware import BodySizeLimit, FreshLogContext, LoopbackWhileOpen
from order_engine.api.routes import EXECUTE_PATH, execute_order
from order_engine.api.ws import order_socket

Handler = Callable[[Any, Exception], Awaitable[Response | None]]


class EngineApp(FastAPI):
    """FastAPI, with the execute path's POST and WebSocket, and the account stream's
    WebSocket, short-circuited."""

    _hot_post: ASGIApp | None = None
    _hot_sockets: dict[str, ASGIApp] | None = None

    def install_hot_paths(
        self, *, max_body_bytes: int, body_timeout_s: float, open_mode_hosts: list[str]
    ) -> None:
        """Build the two short paths (call once the exception handlers are installed)."""

        def guarded(app: ASGIApp) -> ASGIApp:
            return FreshLogContext(LoopbackWhileOpen(app, hosts=open_mode_hosts))

        self._hot_post = guarded(
            BodySizeLimit(self._post, max_bytes=max_body_bytes, timeout_s=body_timeout_s)
        )
        # A routed socket also keeps every frame and scope copy of that path alive for
        # as long as it is open: about 12 KB of each idle account-stream socket's 38
        # (docs/performance.md, "Memory: an open socket and an order in flight").
        self._hot_sockets = {
            EXECUTE_PATH: guarded(self._socket(order_socket)),
            STREAM_PATH: guarded(self._socket(account_socket)),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket" and self._hot_sockets is not None:
            socket_app = self._hot_sockets.get(scope["path"])
            if socket_app is not None:
                scope["app"] = self
                await socket_app(scope, receive, send)
                return
        if (
            kind == "http"
            and self._hot_post is not None
            and scope["path"] == EXECUTE_PATH
            and scope["method"] == "POST"
        ):
            scope["app"] = self
            await self._hot_post(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await execute_order(request, await authenticated(request))
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            handled = await handler(request, exc)
            if handled is None:  # pragma: no cover - HTTP handlers always answer
                raise
            response = handled
        await response(scope, receive, send)

    def _socket(self, serve: Callable[[WebSocket], Awaitable[None]]) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            websocket = WebSocket(scope, receive, send)
            try:
                await serve(websocket)
            except Exception as exc:
                # As Starlette's ExceptionMiddleware does for a socket: a registered
                # handler (a backend outage: close 1013) answers; anything else goes
                # to the server, which closes the socket with 1011.
                handler = self._handler_for(exc, sockets=True)
                if handler is None:
                    raise
                await handler(websocket, exc)

        return app

    def _handler_for(self, exc: Exception, *, sockets: bool = False) -> Handler | None:
        """The exception handler Starlette would pick: the nearest class in the MRO.
        ``Exception``'s own handler is the server-error one, which Starlette runs
        for HTTP only."""
        # Every handler install_error_handlers registers is async (Starlette allows sync).
        handlers = cast("dict[Any, Handler]", self.exception_handlers)
        for cls in type(exc).__mro__:
            if cls is Exception and sockets:
                return None
            if cls in handlers:
                return handlers[cls]
        return None
