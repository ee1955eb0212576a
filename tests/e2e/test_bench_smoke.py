"""CI's smoke test of ``order-engine bench``: the real executable starts its own
embedded engine, runs a small bounded load, and verifies what was stored.

Correctness only (exit code, every order terminal, streams complete, --verify
clean); never speed: performance figures come from ``make bench``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "order-engine"
ORDERS = 30
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    # The tool must bring its own engine and database: nothing inherited may point it elsewhere.
    prefixes = ("SIM_", "DATABASE_", "REDIS_", "SOLANA_", "WORKER_", "ORDER_ENGINE_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def test_bench_runs_a_small_load_against_its_own_engine_and_verifies_every_order(
    tmp_path: Path,
) -> None:
    results = tmp_path / "bench.json"
    completed = subprocess.run(  # noqa: S603 - our own executable, fixed arguments
        [
            str(BIN),
            "bench",
            "--orders",
            str(ORDERS),
            "--concurrency",
            "10",
            "--verify",
            "--sim-time-scale",
            "0",
            "--json",
            str(results),
            "--no-progress",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    doc = json.loads(results.read_text())
    assert doc["ok"], doc["problems"]
    assert doc["target"]["mode"] == "embedded"

    orders = doc["orders"]
    assert orders["submitted"] == orders["accepted"] == orders["terminal"] == ORDERS
    assert orders["unfinished"] == 0
    assert orders["not_accepted"] == 0
    assert sum(doc["outcomes"].values()) == ORDERS
    assert set(doc["outcomes"]) <= {"confirmed"} | {
        k for k in doc["outcomes"] if k[:7] == "failed:"
    }

    events = doc["events"]
    assert events["streams"] == events["complete"] == ORDERS
    assert events["events_received"] == events["events_expected"] == events["stored"]
    assert events["delivered"] == events["stored"] >= 5 * ORDERS
    assert events["abnormal_close"] == 0

    verify = doc["verify"]
    assert verify["checked"] == ORDERS
    assert verify["violating_orders"] == 0
    assert verify["events_stored"] == events["stored"]

    assert doc["latency"]["submit_to_terminal"]["count"] == ORDERS
    (engine,) = doc["servers"]
    assert engine["role"] == "embedded engine"
    assert engine["exit_code"] == 0
    assert "verify:      clean" in completed.stdout


def test_the_stream_scenario_delivers_every_event_to_every_account_stream_of_its_own_engine(
    tmp_path: Path,
) -> None:
    completed = subprocess.run(  # noqa: S603 - our own executable, fixed arguments
        [
            str(BIN),
            "bench",
            "--subscribers",
            "20",
            "--stream",
            "account",
            "--idle",
            "0.5",
            "--orders",
            "4",
            "--concurrency",
            "4",
            "--sim-time-scale",
            "0",
            "--drain-timeout",
            "30",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = dict(line.split(": ", 1) for line in completed.stdout.splitlines() if ": " in line)
    assert report["subscribers"] == "20"
    assert report["orders"] == "4"
    assert int(report["events_per_stream"]) == int(report["events_expected"]) >= 4 * 5
    assert completed.stdout.rstrip().endswith("ok")
