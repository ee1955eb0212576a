"""What the serving commands (`serve`, `api`, `worker`) share."""

from __future__ import annotations

import logging
import signal


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
