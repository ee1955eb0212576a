"""The live progress line on stderr: redrawn in place on a terminal, a plain
line every few seconds otherwise (CI logs). Costs one short write per tick."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from time import perf_counter
from typing import TextIO

from order_engine.bench.loadgen import Live

TTY_INTERVAL_S = 0.25
LOG_INTERVAL_S = 5.0
BAR_WIDTH = 24


def render(
    live: Live, elapsed_s: float, duration_s: float, orders: int, rates: tuple[float, float]
) -> str:
    # The bar follows whichever bound is nearer: the order count or the duration.
    done = max(live.submitted / max(orders, 1), elapsed_s / max(duration_s, 1e-9))
    filled = min(BAR_WIDTH, int(done * BAR_WIDTH))
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return (
        f"[{bar}] {elapsed_s:5.1f}s  submitted {live.submitted}  terminal {live.terminal}  "
        f"in-flight {live.in_flight}  ws {live.subscribers}  "
        f"orders/s: terminal {rates[0]:,.0f} submit {rates[1]:,.0f}"
    )


class ProgressLine:
    def __init__(
        self, live: Live, *, duration_s: float, orders: int, stream: TextIO | None = None
    ) -> None:
        self.live = live
        self.duration_s = duration_s
        self.orders = orders
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    async def _run(self) -> None:
        interval = TTY_INTERVAL_S if self.tty else LOG_INTERVAL_S
        started = last_at = perf_counter()
        last_terminal = last_submitted = 0
        while True:
            await asyncio.sleep(interval)
            now = perf_counter()
            span = max(now - last_at, 1e-9)
            live = self.live
            rates = (
                (live.terminal - last_terminal) / span,
                (live.submitted - last_submitted) / span,
            )
            last_at, last_terminal, last_submitted = now, live.terminal, live.submitted
            line = render(live, now - started, self.duration_s, self.orders, rates)
            self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
            self.stream.flush()
