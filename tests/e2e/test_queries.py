"""Order lists, event history and quotes over real HTTP, on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from order_engine.settings import Settings
from tests.e2e.accounts import bearer, get_json, new_key, post_order, problem_of
from tests.e2e.wire import SOL_MINT, USDC_MINT, order, wait_for_status
from tests.support.harness import running_engine, serving


async def _place(session: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any]) -> str:
    status, _, placed = await post_order(session, url, body, key=key)
    assert status == 201, placed
    order_id: str = placed["orderId"]
    return order_id


async def _listed(session: aiohttp.ClientSession, url: str, key: str, **params: Any) -> list[str]:
    status, body = await get_json(session, url, "/api/orders", key=key, **params)
    assert status == 200, body
    return [o["orderId"] for o in body["orders"]]


async def test_orders_are_listed_newest_first_and_filtered(api_settings: Settings) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        sol_usdc = await _place(session, url, key, order("1"))
        usdc_sol = await _place(
            session, url, key, order("150", inputToken="USDC", outputToken="SOL")
        )
        bonk = await _place(
            session, url, key, order("1000000", inputToken="BONK", outputToken="USDC")
        )
        for order_id in (sol_usdc, usdc_sol, bonk):
            await wait_for_status(engine, order_id, "confirmed")

        assert await _listed(session, url, key) == [bonk, usdc_sol, sol_usdc]
        assert await _listed(session, url, key, pair="SOL-USDC") == [sol_usdc]
        assert await _listed(session, url, key, pair="SOL/USDC") == [sol_usdc]
        assert await _listed(session, url, key, pair=f"{USDC_MINT}-{SOL_MINT}") == [usdc_sol]
        assert await _listed(session, url, key, status="confirmed") == [bonk, usdc_sol, sol_usdc]
        assert await _listed(session, url, key, status="failed") == []

        _, body = await get_json(session, url, "/api/orders", key=key)
        by_id = {o["orderId"]: o for o in body["orders"]}
        dex = by_id[sol_usdc]["route"]["dex"]
        assert sol_usdc in await _listed(session, url, key, dex=dex.split("+")[0])
        assert "events" not in by_id[sol_usdc]  # lists carry no event history
        assert by_id[sol_usdc]["fill"]["txHash"] == by_id[sol_usdc]["txHash"]

        created = datetime.fromisoformat(by_id[usdc_sol]["createdAt"])
        assert await _listed(session, url, key, since=created.isoformat()) == [bonk, usdc_sol]
        assert await _listed(session, url, key, until=created.isoformat()) == [sol_usdc]
        naive = created.astimezone(UTC).replace(tzinfo=None).isoformat()  # read as UTC
        assert await _listed(session, url, key, since=naive) == [bonk, usdc_sol]
        later = (created + timedelta(days=1)).isoformat()
        assert await _listed(session, url, key, since=later) == []


async def test_pages_follow_the_cursor_without_gaps_or_repeats(api_settings: Settings) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        placed = [await _place(session, url, key, order("1")) for _ in range(7)]
        pages: list[list[str]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            status, body = await get_json(session, url, "/api/orders", key=key, **params)
            assert status == 200, body
            pages.append([o["orderId"] for o in body["orders"]])
            cursor = body["nextCursor"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [i for page in pages for i in page] == list(reversed(placed))
        status, body = await get_json(session, url, "/api/orders", key=key)
        assert (len(body["orders"]), body["nextCursor"]) == (7, None)  # default limit 50


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"limit": 0}, "limit", "invalid_request"),
        ({"limit": 501}, "limit", "invalid_request"),
        ({"limit": "ten"}, "limit", "invalid_request"),
        ({"status": "lost"}, "status", "invalid_request"),
        ({"pair": "SOL"}, "pair", "invalid_request"),
        ({"pair": "SOL-DOGE"}, "pair", "unknown_token"),
        ({"dex": "Ray dium"}, "dex", "invalid_request"),
        ({"since": "yesterday"}, "since", "invalid_request"),
        ({"until": "0001-01-01T00:00:00+05:00"}, "until", "invalid_request"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor", "invalid_cursor"),
    ],
    ids=str,
)
async def test_a_bad_list_parameter_is_a_422_naming_it(
    api_settings: Settings, params: dict[str, Any], field: str, code: str
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        async with session.get(url + "/api/orders", params=params, headers=bearer(key)) as r:
            body = await problem_of(r, 422, code)
        assert [e["field"] for e in body["errors"]] == [field], body
        assert repr(field) in body["message"], body


async def test_an_orders_events_come_after_the_given_seq(api_settings: Settings) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        order_id = await _place(session, url, key, order("1"))
        await wait_for_status(engine, order_id, "confirmed")
        status, body = await get_json(session, url, f"/api/orders/{order_id}/events", key=key)
        assert status == 200
        stored = [e.to_message() for e in await engine.repo.events(uuid.UUID(order_id))]
        assert body == {"orderId": order_id, "status": "confirmed", "events": stored}
        path = f"/api/orders/{order_id}/events"
        status, body = await get_json(session, url, path, key=key, afterSeq=3)
        assert [e["seq"] for e in body["events"]] == [4, 5]
        status, body = await get_json(session, url, path, key=key, afterSeq=99)
        assert (status, body["events"]) == (200, [])
        async with session.get(url + path, params={"afterSeq": -1}, headers=bearer(key)) as r:
            problem = await problem_of(r, 422, "invalid_request")
        assert problem["errors"][0]["field"] == "afterSeq"


async def test_a_quote_is_a_dry_run_in_jupiters_shape_with_every_venue(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        depth = await engine.queue.depth()
        params = {"inputToken": "SOL", "outputToken": "USDC", "amount": "10", "slippageBps": 100}
        status, quote = await get_json(session, url, "/api/quote", key=key, **params)
        assert status == 200, quote
        assert (quote["inputMint"], quote["outputMint"]) == (SOL_MINT, USDC_MINT)
        assert quote["inAmount"] == str(10 * 10**9)
        out, threshold = int(quote["outAmount"]), int(quote["otherAmountThreshold"])
        assert threshold == out * (10_000 - 100) // 10_000
        assert quote["swapMode"] == "ExactIn"
        assert quote["slippageBps"] == 100
        assert Decimal(quote["priceImpactPct"]) >= 0
        assert sum(step["percent"] for step in quote["routePlan"] if step["hop"] == 1) == 100
        assert sum(int(s["swapInfo"]["outAmount"]) for s in quote["routePlan"]) == out
        venues = {q["venue"] for q in quote["quotes"]}
        assert venues == {"raydium", "meteora"}, quote["quotes"]
        assert quote["ui"]["inAmount"] == "10"
        # Nothing was persisted or enqueued.
        assert (await get_json(session, url, "/api/orders", key=key))[1]["orders"] == []
        assert await engine.queue.depth() == depth
        # A two-hop pair quotes both hops.
        params = {"inputToken": "BONK", "outputToken": "USDT", "amount": "1000000"}
        status, quote = await get_json(session, url, "/api/quote", key=key, **params)
        assert status == 200, quote
        assert {s["hop"] for s in quote["routePlan"]} == {1, 2}


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"outputToken": "USDC", "amount": "1"}, "inputToken", "invalid_request"),
        ({"inputToken": "SOL", "outputToken": "USDC"}, "amount", "invalid_amount"),
        ({"inputToken": "SOL", "outputToken": "USDC", "amount": "x"}, None, "invalid_amount"),
        ({"inputToken": "SOL", "outputToken": "USDC", "amount": "1", "slippageBps": 0},
         "slippageBps", "invalid_slippage"),
        ({"inputToken": "SOL", "outputToken": "DOGE", "amount": "1"}, None, "unknown_token"),
        ({"inputToken": "SOL", "outputToken": "SOL", "amount": "1"}, None, "same_token"),
    ],
    ids=["no-input", "no-amount", "bad-amount", "bad-slippage", "unknown-token", "same-token"],
)  # fmt: skip
async def test_a_bad_quote_request_is_a_422_saying_what_was_expected(
    api_settings: Settings, params: dict[str, Any], field: str | None, code: str
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        async with session.get(url + "/api/quote", params=params, headers=bearer(key)) as r:
            body = await problem_of(r, 422, code)
        if field is not None:
            assert [e["field"] for e in body["errors"]] == [field], body
        assert "expected" in body["message"], body


async def test_a_quote_accounts_for_a_pool_that_cannot_fill_the_amount(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        params = {"inputToken": "SOL", "outputToken": "USDC", "amount": "18000000000"}
        status, quote = await get_json(session, url, "/api/quote", **params)
        assert status == 200, quote
        [unfilled] = quote["unfilled"]
        assert unfilled["venue"] == "meteora"
        assert "insufficient liquidity" in unfilled["reason"]
        assert [q["venue"] for q in quote["quotes"]] == ["raydium"]
        assert Decimal(quote["priceImpactPct"]) > 99
