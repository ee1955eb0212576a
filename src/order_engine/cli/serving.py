"""What the serving commands (`serve`, `api`, `worker`) share."""

from __future__ import annotations

import logging
import signal
import socket
from typing import Any

import typer

from order_engine.settings import Settings


def exit_zero_after_drain() -> None:
    """Uvicorn drains on SIGINT/SIGTERM, then re-raises the signal so that the
    process dies of it (exit -15). A drained shutdown is a success: turn the
    re-raised signal into exit 0."""

    def exit_zero(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, exit_zero)
    signal.signal(signal.SIGINT, exit_zero)


class _WebSocketAccessLines(logging.Filter):
    """uvicorn logs every WebSocket handshake ('... "WebSocket /path" [accepted]')
    on its error logger at INFO: an access log by another name."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith('%s - "WebSocket %s"'))


def quiet_access_lines(access_log: bool) -> None:
    """Without ``ACCESS_LOG``, drop uvicorn's per-WebSocket lines too (errors stay)."""
    logger = logging.getLogger("uvicorn.error")
    present = [f for f in logger.filters if isinstance(f, _WebSocketAccessLines)]
    if access_log:
        for f in present:
            logger.removeFilter(f)
    elif not present:
        logger.addFilter(_WebSocketAccessLines())


def dashboard_line(host: str, port: int) -> str:
    # A wildcard bind is reachable on loopback; the URL should be one to click.
    wildcard = host in ("0.0.0.0", "", "::")  # noqa: S104 - recognised, not bound
    shown = "127.0.0.1" if wildcard else f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    return f"order-engine: ready. Dashboard {url}/  (API docs {url}/docs)"


def run_server(app: Any, **config: Any) -> None:
    """``uvicorn.run`` for an app object, ending start-up with one line naming the
    dashboard's URL: the last thing a newcomer sees after `make run` is where to
    look. (uvicorn is imported here, not at the top: `--help` stays fast.)"""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and self.servers:
                port = self.servers[0].sockets[0].getsockname()[1]
                line = dashboard_line(self.config.host, port)
                typer.secho(line, err=True, fg=typer.colors.GREEN, bold=True)

    AnnouncingServer(uvicorn.Config(app, **config)).run()


def server_limits(settings: Settings) -> dict[str, Any]:
    """What uvicorn bounds at the edge, before the app sees anything: WebSocket
    frames and messages (``MAX_WS_MESSAGE_BYTES``, instead of its 16 MiB default) and
    concurrent connections and requests (``MAX_CONNECTIONS``: 503 beyond it), and the
    accept queue (``LISTEN_BACKLOG``, uvicorn's 2,048 by default); and
    what each open WebSocket costs while it waits: no permessage-deflate unless
    ``WS_PER_MESSAGE_DEFLATE`` (two zlib contexts, about 40 KB a socket), a keepalive
    ping every ``WS_PING_INTERVAL_S``, a kernel send buffer of ``WS_SEND_BUFFER_BYTES``,
    and a protocol object that drops its handshake once answered (``cli/ws_protocol.py``)."""
    from order_engine.cli.ws_protocol import lean_protocol

    return {
        "ws": lean_protocol(settings.ws_send_buffer_bytes),
        "ws_max_size": settings.max_ws_message_bytes,
        "ws_per_message_deflate": settings.ws_per_message_deflate,
        "ws_ping_interval": settings.ws_ping_interval_s or None,
        "ws_ping_timeout": settings.ws_ping_timeout_s,
        "limit_concurrency": settings.max_connections,
        "backlog": settings.listen_backlog,
    }
