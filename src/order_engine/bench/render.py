"""The text report, rendered from the results document (``report.build``)."""

from __future__ import annotations

from typing import Any


def _ms(summary: dict[str, Any], keys: tuple[str, ...] = ("p50", "p95", "p99", "max")) -> str:
    if not summary.get("count"):
        return "none observed"
    parts = [f"{k} {summary[k + '_ms']:,.1f}" for k in keys]
    return "  ".join(parts) + f" ms  (n={summary['count']})"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "n/a"


def _cores(value: float | None) -> str:
    return "unknown" if value is None else f"{100 * value:.0f}% of a core"


def _opt(value: object) -> str:
    return "unknown" if value is None else str(value)


def _per_order(ms: float | None, what: str = "order") -> str:
    return "n/a" if ms is None else f"{ms:.3f} ms CPU/{what}"


def render_text(doc: dict[str, Any]) -> str:
    cfg, tgt, orders = doc["config"], doc["target"], doc["orders"]
    tp, lat, ev = doc["throughput"], doc["latency"], doc["events"]
    lines = [f"order-engine bench: {tgt['description']} at {', '.join(tgt['urls'])}"]
    loop = (
        f"open loop {cfg['rate']:g} orders/s ({cfg['arrivals']})"
        if cfg.get("rate")
        else f"closed loop, concurrency {cfg['concurrency']}"
    )
    lines.append(
        f"load:        {loop}; bounds {cfg['orders']} orders / {cfg['duration_s']:g} s, "
        f"drain {cfg['drain_timeout_s']:g} s; subscribe {cfg['subscribe']}; "
        f"pairs {cfg['pairs']}; sizes {cfg['sizes']}; seed {cfg['seed']}"
    )
    lines.append(
        f"orders:      submitted {orders['submitted']}, accepted {orders['accepted']}, "
        f"terminal {_opt(orders['terminal'])}, unfinished {_opt(orders['unfinished'])}, "
        f"not accepted {orders['not_accepted']}; peak in flight {orders['peak_in_flight']}"
    )
    for reason, count in list(orders["not_accepted_by_reason"].items())[:5]:
        lines.append(f"             not accepted: {count} x {reason}")
    steady = tp["steady_terminal_per_s"]
    offered = f" (offered {tp['offered_per_s']:g})" if tp.get("offered_per_s") else ""
    if tp["terminal_source"] is None:
        terminal = "terminal orders not observed (no subscription, no database)"
    else:
        terminal = (
            f"{tp['terminal_per_s']:,.1f} terminal orders/s over {tp['terminal_window_s']:.2f} s "
            f"({tp['terminal_source']}; per second min/median/max "
            f"{steady['min']:,.0f}/{steady['p50']:,.0f}/{steady['max']:,.0f})"
        )
    lines.append(f"throughput:  {terminal}; submit {tp['submit_per_s']:,.1f} orders/s{offered}")
    lines.append(f"POST:        {_ms(lat['post'], ('p50', 'p95', 'p99'))}")
    lines.append(f"submit->terminal: {_ms(lat['submit_to_terminal'])}  (HdrHistogram)")
    if "schedule_lag" in lat:
        lines.append(f"schedule lag: {_ms(lat['schedule_lag'], ('p50', 'p99', 'max'))}")
    if "server_pending_to_terminal" in lat:
        lines.append(f"server pending->terminal: {_ms(lat['server_pending_to_terminal'])}")
    if ev.get("streams"):
        lines.append(
            f"events:      received {ev['events_received']} of {ev['events_expected']} "
            f"expected ({_pct(ev['events_received'], ev['events_expected'])}); streams "
            f"complete {ev['complete']}/{ev['streams']} (missing {ev['with_missing']}, "
            f"duplicate {ev['with_duplicates']}, out-of-order {ev['with_out_of_order']}, "
            f"no terminal {ev['without_terminal']}, close!=1000 {ev['abnormal_close']}); "
            f"peak subscribers {orders['peak_subscribers']}"
        )
        lines.extend(
            f"             e.g. {x['orderId']}: seqs {x['seqs']} {x['statuses']}, close "
            f"{x['closeCode']}{', ' + x['error'] if x['error'] else ''}"
            for x in ev.get("incomplete_examples", [])[:3]
        )
        if "stored" in ev:
            lines.append(
                f"             delivered {ev['delivered']} of {ev['stored']} stored events "
                f"({_pct(ev['delivered'], ev['stored'])}); subscribers short: "
                f"{ev['orders_short']}"
            )
    outcomes = ", ".join(f"{k} {v}" for k, v in doc["outcomes"].items()) or "none"
    lines.append(f"statuses:    {outcomes}")
    client = doc["client"]
    lines.append(
        f"client:      CPU {_cores(client['cpu_cores'])} ({_per_order(client['cpu_ms_per_order'])})"
        f", peak RSS {client['peak_rss_mb']} MB, {client.get('event_loop')} loop"
    )
    lines.extend(
        f"server:      {server['role']} pid {server['pid']}: CPU "
        f"{_cores(server['cpu_cores'])} ({_per_order(server['cpu_ms_per_order'])}), "
        f"peak RSS {server['peak_rss_mb']} MB"
        + (f", exit {server['exit_code']}" if server["exit_code"] is not None else "")
        for server in doc["servers"]
    )
    load, machine = doc["machine_load"], doc["machine"]
    lines.append(
        f"machine:     {machine.get('cores')} cores ({machine.get('cpu_model')}); busy "
        f"{load['busy_cores']} cores over {load['measured_s']} s, of which outside the "
        f"client{' and servers' if doc['servers'] else ''} {load['others_cores']}; "
        f"loadavg before {load['loadavg_before']} after {load['loadavg_after']}"
    )
    verify = doc.get("verify")
    if verify is not None:
        if not verify["violating_orders"]:
            lines.append(
                f"verify:      clean: {verify['checked']} orders, {verify['events_stored']} "
                "events; each order terminal with exactly one terminal event, seqs gapless "
                "1..n, row = last event"
            )
        else:
            lines.append(
                f"verify:      {verify['violating_orders']} of {verify['checked']} orders "
                "violate invariants:"
            )
            for kind, v in verify["violations"].items():
                lines.append(
                    f"             {kind} ({v['what']}): {v['count']}, e.g. "
                    + ", ".join(v["examples"])
                )
    lines.append(
        "result:      " + ("OK" if doc["ok"] else "PROBLEMS: " + "; ".join(doc["problems"]))
    )
    return "\n".join(lines)
