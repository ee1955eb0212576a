"""The benchmark runs and reports every venue type (figures come from the command)."""

from __future__ import annotations

from order_engine.bench.sim import run_sim_benchmark


async def test_the_benchmark_reports_quotes_and_routing_decisions_per_venue_type() -> None:
    report = await run_sim_benchmark(0.2)
    assert set(report["quotes_per_s"]) == {"amm_v4", "cpmm", "dlmm"}
    assert all(rate > 0 for rate in report["quotes_per_s"].values())
    assert {"amm_v4", "cpmm", "dlmm"} <= set(report["routing_decisions_per_s"])
    assert set(report["snapshots_per_s"]) == {"raydium", "meteora"}
