"""/api/sim over real loopback HTTP: a token and a pool are launched, and a market
order routes to the new pool; admin keys only once keys are on; bad input is a
problem+json 422 that says what was expected."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from order_engine.app.access import create_key
from order_engine.bootstrap import Engine
from order_engine.dex.token_accounts import decode_mint
from tests.e2e.wire import PROBLEM_JSON, submit, wait_for_status
from tests.support.harness import engine_settings, running_engine, serving

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Engine, str, aiohttp.ClientSession]]:
    settings = engine_settings(tmp_path_factory.mktemp("launches"), auth_cache_s=0.0)
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        yield engine, url, session


async def post(
    session: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    async with session.post(url, json=body, headers=headers) as response:
        payload = orjson.loads(await response.read())
        if response.status >= 400:
            assert response.content_type == PROBLEM_JSON
        return response.status, payload


NEWT = {
    "symbol": "NEWT",
    "decimals": 6,
    "supply": "1000000000",
    "mintAuthorityRevoked": True,
    "freezeAuthorityRevoked": False,
}


async def test_a_launched_token_is_a_mint_with_the_authorities_asked_for(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    status, body = await post(session, f"{url}/api/sim/tokens", {**NEWT, "symbol": "AUTH"})
    assert status == 201, body
    assert engine.simulator is not None
    (raw,) = await engine.chain.get_multiple_accounts([body["mint"]])
    assert raw is not None
    mint = decode_mint(raw)
    assert (mint.decimals, mint.supply) == (6, 10**15)
    assert mint.mint_authority is None
    assert mint.freeze_authority == engine.simulator.launchpad.wallet.pubkey()


async def test_a_market_order_routes_to_a_pool_launched_over_the_api(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    status, token = await post(session, f"{url}/api/sim/tokens", NEWT)
    assert status == 201, token
    pool_body = {
        "venue": "raydium",
        "baseMint": token["mint"],
        "quoteToken": "SOL",
        "baseAmount": "500000000",
        "quoteAmount": "100",
    }
    status, pool = await post(session, f"{url}/api/sim/pools", pool_body)
    assert status == 201, pool
    assert isinstance(pool["slot"], int)
    assert engine.simulator is not None
    engine.simulator.advance_slots(3)  # CPMM opens a second after creation
    order_id = await submit(
        session, url, {"inputToken": "SOL", "outputToken": "NEWT", "amount": "0.5"}
    )
    await wait_for_status(engine, order_id, "confirmed")
    stored = await engine.repo.get(uuid.UUID(order_id))
    assert stored is not None
    assert stored.route is not None
    assert {leg["pool"] for leg in stored.route["legs"]} == {pool["pool"]}
    # The fee is part of the fill: the signature fee plus the priority fee bid.
    fill = stored.fill
    assert fill is not None
    assert fill["computeUnitPrice"] == engine.settings.compute_unit_price
    assert fill["feeLamports"] == 5_000 + fill["priorityFeeLamports"]
    assert fill["priorityFeeLamports"] > 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEWT, "supply": "1.0000001"}, "supply"),
        ({**NEWT, "decimals": 12}, "decimals"),
        ({**NEWT, "mintAuthorityRevoked": "yes"}, "mintAuthorityRevoked"),
        ({**NEWT, "colour": "red"}, "colour"),
    ],
)
async def test_a_bad_token_launch_is_a_422_naming_the_field(
    api: tuple[Engine, str, aiohttp.ClientSession], body: dict[str, Any], field: str
) -> None:
    _engine, url, session = api
    status, problem = await post(session, f"{url}/api/sim/tokens", body)
    assert status == 422, problem
    assert field in problem["message"]


async def test_a_pool_of_an_unknown_venue_or_mint_is_refused(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    _engine, url, session = api
    body = {"venue": "orca", "baseMint": "USDC", "baseAmount": "1", "quoteAmount": "1"}
    status, problem = await post(session, f"{url}/api/sim/pools", body)
    assert (status, "venue" in problem["message"]) == (422, True), problem
    body = {**body, "venue": "raydium", "baseMint": "11111111111111111111111111111112"}
    status, problem = await post(session, f"{url}/api/sim/pools", body)
    assert (status, problem["code"]) == (422, "unknown_token"), problem


async def test_once_keys_exist_only_an_admin_key_may_launch(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    store = engine.gateway.auth.keys
    trader, trader_key = await create_key(store, "trader", engine.orders.clock)
    admin, admin_key = await create_key(store, "admin", engine.orders.clock)
    engine.settings.admin_keys = [admin.id]
    try:
        status, problem = await post(session, f"{url}/api/sim/tokens", NEWT)
        assert status == 401, problem
        bearer = {"Authorization": f"Bearer {trader_key}"}
        status, problem = await post(session, f"{url}/api/sim/tokens", NEWT, bearer)
        assert (status, problem["code"]) == (403, "forbidden"), problem
        bearer = {"Authorization": f"Bearer {admin_key}"}
        status, body = await post(
            session, f"{url}/api/sim/tokens", {**NEWT, "symbol": "ADM"}, bearer
        )
        assert status == 201, body
    finally:
        engine.settings.admin_keys = []
        del trader
