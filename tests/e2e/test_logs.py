"""Structured logs: every line about an order names it as ``orderId``, from the
POST through the worker to the WebSocket, and only ever the right order."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from tests.e2e.wire import follow, order, submit, wait_for_status
from tests.support.harness import engine_settings, running_engine, serving


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """structlog as production configures it (context variables merged, JSON lines),
    writing to a buffer; restored afterwards."""
    buffer = io.StringIO()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(default=str),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=buffer),
        cache_logger_on_first_use=False,
    )
    try:
        yield buffer
    finally:
        structlog.reset_defaults()


def _parsed(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


async def test_every_log_line_of_an_orders_life_carries_its_order_id(
    tmp_path: Path, log_lines: io.StringIO
) -> None:
    settings = engine_settings(tmp_path, log_level="DEBUG")
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        ids = [await submit(session, url, order("1")) for _ in range(3)]
        failing = await submit(session, url, order("60000000"))  # more SOL than the wallet has
        for order_id in ids:
            await follow(session, url, order_id)
        await wait_for_status(engine, failing, "failed")
    lines = _parsed(log_lines)
    for order_id in [*ids, failing]:
        about = [
            line
            for line in lines
            if order_id in (line.get("order_id"), line.get("orderId"))
            or order_id in str(line.get("event", ""))
        ]
        events = {line["event"] for line in about}
        assert {"order_accepted", "route_decided"} <= events, events
        for line in about:
            assert line.get("orderId") == order_id, line
    assert any(line["event"] == "order_failed" and line["orderId"] == failing for line in lines)
    mismatched = [
        line for line in lines if "order_id" in line and line.get("orderId") != line["order_id"]
    ]
    assert mismatched == []
