"""Pure measurement logic: latency summaries, stream completeness, tallies.

Nothing here does I/O or reads a clock, so every rule the report relies on
(what "complete" means for a stream, which percentile is which) is unit-tested.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from order_engine.domain.order import TERMINAL as TERMINAL_STATUSES

# The domain's terminal statuses, as the wire spells them: a new one (expired,
# cancelled) ends a stream here as it does in the engine.
TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)
# Microsecond resolution, one hour range, three significant digits: 0.1 %
# relative error at any latency, in a few tens of kilobytes per histogram.
HIST_LOWEST_US = 1
HIST_HIGHEST_US = 3_600_000_000
HIST_DIGITS = 3
PERCENTILES = (50.0, 95.0, 99.0)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HIST_LOWEST_US, HIST_HIGHEST_US, HIST_DIGITS)


def record_seconds(histogram: HdrHistogram, seconds: float) -> None:
    """Record a duration; values outside the range are clamped rather than lost,
    so that the count always equals the number of observations."""
    micros = min(max(round(seconds * 1_000_000), HIST_LOWEST_US), HIST_HIGHEST_US)
    histogram.record_value(micros)


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds; ``count == 0`` means nothing was observed (all fields 0)."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
        }


def summarize(histogram: HdrHistogram) -> LatencySummary:
    count = int(histogram.get_total_count())
    if count == 0:
        return LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    p50, p95, p99 = (histogram.get_value_at_percentile(p) / 1000 for p in PERCENTILES)
    return LatencySummary(
        count=count,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=histogram.get_max_value() / 1000,
        mean_ms=float(histogram.get_mean_value()) / 1000,
    )


@dataclass(frozen=True)
class StreamCheck:
    """What one order's WebSocket stream delivered, against what it should have.

    A stream is complete when it received seqs exactly ``1..n`` in order, each
    once, and event ``n`` (and no other) is terminal. ``expected`` is ``n`` when
    the terminal event arrived; otherwise the highest seq seen (a lower bound).
    """

    received: int
    expected: int
    missing: int
    duplicates: int
    out_of_order: int
    terminal_events: int
    ends_terminal: bool

    @property
    def complete(self) -> bool:
        return (
            self.ends_terminal
            and self.terminal_events == 1
            and self.missing == 0
            and self.duplicates == 0
            and self.out_of_order == 0
        )


def check_stream(seqs: Sequence[int], statuses: Sequence[str]) -> StreamCheck:
    seen: set[int] = set()
    duplicates = out_of_order = 0
    highest = 0
    for seq in seqs:
        if seq in seen:
            duplicates += 1
            continue
        seen.add(seq)
        if seq < highest:
            out_of_order += 1
        highest = max(highest, seq)
    terminal_events = sum(1 for status in statuses if status in TERMINAL)
    ends_terminal = bool(statuses) and statuses[-1] in TERMINAL
    expected = highest
    if ends_terminal and seqs:
        expected = seqs[-1]
    missing = sum(1 for seq in range(1, expected + 1) if seq not in seen)
    return StreamCheck(
        received=len(seqs),
        expected=expected,
        missing=missing,
        duplicates=duplicates,
        out_of_order=out_of_order,
        terminal_events=terminal_events,
        ends_terminal=ends_terminal,
    )


@dataclass
class StreamTally:
    """Stream checks over a run, as counts of orders."""

    streams: int = 0
    complete: int = 0
    events_received: int = 0
    events_expected: int = 0
    with_missing: int = 0
    with_duplicates: int = 0
    with_out_of_order: int = 0
    without_terminal: int = 0
    with_extra_terminal: int = 0
    abnormal_close: int = 0

    def add(self, check: StreamCheck, close_code: int | None) -> None:
        self.streams += 1
        self.complete += check.complete
        self.events_received += check.received
        self.events_expected += check.expected
        self.with_missing += check.missing > 0
        self.with_duplicates += check.duplicates > 0
        self.with_out_of_order += check.out_of_order > 0
        self.without_terminal += not check.ends_terminal
        self.with_extra_terminal += check.terminal_events > 1
        self.abnormal_close += close_code != 1000

    @property
    def incomplete(self) -> int:
        return self.streams - self.complete

    def as_dict(self) -> dict[str, int]:
        return {
            "streams": self.streams,
            "complete": self.complete,
            "incomplete": self.incomplete,
            "events_received": self.events_received,
            "events_expected": self.events_expected,
            "with_missing": self.with_missing,
            "with_duplicates": self.with_duplicates,
            "with_out_of_order": self.with_out_of_order,
            "without_terminal": self.without_terminal,
            "with_extra_terminal": self.with_extra_terminal,
            "abnormal_close": self.abnormal_close,
        }


def outcome_key(status: str, code: str | None) -> str:
    """``confirmed``, or ``failed:<code>`` (``failed:?`` when the event had none)."""
    if status == "failed":
        return f"failed:{code or '?'}"
    return status


@dataclass(frozen=True)
class RateProfile:
    """Per-second counts of an event over a run, and their spread.

    ``steady`` leaves out the first and last second (ramp-up and the partial
    final bucket), when there are more than two.
    """

    per_second: list[int] = field(default_factory=list)

    @property
    def steady(self) -> list[int]:
        return self.per_second[1:-1] if len(self.per_second) > 2 else list(self.per_second)

    def quantile(self, q: float) -> float:
        values = sorted(self.steady)
        if not values:
            return 0.0
        index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
        return float(values[index])


def per_second(offsets: Iterable[float], span_s: float) -> RateProfile:
    """Counts of ``offsets`` (seconds since the window start) in whole-second buckets."""
    buckets = max(1, int(span_s) + (span_s % 1 > 0))
    counts = [0] * buckets
    for offset in offsets:
        index = min(buckets - 1, max(0, int(offset)))
        counts[index] += 1
    return RateProfile(counts)


def tally_outcomes(outcomes: Iterable[tuple[str, str | None]]) -> dict[str, int]:
    counter = Counter(outcome_key(status, code) for status, code in outcomes)
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))
