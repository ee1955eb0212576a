"""Sniper orders over real loopback HTTP: placed for a mint with no pool yet, they
fire on the first new pool of their pair that passes their filters, execute
through the ordinary pipeline, and report the pool's slot next to their own; a
pool that fails a filter leaves them open with an event naming the filter."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from order_engine.bootstrap import Engine
from order_engine.domain.order import OrderStatus
from tests.e2e.wire import PROBLEM_JSON, eventually, submit, wait_for_status
from tests.support.harness import engine_settings, running_engine, serving

pytestmark = pytest.mark.asyncio(loop_scope="module")
Api = tuple[Engine, str, aiohttp.ClientSession]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    settings = engine_settings(tmp_path_factory.mktemp("sniper"), watch_discover_s=0.05)
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
    ):
        yield engine, url, session


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> dict[str, Any]:
    async with session.post(url, json=body) as response:
        payload: dict[str, Any] = orjson.loads(await response.read())
        assert response.status == 201, payload
        return payload


async def token(api: Api, *, mint_revoked: bool = True, freeze_revoked: bool = True) -> str:
    _engine, url, session = api
    body = {
        "symbol": "NEWT",
        "decimals": 6,
        "supply": "1000000000",
        "mintAuthorityRevoked": mint_revoked,
        "freezeAuthorityRevoked": freeze_revoked,
    }
    return str((await post(session, f"{url}/api/sim/tokens", body))["mint"])


async def launch(api: Api, mint: str, venue: str = "meteora", sol: str = "100") -> dict[str, Any]:
    _engine, url, session = api
    body = {
        "venue": venue,
        "baseMint": mint,
        "quoteToken": "SOL",
        "baseAmount": "500000000",
        "quoteAmount": sol,
    }
    return await post(session, f"{url}/api/sim/pools", body)


def sniper(mint: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "sniper",
        "inputToken": "SOL",
        "outputToken": mint,
        "amount": "0.5",
        "slippageBps": 1500,
        "maxPriceImpactBps": 2000,
        "minLiquidity": "50",
        "requireMintAuthorityRevoked": True,
        "requireFreezeAuthorityRevoked": True,
        "expiresInS": 600,
        **fields,
    }


async def events(engine: Engine, order_id: str) -> list[dict[str, Any]]:
    return [e.to_message() for e in await engine.repo.events(uuid.UUID(order_id))]


async def test_a_sniper_waits_open_for_a_mint_with_no_pool_and_catches_its_launch(
    api: Api,
) -> None:
    engine, url, session = api
    mint = await token(api)
    order_id = await submit(session, url, sniper(mint))
    await wait_for_status(engine, order_id, "open")

    pool = await launch(api, mint)
    await wait_for_status(engine, order_id, "confirmed")

    history = await events(engine, order_id)
    statuses = [e["status"] for e in history]
    assert statuses == [
        "pending",
        "open",
        "triggered",
        "routing",
        "building",
        "submitted",
        "confirmed",
    ]
    fired = history[2]
    assert (fired["trigger"], fired["pool"], fired["slot"]) == ("pool", pool["pool"], pool["slot"])
    confirmed = history[-1]
    assert confirmed["triggerSlot"] == pool["slot"]
    assert confirmed["slot"] > pool["slot"]
    order = await engine.repo.get(uuid.UUID(order_id))
    assert order is not None
    assert order.route is not None
    assert {leg["pool"] for leg in order.route["legs"]} == {pool["pool"]}


@pytest.mark.parametrize(
    ("token_flags", "order_fields", "pool_sol", "failed"),
    [
        ({"freeze_revoked": False}, {}, "100", "freezeAuthorityRevoked"),
        ({"mint_revoked": False}, {}, "100", "mintAuthorityRevoked"),
        ({}, {}, "20", "minLiquidity"),
        ({}, {"amount": "5", "maxPriceImpactBps": 10}, "100", "maxPriceImpactBps"),
    ],
)
async def test_a_pool_that_fails_a_filter_leaves_the_order_open_naming_the_filter(
    api: Api,
    token_flags: dict[str, bool],
    order_fields: dict[str, Any],
    pool_sol: str,
    failed: str,
) -> None:
    engine, url, session = api
    mint = await token(api, **token_flags)
    order_id = await submit(session, url, sniper(mint, **order_fields))
    await wait_for_status(engine, order_id, "open")

    pool = await launch(api, mint, sol=pool_sol)

    async def noted() -> bool:
        return any(e.get("failedFilter") for e in await events(engine, order_id))

    await eventually(noted, f"a filter event on {order_id}")
    note = [e for e in await events(engine, order_id) if e.get("failedFilter")][-1]
    assert note["status"] == "open"
    assert note["failedFilter"] == failed
    assert note["poolRejected"] == pool["pool"]
    order = await engine.repo.get(uuid.UUID(order_id))
    assert order is not None
    assert order.status is OrderStatus.OPEN


async def test_many_snipers_on_one_launch_all_fill_and_the_later_ones_pay_the_moved_price(
    api: Api,
) -> None:
    engine, url, session = api
    mint = await token(api)
    # Highest fee first: the leader runs it first, at the best price.
    fees = [3_000_000, 2_000_000, 1_000_000, 500_000]
    # 3 SOL each: about a bin of the new pair's liquidity (a bin trades at one price).
    ids = [await submit(session, url, sniper(mint, amount="3", priorityFee=fee)) for fee in fees]
    for order_id in ids:
        await wait_for_status(engine, order_id, "open")

    pool = await launch(api, mint)
    for order_id in ids:
        await wait_for_status(engine, order_id, "confirmed")

    fills = []
    for order_id in ids:
        order = await engine.repo.get(uuid.UUID(order_id))
        assert order is not None
        assert order.fill is not None
        fills.append(order.fill)
    assert all(f["triggerSlot"] == pool["slot"] for f in fills)
    assert len({f["txHash"] for f in fills}) == len(ids)
    by_landing = sorted(fills, key=lambda f: (f["slot"], -f["computeUnitPrice"]))
    outs = [int(f["amountOutRaw"]) for f in by_landing]
    assert outs == sorted(outs, reverse=True)  # each later fill got less for the same 3 SOL
    assert outs[0] > outs[-1]


async def test_a_sniper_on_a_raydium_launch_waits_for_the_pool_to_open_and_fills(
    api: Api,
) -> None:
    engine, url, session = api
    mint = await token(api)
    order_id = await submit(session, url, sniper(mint))
    await wait_for_status(engine, order_id, "open")

    pool = await launch(api, mint, venue="raydium")
    await wait_for_status(engine, order_id, "confirmed")

    order = await engine.repo.get(uuid.UUID(order_id))
    assert order is not None
    assert order.fill is not None
    assert order.fill["dex"] == "raydium"
    assert order.fill["triggerSlot"] == pool["slot"]


async def test_a_sniper_for_a_malformed_mint_is_refused_with_a_problem(api: Api) -> None:
    _engine, url, session = api
    async with session.post(
        f"{url}/api/orders/execute", json=sniper("not-a-mint-address")
    ) as response:
        problem = orjson.loads(await response.read())
        assert response.status == 422, problem
        assert response.content_type == PROBLEM_JSON
    assert problem["code"] == "unknown_token"
    assert "32 bytes" in problem["message"]


async def test_an_open_sniper_order_reads_back_with_its_filters_and_mint(api: Api) -> None:
    _engine, url, session = api
    mint = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"  # well-formed, never launched here
    order_id = await submit(session, url, sniper(mint))
    async with session.get(f"{url}/api/orders/{order_id}") as response:
        view = orjson.loads(await response.read())
        assert response.status == 200, view
    assert (view["status"], view["type"], view["outputToken"]) == ("open", "sniper", mint)
    assert view["requireFreezeAuthorityRevoked"] is True


async def test_the_cli_places_a_sniper_and_follows_it_to_its_fill(api: Api) -> None:
    engine, url, _session = api
    mint = await token(api)
    cli = Path(sys.executable).with_name("order-engine")
    proc = await asyncio.create_subprocess_exec(
        str(cli), "submit", "SOL", "0.25", "--snipe", mint, "--require-mint-revoked",
        "--min-liquidity", "10", "--priority-fee", "auto", "--url", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 20)  # "order <id>"
    order_id = first.decode().split()[-1]
    await wait_for_status(engine, order_id, "open")

    pool = await launch(api, mint)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)

    text = out.decode()
    assert proc.returncode == 0, text
    assert "open" in text
    assert f"new meteora pool {pool['pool']}" in text
    assert f"(trigger slot {pool['slot']})" in text


async def test_an_open_sniper_survives_a_restart_and_the_next_process_catches_the_launch(
    tmp_path: Path,
) -> None:
    settings = engine_settings(tmp_path, watch_discover_s=0.05)
    token_body = {
        "symbol": "NEWT",
        "supply": "1000000000",
        "mintAuthorityRevoked": True,
        "freezeAuthorityRevoked": True,
    }
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
    ):
        mint = str((await post(session, f"{url}/api/sim/tokens", token_body))["mint"])
        order_id = await submit(session, url, sniper(mint))
        await wait_for_status(engine, order_id, "open")
    # The next process (same database, same seed: the same launchpad addresses).
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
    ):
        again = await post(session, f"{url}/api/sim/tokens", token_body)
        assert again["mint"] == mint
        assert engine.sniper is not None
        await eventually(lambda: _booked(engine, order_id), "the restarted book to hold it")
        pool = await launch((engine, url, session), mint)
        await wait_for_status(engine, order_id, "confirmed")
        order = await engine.repo.get(uuid.UUID(order_id))
        assert order is not None
        assert order.fill is not None
        assert order.fill["triggerSlot"] == pool["slot"]


async def _booked(engine: Engine, order_id: str) -> bool:
    assert engine.sniper is not None
    return any(uuid.UUID(order_id) in book for book in engine.sniper.books.values())
