"""The bench's options, as the command parsed them: shared by the command and its runner."""

from __future__ import annotations

import enum
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from order_engine.bench.schedule import Arrivals, Pair

DEFAULT_CONCURRENCY = 10  # the seed's concurrent-load-test


class Subscribe(enum.StrEnum):
    PER_ORDER = "per-order"
    NONE = "none"


@dataclass(frozen=True)
class BenchOptions:
    urls: list[str]
    orders: int
    concurrency: int | None
    rate: float | None
    arrivals: Arrivals
    duration_s: float
    drain_timeout_s: float
    pairs: list[Pair]
    sizes: list[str]
    slippage_bps: int | None
    seed: int
    subscribe: bool
    json_file: Path | None
    verify: bool
    database_url: str | None
    api_key: str | None
    sim_time_scale: float | None
    worker_concurrency: int | None
    engine_env: dict[str, str]
    watch_pids: list[tuple[str, int]]
    max_in_flight: int
    progress: bool
    self_test: bool
    keep_workdir: bool
    argv: list[str] = field(default_factory=list)


def command_line(options: BenchOptions) -> str:
    return shlex.join(options.argv)
