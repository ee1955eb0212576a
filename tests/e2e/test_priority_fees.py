"""An order's priorityFee, end to end over HTTP: the transaction bids it (a price, or
``auto`` from the cluster's recent prioritization fees on the route's pools), and
the fill reports what it paid."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from order_engine.app.priority import MAX_AUTO_MICRO_LAMPORTS
from order_engine.bootstrap import Engine
from order_engine.dex import spl
from tests.e2e.wire import submit, wait_for_status
from tests.support.harness import engine_settings, running_engine, serving

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Engine, str, aiohttp.ClientSession]]:
    settings = engine_settings(tmp_path_factory.mktemp("fees"))
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        yield engine, url, session


async def fill_of(engine: Engine, session: aiohttp.ClientSession, url: str, body: Any) -> Any:
    order_id = await submit(session, url, body)
    await wait_for_status(engine, order_id, "confirmed")
    order = await engine.repo.get(uuid.UUID(order_id))
    assert order is not None
    assert order.fill is not None
    return order.fill


async def test_an_order_bids_its_own_priority_fee_and_pays_it(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    body = {"inputToken": "SOL", "outputToken": "USDC", "amount": "1", "priorityFee": 777_777}

    fill = await fill_of(engine, session, url, body)

    assert fill["computeUnitPrice"] == 777_777
    # The budget is 60 000 CU plus COMPUTE_UNIT_LIMIT per leg (one, or two if split).
    assert fill["priorityFeeLamports"] in {
        spl.priority_fee_lamports(60_000 + engine.settings.compute_unit_limit * legs, 777_777)
        for legs in (1, 2)
    }
    assert fill["feeLamports"] == 5_000 + fill["priorityFeeLamports"]


async def test_auto_bids_what_recent_slots_needed_on_the_routes_pools(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    # Recent slots on these pools: orders that paid 3 000 000 micro-lamports per CU.
    for _ in range(2):
        body = {"inputToken": "SOL", "outputToken": "USDC", "amount": "1", "priorityFee": 3_000_000}
        await fill_of(engine, session, url, body)

    fill = await fill_of(
        engine,
        session,
        url,
        {"inputToken": "SOL", "outputToken": "USDC", "amount": "1", "priorityFee": "auto"},
    )

    assert engine.settings.compute_unit_price < fill["computeUnitPrice"] <= MAX_AUTO_MICRO_LAMPORTS
    assert fill["computeUnitPrice"] == 3_000_000
