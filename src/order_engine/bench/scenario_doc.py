"""The markdown ``make bench`` writes: a section per run of the scenarios,
between marker comments, rendered from the bench's JSON documents (pure)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any


def begin_marker(name: str) -> str:
    return f"<!-- bench:{name}:begin -->"


def end_marker(name: str) -> str:
    return f"<!-- bench:{name}:end -->"


def replace_section(text: str, name: str, section: str) -> str:
    """``text`` with the block between ``name``'s markers replaced by ``section``
    (markers included); appended at the end when the markers are absent."""
    block = f"{begin_marker(name)}\n{section.strip()}\n{end_marker(name)}"
    pattern = re.compile(
        re.escape(begin_marker(name)) + r".*?" + re.escape(end_marker(name)), re.DOTALL
    )
    if pattern.search(text):
        return pattern.sub(lambda _m: block, text, count=1)
    return text.rstrip("\n") + ("\n\n" if text.strip() else "") + block + "\n"


def _num(value: Any, fmt: str = ",.1f") -> str:
    return "-" if value is None else format(value, fmt)


def _lat(summary: Mapping[str, Any], keys: Sequence[str]) -> str:
    if not summary or not summary.get("count"):
        return "-"
    return " / ".join(
        _num(summary[f"{k}_ms"], ",.0f" if summary[f"{k}_ms"] >= 100 else ".1f") for k in keys
    )


def _engine(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    servers: list[Mapping[str, Any]] = doc.get("servers") or [{}]
    return servers[0]


def result_row(key: str, doc: Mapping[str, Any] | None, exit_code: int) -> str:
    if doc is None:
        return f"| {key} | no results (exit {exit_code}) |" + " |" * 9
    orders, tp, lat, ev = doc["orders"], doc["throughput"], doc["latency"], doc["events"]
    steady = tp["steady_terminal_per_s"]["p50"]
    delivered = "-"
    if ev.get("stored"):
        delivered = (
            f"{ev['delivered']:,} / {ev['stored']:,} ({100 * ev['delivered'] / ev['stored']:.1f}%)"
        )
    elif ev.get("streams"):
        delivered = (
            f"{ev['events_received']:,} received, {ev['complete']:,}/{ev['streams']:,} complete"
        )
    verify = doc.get("verify")
    verified = (
        "-"
        if verify is None
        else (
            "clean"
            if not verify["violating_orders"]
            else f"{verify['violating_orders']:,} orders: "
            + ", ".join(f"{k} {v['count']:,}" for k, v in verify["violations"].items())
        )
    )
    statuses = ", ".join(f"{k} {v:,}" for k, v in doc["outcomes"].items()) or "none"
    result = "OK" if doc["ok"] else "; ".join(doc["problems"])
    return (
        f"| {key} | {orders['terminal'] or 0:,} / {orders['submitted']:,} "
        f"| {_num(tp['terminal_per_s'])} ({_num(steady, ',.0f')}) "
        f"| {_num(tp['submit_per_s'])} "
        f"| {_lat(lat['post'], ('p50', 'p99'))} "
        f"| {_lat(lat['submit_to_terminal'], ('p50', 'p95', 'p99', 'max'))} "
        f"| {delivered} | {statuses} | {verified} | {result} |"
    )


def resource_row(key: str, doc: Mapping[str, Any] | None) -> str:
    if doc is None:
        return f"| {key} |" + " |" * 6
    client, engine, load = doc["client"], _engine(doc), doc["machine_load"]
    before, after = load.get("loadavg_before") or ["-"], load.get("loadavg_after") or ["-"]
    return (
        f"| {key} | {_num(client['cpu_cores'], '.2f')} ({_num(client['cpu_ms_per_order'], '.2f')}) "
        f"| {_num(engine.get('cpu_cores'), '.2f')} ({_num(engine.get('cpu_ms_per_order'), '.1f')}) "
        f"| {_num(engine.get('peak_rss_mb'), ',.0f')} "
        f"| {doc['orders']['peak_in_flight']:,} / {doc['orders']['peak_subscribers']:,} "
        f"| {_num(load.get('others_cores'), '.2f')} "
        f"| {before[0]} → {after[0]} |"
    )


def render_section(
    runs: Sequence[Mapping[str, Any]],
    *,
    machine: Mapping[str, Any],
    stamp: str,
    note: str,
    name: str,
) -> str:
    lines = [
        f"#### `make bench` run of {stamp} (section `{name}`)",
        "",
        f"Machine: {machine.get('cpu_model')}, {machine.get('cores')} cores, "
        f"{machine.get('ram_gib')} GiB RAM, Python {machine.get('python')}, "
        f"{machine.get('platform')}; client and engine on the same machine. "
        f"Engine code: {machine.get('engine_source', 'unknown')}.",
    ]
    if note:
        lines += ["", note]
    lines += [
        "",
        "| # | Orders terminal / submitted | Terminal orders/s (median per second) "
        "| Submit orders/s | POST p50 / p99 ms | Submit→terminal p50 / p95 / p99 / max ms "
        "| Events delivered / stored | Statuses | --verify | Result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [result_row(r["scenario"].key, r["doc"], r["exit"]) for r in runs]
    lines += [
        "",
        "| # | Client CPU, cores (ms/order) | Engine CPU, cores (ms/order) | Engine peak RSS MB "
        "| Peak in flight / WebSockets | Others' CPU during run, cores | loadavg (1 min) "
        "before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [resource_row(r["scenario"].key, r["doc"]) for r in runs]
    lines += ["", "Scenarios and exact commands:", ""]
    lines += [
        f"- **{r['scenario'].key}**: {r['scenario'].title}.  \n"
        f"  `{shlex.join(r['scenario'].command())}`"
        for r in runs
    ]
    return "\n".join(lines)
