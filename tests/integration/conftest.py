"""Fixtures for the integration tests: a real engine per test (see helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from order_engine.bootstrap import Engine
from tests.support.harness import engine_settings, running_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """Workers running, no RPC faults, seed 7, time scale 0."""
    async with running_engine(engine_settings(tmp_path, worker_concurrency=20)) as running:
        yield running


@pytest.fixture
async def idle_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """The same engine with no workers: the test delivers jobs itself."""
    async with running_engine(engine_settings(tmp_path), workers=False) as running:
        yield running
