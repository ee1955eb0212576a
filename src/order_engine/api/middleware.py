"""Request-body size limit, enforced before the body is parsed.

A declared ``Content-Length`` over the limit is refused at once. Otherwise the
body (chunked or not) is read here, counted as it streams, and refused as soon
as it passes the limit; a body within the limit is handed to the app whole.

Reading the body here rather than counting inside the app's ``receive`` is what
makes a chunked body get its 413: FastAPI turns any exception raised while it
reads the body into a 400 "error parsing the body".

After a 413 the server does not close the connection: uvicorn reads and
discards the rest of the body, so the client gets to read the response instead
of a connection reset in the middle of its upload.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import unquote_plus, urlsplit

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from order_engine.api.errors import problem
from order_engine.domain.errors import ErrorCode


class _ClientLeft(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s  # the whole body, however it is chunked

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                chunks = await self._read(receive)
        except _ClientLeft:
            return
        except TimeoutError:
            response = problem(
                408,
                "request_timeout",
                f"request body not received within {self.timeout_s:g} s: expected the whole "
                "body at once (an order is a few hundred bytes)",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        if chunks is None:
            await self._refuse(scope, receive, send)
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only http.disconnect is left

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> list[bytes] | None:
        """The body's chunks; ``None`` once it passes the limit (or the client left)."""
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientLeft  # before sending its whole body
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"request body exceeds {self.max_bytes} bytes: expected an order of a few "
            "hundred bytes",
        )
        await response(scope, receive, send)


class FreshLogContext:
    """Each request and WebSocket starts with empty structlog context variables, so
    that an ``orderId`` bound while handling one never shows on another's lines."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            structlog.contextvars.clear_contextvars()
        await self.app(scope, receive, send)


# Query parameters that carry a secret, compared after percent-decoding and
# case-folding the name: ``%61piKey``, ``APIKEY`` and ``api%5Fkey`` are all keys.
SECRET_PARAMETERS = frozenset({"apikey", "api_key", "api-key", "key", "token", "ticket"})


def redact_query(text: str) -> str:
    """``text`` with the value of every secret query parameter of every URL in it
    blanked. Each ``?query`` is parsed into its parameters and each name decoded
    before it is compared, so no spelling of a name slips past a pattern."""
    if "?" not in text:
        return text
    words = text.split(" ")
    for i, word in enumerate(words):
        path, mark, query = word.partition("?")
        if not mark:
            continue
        quoted = query.endswith('"')
        pairs = (query[:-1] if quoted else query).split("&")
        for j, pair in enumerate(pairs):
            name, _, _ = pair.partition("=")
            if unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
                pairs[j] = f"{name}=[redacted]"
        words[i] = f"{path}?{'&'.join(pairs)}" + ('"' if quoted else "")
    return " ".join(words)


class RedactApiKeys(logging.Filter):
    """Blanks secret query parameters (``apiKey=...``, however spelled) in log
    records: uvicorn logs each WebSocket's path with its query string, and a key
    passed as ``?apiKey=`` must not land in logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def redact_api_keys_in_server_logs() -> None:
    """Install ``RedactApiKeys`` on uvicorn's loggers (once)."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactApiKeys) for f in logger.filters):
            logger.addFilter(RedactApiKeys())


class LoopbackWhileOpen:
    """While the API needs no key, serve only requests addressed to an allowed host
    (``OPEN_MODE_HOSTS``, loopback by default) and, when they carry an ``Origin``,
    sent from a page of such a host: a DNS-rebound name, or a cross-site WebSocket
    from a page the user happens to visit, gets a 403 instead of the wallet.
    Once keys are enforced a request without a key is a 401 anyway, and browsers
    cannot attach one for another site, so the check stands aside."""

    def __init__(self, app: ASGIApp, hosts: list[str]) -> None:
        self.app = app
        self.hosts = frozenset(h.lower().strip("[]") for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not await self._open(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        host = _hostname(headers.get(b"host", b"").decode("latin-1"))
        origin = headers.get(b"origin")
        refused = None
        if host not in self.hosts:
            refused = f"Host {host[:60]!r}"
        elif origin is not None:
            origin_host = _hostname(urlsplit(origin.decode("latin-1")).netloc)
            if origin_host not in self.hosts:
                refused = f"Origin {origin.decode('latin-1')[:80]!r}"
        if refused is None:
            await self.app(scope, receive, send)
            return
        message = (
            f"{refused} is not allowed while the API is open (no API key required): expected "
            f"one of {', '.join(sorted(self.hosts))} (OPEN_MODE_HOSTS), or create an API key"
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        await problem(403, "forbidden_host", message)(scope, receive, send)

    @staticmethod
    async def _open(scope: Scope) -> bool:
        engine = getattr(scope["app"].state, "engine", None)
        return engine is not None and not await engine.gateway.auth.enforced()


def _hostname(netloc: str) -> str:
    """The host of ``host[:port]`` (or ``[v6]:port``), lower-cased."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:].partition("]")[0]
    return netloc.rpartition(":")[0] if netloc.count(":") == 1 else netloc
