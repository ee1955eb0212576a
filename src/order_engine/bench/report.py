"""The run's results: one JSON-able document (``--json``), and the text report
rendered from that same document, so that the two can never disagree."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from order_engine.bench.loadgen import UNFINISHED, LoadResult, OrderRecord
from order_engine.bench.procstat import CpuUsage
from order_engine.bench.stats import (
    StreamTally,
    check_stream,
    new_histogram,
    per_second,
    record_seconds,
    summarize,
    tally_outcomes,
)
from order_engine.bench.verify import Inspection

MB = 1024 * 1024
STREAM_EXAMPLES = 10


@dataclass(frozen=True)
class Watched:
    """A server process whose CPU and memory the report includes."""

    pid: int
    role: str
    peak_rss_bytes: int | None
    exit_code: int | None = None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _latencies(records: Sequence[OrderRecord], open_loop: bool) -> dict[str, Any]:
    post, terminal, lag = new_histogram(), new_histogram(), new_histogram()
    for r in records:
        if r.post_end:
            record_seconds(post, r.post_end - r.post_start)
        if r.terminal_at is not None:
            record_seconds(terminal, r.terminal_at - r.post_start)
        if open_loop and r.post_start:
            record_seconds(lag, max(r.post_start - r.due, 0.0))
    out = {
        "post": summarize(post).as_dict(),
        "submit_to_terminal": summarize(terminal).as_dict(),
    }
    if open_loop:
        out["schedule_lag"] = summarize(lag).as_dict()
    return out


def _server_latency(inspection: Inspection) -> tuple[dict[str, Any], list[float], float]:
    """pending -> terminal from stored timestamps; also the terminal offsets from
    the first stored pending event (server clock) and the span they cover."""
    hist = new_histogram()
    starts = [s.pending_at for s in inspection.stored.values() if s.pending_at]
    if not starts:
        return summarize(hist).as_dict(), [], 0.0
    origin = min(starts)
    offsets: list[float] = []
    for s in inspection.stored.values():
        if s.pending_at and s.terminal_at:
            record_seconds(hist, (s.terminal_at - s.pending_at).total_seconds())
            offsets.append((s.terminal_at - origin).total_seconds())
    return summarize(hist).as_dict(), offsets, max(offsets, default=0.0)


def _streams(
    records: Sequence[OrderRecord], inspection: Inspection | None
) -> tuple[dict[str, Any], list[str]]:
    tally = StreamTally()
    stored_events = delivered = short = 0
    examples: list[dict[str, Any]] = []
    for r in records:
        if not r.subscribed:
            continue
        check = check_stream(r.seqs, r.statuses)
        tally.add(check, r.close_code)
        if not check.complete and len(examples) < STREAM_EXAMPLES:
            examples.append(
                {
                    "orderId": r.order_id,
                    "seqs": r.seqs,
                    "statuses": r.statuses,
                    "closeCode": r.close_code,
                    "error": r.error,
                }
            )
        stored = inspection.stored.get(r.order_id or "") if inspection else None
        # A stream the client abandoned at the drain timeout is counted as
        # unfinished already; events stored after that were never due to it.
        if stored is not None and r.error != UNFINISHED:
            stored_events += stored.events
            got = len(set(r.seqs))
            delivered += min(got, stored.events)
            short += got < stored.events
    events: dict[str, Any] = {**tally.as_dict(), "incomplete_examples": examples}
    problems: list[str] = []
    if tally.incomplete:
        problems.append(f"{tally.incomplete} of {tally.streams} streams incomplete")
    if inspection is not None and tally.streams:
        events.update(stored=stored_events, delivered=delivered, orders_short=short)
        if short:
            problems.append(f"{short} subscribers received fewer events than were stored")
    return events, problems


def build(
    *,
    config: dict[str, Any],
    target: dict[str, Any],
    machine: dict[str, Any],
    result: LoadResult,
    cpu: CpuUsage,
    client_peak_rss: int,
    peaks: dict[str, int],
    watched: Sequence[Watched],
    inspection: Inspection | None,
    verified: bool,
    open_loop: bool,
    subscribed: bool,
) -> dict[str, Any]:
    records = result.records
    accepted = [r for r in records if r.order_id is not None]
    finished = [r for r in accepted if r.terminal_status is not None]
    errors = Counter(r.error for r in records if r.error and r.order_id is None)
    # Without WebSockets and without the database nothing shows an order finishing.
    observable = subscribed or inspection is not None
    unfinished = [r for r in accepted if r.terminal_status is None] if observable else []
    problems: list[str] = []
    if errors:
        problems.append(f"{sum(errors.values())} orders not accepted")
    if unfinished:
        problems.append(f"{len(unfinished)} accepted orders not terminal within the bounds")

    post_ends = [r.post_end for r in accepted]
    submit_span = (max(post_ends) - result.started) if post_ends else 0.0
    observed = [r.terminal_at - result.started for r in finished if r.terminal_at is not None]
    window = max(observed, default=0.0)
    source = "client"
    server: dict[str, Any] | None = None
    if inspection is not None:
        server, server_offsets, server_span = _server_latency(inspection)
        if not subscribed:  # the store's clock is the only witness of the ends
            observed, window, source = server_offsets, server_span, "database timestamps"
    profile = per_second(observed, window)
    latency = _latencies(records, open_loop)
    if server is not None:
        latency["server_pending_to_terminal"] = server
    events, stream_problems = _streams(records, inspection)
    problems += stream_problems
    verify = None
    if inspection is not None and verified:
        verify = inspection.as_dict()
        if inspection.violating_orders:
            problems.append(f"--verify: {inspection.violating_orders} orders violate invariants")
    servers = []
    completed = len(finished) if observable else len(accepted)
    for w in watched:
        cores = cpu.watched_cores.get(w.pid)
        cpu_s = cpu.watched_cpu_s.get(w.pid)
        servers.append(
            {
                "pid": w.pid,
                "role": w.role,
                "cpu_cores": _round(cores),
                "cpu_ms_per_order": _round(cpu_s * 1000 / completed, 4)
                if cpu_s is not None and completed
                else None,
                "peak_rss_mb": _round(w.peak_rss_bytes / MB, 1) if w.peak_rss_bytes else None,
                "exit_code": w.exit_code,
            }
        )
        if w.exit_code not in (None, 0):
            problems.append(f"{w.role} (pid {w.pid}) exited with {w.exit_code}")
    return {
        "tool": "order-engine bench",
        "config": config,
        "target": target,
        "machine": machine,
        "orders": {
            "submitted": len(records),
            "accepted": len(accepted),
            "not_accepted": sum(errors.values()),
            "not_accepted_by_reason": dict(errors.most_common()),
            "terminal": len(finished) if observable else None,
            "unfinished": len(unfinished) if observable else None,
            "peak_in_flight": peaks.get("in_flight", 0),
            "peak_subscribers": peaks.get("subscribers", 0),
        },
        "throughput": {
            "terminal_window_s": _round(window),
            "terminal_per_s": _round(len(observed) / window if window else 0.0, 1),
            "terminal_source": source if observable else None,
            "submit_window_s": _round(submit_span),
            "submit_per_s": _round(len(accepted) / submit_span if submit_span else 0.0, 1),
            "offered_per_s": config.get("rate"),
            "steady_terminal_per_s": {
                "min": profile.quantile(0.0),
                "p50": profile.quantile(0.5),
                "max": profile.quantile(1.0),
            },
            "terminal_per_second": profile.per_second,
        },
        "latency": latency,
        "events": events,
        "outcomes": tally_outcomes(
            (r.terminal_status, r.terminal_code) for r in finished if r.terminal_status
        ),
        "client": {
            "cpu_cores": _round(cpu.client_cores),
            "cpu_ms_per_order": _round(cpu.client_cpu_s * 1000 / len(records), 4)
            if records
            else None,
            "peak_rss_mb": _round(client_peak_rss / MB, 1),
        },
        "servers": servers,
        "machine_load": {
            "measured_s": _round(cpu.wall_s),
            "busy_cores": _round(cpu.machine_cores),
            "others_cores": _round(cpu.others_cores),
            "loadavg_before": machine.get("loadavg_before"),
            "loadavg_after": machine.get("loadavg_after"),
        },
        "verify": verify,
        "problems": problems,
        "ok": not problems,
    }
