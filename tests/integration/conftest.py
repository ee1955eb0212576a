"""Fixtures for the integration tests: a real engine per test (see helpers.py).

These tests steer simulated time slot by slot (a worker "polls once and sleeps",
a blockhash expires "at the first poll that saw it"), so their simulator has no
slot driver: at time scale 0 slots pass only as workers poll for statuses. The
e2e tests and the bench run the driven clock that ``serve`` runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from order_engine.bootstrap import Engine
from tests.support.harness import engine_settings, running_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """Workers running, no RPC faults, seed 7, time scale 0."""
    settings = engine_settings(tmp_path, worker_concurrency=20, sim_zero_scale_slot_ms=0)
    async with running_engine(settings) as running:
        yield running


@pytest.fixture
async def idle_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """The same engine with no workers: the test delivers jobs itself."""
    settings = engine_settings(tmp_path, sim_zero_scale_slot_ms=0)
    async with running_engine(settings, workers=False) as running:
        yield running
