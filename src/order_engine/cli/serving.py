"""What the serving commands (`serve`, `api`, `worker`) share."""

from __future__ import annotations

import signal


def exit_zero_after_drain() -> None:
    """Uvicorn drains on SIGINT/SIGTERM, then re-raises the signal so that the
    process dies of it (exit -15). A drained shutdown is a success: turn the
    re-raised signal into exit 0."""

    def exit_zero(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, exit_zero)
    signal.signal(signal.SIGINT, exit_zero)
