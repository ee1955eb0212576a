"""The HTTP API over real loopback HTTP: submit, read, health, and every bad input.

One engine and server serve the whole module (its event loop is module-scoped),
so that the many bad-input cases cost a request each, not a server each.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from order_engine.bootstrap import Engine
from order_engine.domain.terms import PriorityFee
from tests.e2e.wire import (
    EXECUTE,
    LIFECYCLE,
    PROBLEM_FIELDS,
    PROBLEM_JSON,
    SOL_MINT,
    order,
    submit,
    wait_for_status,
)
from tests.support.harness import engine_settings, running_engine, serving

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_BODY = 4096


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Engine, str, aiohttp.ClientSession]]:
    settings = engine_settings(tmp_path_factory.mktemp("http"), max_body_bytes=MAX_BODY)
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        yield engine, url, session


async def assert_problem(response: aiohttp.ClientResponse, status: int, code: str) -> str:
    """Check the problem+json shape; returns the message."""
    raw = await response.read()
    assert response.status == status, raw
    assert response.content_type == PROBLEM_JSON, (response.content_type, raw)
    body = orjson.loads(raw)
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"] == f"urn:order-engine:error:{code}"
    assert body["message"] == body["detail"]
    assert body["message"], body
    message: str = body["message"]
    return message


async def assert_still_serving(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(url + "/healthz") as response:
        assert response.status == 200


# --- the happy path -------------------------------------------------------------------


async def test_a_submitted_order_is_accepted_with_its_id_and_where_to_find_it(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    _, url, session = api
    async with session.post(url + EXECUTE, json=order("2")) as response:
        assert response.status == 201
        assert response.content_type == "application/json"
        body = await response.json()
        location = response.headers["Location"]
    assert uuid.UUID(body["orderId"])
    assert body["status"] == "pending"
    assert isinstance(body["message"], str)
    assert body["message"]
    assert location == f"/api/orders/{body['orderId']}"
    async with session.get(url + location) as response:
        assert response.status == 200
        assert (await response.json())["orderId"] == body["orderId"]


async def test_the_order_is_persisted_as_pending_before_the_response_is_sent(
    tmp_path: Path,
) -> None:
    # No workers: nothing moves the order on, so what the store holds is what
    # the POST wrote, and it must be there the moment the response arrives.
    async with (
        running_engine(engine_settings(tmp_path), workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        order_id = await submit(session, url, order("3", slippage_bps=75))
        stored = await engine.repo.get(uuid.UUID(order_id))
        events = await engine.repo.events(uuid.UUID(order_id))
    assert stored is not None
    assert stored.status.value == "pending"
    assert stored.seq == 1
    assert stored.amount_in == 3 * 10**9
    assert stored.slippage_bps == 75
    assert [(e.seq, e.status.value) for e in events] == [(1, "pending")]


async def test_an_order_typed_market_explicitly_runs_as_one(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("0.2", type="market"))
    await wait_for_status(engine, order_id, "confirmed", "failed")
    async with session.get(f"{url}/api/orders/{order_id}") as response:
        view = await response.json()
    assert (view["type"], view["status"]) == ("market", "confirmed")


async def test_a_market_orders_price_impact_bound_and_priority_fee_are_stored_and_shown(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("0.1", maxPriceImpactBps=900, priorityFee="auto"))
    stored = await engine.repo.get(uuid.UUID(order_id))
    assert stored is not None
    assert (stored.max_price_impact_bps, stored.priority_fee) == (900, PriorityFee(None))
    async with session.get(f"{url}/api/orders/{order_id}") as response:
        view = await response.json()
    assert (view["maxPriceImpactBps"], view["priorityFee"]) == (900, "auto")
    assert "limitPrice" not in view
    events = await engine.repo.events(uuid.UUID(order_id))
    assert (events[0].details["maxPriceImpactBps"], events[0].details["priorityFee"]) == (
        900,
        "auto",
    )


async def test_an_order_without_slippage_gets_the_default_of_50_bps(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("1"))
    stored = await engine.repo.get(uuid.UUID(order_id))
    assert stored is not None
    assert stored.slippage_bps == 50


async def test_reading_an_order_returns_its_status_fill_and_full_event_history(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("1.5", outputToken="USDT"))
    await wait_for_status(engine, order_id, "confirmed", "failed")
    async with session.get(f"{url}/api/orders/{order_id}") as response:
        assert response.status == 200
        view = await response.json()
    assert view["orderId"] == order_id
    assert view["status"] == "confirmed"
    assert (view["inputToken"], view["outputToken"]) == ("SOL", "USDT")
    assert view["amountIn"] == "1.5"
    assert view["amountInRaw"] == str(15 * 10**8)
    assert view["slippageBps"] == 50
    assert view["error"] is None
    fill = view["fill"]
    assert fill["txHash"] == view["txHash"]
    assert fill["amountIn"] == "1.5"
    assert float(fill["amountOut"]) > 0
    assert float(fill["executedPrice"]) > 0
    assert fill["dex"] == view["route"]["dex"]
    assert [e["seq"] for e in view["events"]] == [1, 2, 3, 4, 5]
    assert [e["status"] for e in view["events"]] == LIFECYCLE
    stored = await engine.repo.events(uuid.UUID(order_id))
    assert view["events"] == [e.to_message() for e in stored]


async def test_an_unknown_order_id_is_a_404_problem(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    _, url, session = api
    unknown = uuid.uuid4()
    async with session.get(f"{url}/api/orders/{unknown}") as response:
        message = await assert_problem(response, 404, "order_not_found")
    assert str(unknown) in message


@pytest.mark.parametrize(
    "order_id",
    ["not-a-uuid", "12345", "x" * 2000, "%00", "00000000-0000-0000-0000-00000000000g"],
    ids=["words", "digits", "very-long", "nul", "almost-a-uuid"],
)
async def test_a_malformed_order_id_is_a_404_problem(
    api: tuple[Engine, str, aiohttp.ClientSession], order_id: str
) -> None:
    _, url, session = api
    async with session.get(f"{url}/api/orders/{order_id}") as response:
        message = await assert_problem(response, 404, "order_not_found")
    assert "UUID" in message
    assert len(message) < 200


async def test_health_readiness_and_the_api_documents_answer(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    _, url, session = api
    async with session.get(url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
    async with session.get(url + "/readyz") as response:
        assert response.status == 200
        ready = await response.json()
        assert ready["status"] == "ready"
        assert ready["checks"]["database"] == "ok"
    async with session.get(url + "/openapi.json") as response:
        assert response.status == 200
        spec = await response.json()
    execute = spec["paths"][EXECUTE]["post"]
    body_schema = execute["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in body_schema:
        body_schema = spec["components"]["schemas"][body_schema["$ref"].rsplit("/", 1)[-1]]
    assert set(body_schema["required"]) == {"inputToken", "outputToken", "amount"}
    assert {"201", "413", "422"} <= set(execute["responses"])
    assert "/api/orders/{order_id}" in spec["paths"]
    async with session.get(url + "/docs") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "openapi.json" in await response.text()


# --- bad input: always a 4xx problem, never a 5xx -----------------------------------------

USDC_BODY = {"inputToken": "USDC", "outputToken": "SOL"}
PREFIX = b'{"inputToken":"SOL","outputToken":"USDC","amount":'


def bad(case: str, body: Any, code: str, says: str) -> Any:
    """A body (JSON-encodable, or raw bytes), its stable code, and what the message must say."""
    return pytest.param(body, code, says, id=case)


# fmt: off
BAD_BODIES = [
    bad("missing-every-field", {}, "invalid_request", "'inputToken', 'outputToken', 'amount'"),
    bad("missing-amount", {"inputToken": "SOL", "outputToken": "USDC"}, "invalid_request",
        "'amount'"),
    bad("missing-input-token", {"outputToken": "USDC", "amount": 1}, "invalid_request",
        "'inputToken'"),
    bad("missing-output-token", {"inputToken": "SOL", "amount": 1}, "invalid_request",
        "'outputToken'"),
    bad("body-is-an-array", [order()], "invalid_request", "JSON object"),
    bad("body-is-a-string", "SOL USDC 1", "invalid_request", "JSON object"),
    bad("body-is-a-number", 10, "invalid_request", "JSON object"),
    bad("body-is-null", None, "invalid_request", "JSON object"),
    bad("body-is-empty", b"", "invalid_request", "JSON object"),
    bad("body-is-not-json", b"{inputToken: SOL", "invalid_request", "not valid JSON"),
    bad("body-is-not-utf8", b"\xff\xfe{}", "invalid_request", "not valid JSON"),
    bad("body-is-nested-too-deeply", b'{"amount":' + b"[" * 1500 + b"]" * 1500 + b"}",
        "invalid_request", "not valid JSON"),
    bad("body-is-truncated-json", b'{"inputToken": "SOL", "amount": ', "invalid_request",
        "not valid JSON"),
    bad("amount-zero", order(0), "invalid_amount", "positive"),
    bad("amount-zero-string", order("0.000"), "invalid_amount", "positive"),
    bad("amount-negative", order(-1), "invalid_amount", "positive"),
    bad("amount-negative-string", order("-0.5"), "invalid_amount", "positive"),
    bad("amount-nan-string", order("NaN"), "invalid_amount", "finite"),
    bad("amount-nan-literal", PREFIX + b"NaN}", "invalid_amount", "finite"),
    bad("amount-infinity-string", order("Infinity"), "invalid_amount", "finite"),
    bad("amount-infinity-literal", PREFIX + b"-Infinity}", "invalid_amount", "finite"),
    bad("amount-overflows-a-double", PREFIX + b"1e999}", "invalid_amount", "at most"),
    bad("amount-non-numeric-string", order("ten"), "invalid_amount", "decimal number"),
    bad("amount-empty-string", order(""), "invalid_amount", "decimal number"),
    bad("amount-hexadecimal", order("0x10"), "invalid_amount", "decimal number"),
    bad("amount-with-underscores", order("1_000"), "invalid_amount", "decimal number"),
    bad("amount-with-non-ascii-digits", order("\u0663"), "invalid_amount", "decimal number"),
    bad("amount-with-a-unit", order("10 SOL"), "invalid_amount", "decimal number"),
    bad("amount-absurdly-large-number", order(10**30), "invalid_amount", "at most"),
    bad("amount-absurdly-large-string", order("1e30"), "invalid_amount", "at most"),
    bad("amount-with-thousands-of-digits", PREFIX + b"1" + b"0" * 3000 + b"}",
        "invalid_amount", "at most"),
    bad("amount-7-decimals-of-usdc-string", {**USDC_BODY, "amount": "1.0000001"},
        "invalid_amount", "6 decimal places"),
    bad("amount-7-decimals-of-usdc-number", {**USDC_BODY, "amount": 1.0000001},
        "invalid_amount", "6 decimal places"),
    # A double cannot hold this number: parsed as a float it would become 1e10
    # and the seventh decimal would be lost instead of refused.
    bad("amount-decimals-beyond-double-precision",
        b'{"inputToken":"USDC","outputToken":"SOL","amount":10000000000.0000001}',
        "invalid_amount", "6 decimal places"),
    bad("amount-10-decimals-of-sol", order("0.0000000001"), "invalid_amount", "9 decimal"),
    bad("amount-bool", order(True), "invalid_amount", "number"),
    bad("amount-array", order([1]), "invalid_amount", "number"),
    bad("amount-object", order({"value": 1}), "invalid_amount", "number"),
    bad("amount-null", order(None), "invalid_amount", "number"),
    # A sniper may name a mint with no pool yet, but it must be a mint address.
    bad("sniper-output-not-a-mint", order(type="sniper", outputToken="NOT-A-MINT"),
        "unknown_token", "32 bytes"),
    bad("type-not-a-string", order(type=1), "unsupported_order_type", "'limit'"),
    bad("unknown-input-token", order(inputToken="DOGE"), "unknown_token", "SOL"),
    bad("unknown-output-token", order(outputToken="usd"), "unknown_token", "USDC"),
    bad("unknown-mint-address", order(outputToken="11111111111111111111111111111111"),
        "unknown_token", "mint"),
    bad("token-with-a-lone-surrogate",
        b'{"inputToken":"\\ud800","outputToken":"USDC","amount":1}', "unknown_token", "SOL"),
    bad("token-not-a-string", order(inputToken=1), "unknown_token", "symbol"),
    bad("token-empty", order(outputToken=""), "unknown_token", "symbol"),
    bad("same-token-both-sides", order(outputToken="SOL"), "same_token", "different"),
    bad("same-token-symbol-and-its-mint", order(outputToken=SOL_MINT), "same_token",
        "different"),
    bad("same-token-in-other-case", order(inputToken="usdc", outputToken="USDC"),
        "same_token", "different"),
    # SOL, USDC, USDT, BONK, JUP: BONK only pairs with SOL and JUP only with
    # USDC, and two-hop routes go through SOL or USDC, so BONK/JUP has none.
    bad("pair-without-any-pool", order(inputToken="BONK", outputToken="JUP"), "no_route",
        "BONK/JUP"),
    bad("slippage-zero", order(slippage_bps=0), "invalid_slippage", "1 to 5000"),
    bad("slippage-above-5000", order(slippage_bps=5001), "invalid_slippage", "1 to 5000"),
    bad("slippage-negative", order(slippage_bps=-1), "invalid_slippage", "1 to 5000"),
    bad("slippage-fractional", order(slippageBps=1.5), "invalid_slippage", "integer"),
    bad("slippage-string", order(slippageBps="50"), "invalid_slippage", "integer"),
    bad("slippage-bool", order(slippageBps=True), "invalid_slippage", "integer"),
    # Once accepted as an order of 0 base units (the decimal context underflowed).
    bad("amount-underflows-to-zero", PREFIX + b"1e-999999999}", "invalid_amount", "exponent"),
    # Once rounded by the 28-digit context to 1 SOL, and executed as 1 SOL.
    bad("amount-more-digits-than-a-decimal-context", PREFIX + b"1.0000000000000000000000000000001}",
        "invalid_amount", "decimal places"),
    bad("amount-41-significant-digits", PREFIX + b"1." + b"1" * 40 + b"}", "invalid_amount",
        "digits"),
    # A limit order's price and every order's options are parsed exactly, per type.
    bad("limit-without-a-price", order(type="limit"), "invalid_limit_price", "needs limitPrice"),
    bad("limit-price-zero", order(type="limit", limitPrice="0"), "invalid_limit_price",
        "positive"),
    bad("limit-price-negative", order(type="limit", limitPrice=-150), "invalid_limit_price",
        "positive"),
    bad("limit-price-not-a-number", order(type="limit", limitPrice="cheap"),
        "invalid_limit_price", "not a decimal number"),
    bad("limit-price-infinite", PREFIX + b'1, "type": "limit", "limitPrice": Infinity}',
        "invalid_limit_price", "finite"),
    bad("limit-price-bool", order(type="limit", limitPrice=True), "invalid_limit_price",
        "decimal string"),
    bad("limit-price-beyond-u64-for-the-amount", order(type="limit", limitPrice="1e30"),
        "invalid_limit_price", "at most 18446744073709551615"),
    bad("limit-price-on-a-market-order", order(limitPrice="150"), "invalid_limit_price",
        "expected type 'limit'"),
    bad("expiry-on-a-market-order", order(expiresInS=60), "invalid_expiry",
        "only an order that waits"),
    bad("expiry-given-twice", order(type="limit", limitPrice="150", expiresInS=60,
        expiresAt="2099-01-01T00:00:00Z"), "invalid_expiry", "got both"),
    bad("expiry-zero-seconds", order(type="limit", limitPrice="150", expiresInS=0),
        "invalid_expiry", "from 1"),
    bad("expiry-seconds-as-a-string", order(type="limit", limitPrice="150", expiresInS="60"),
        "invalid_expiry", "whole seconds"),
    bad("expiry-without-an-offset", order(type="limit", limitPrice="150",
        expiresAt="2099-01-01T00:00:00"), "invalid_expiry", "offset"),
    bad("expiry-in-the-past", order(type="limit", limitPrice="150",
        expiresAt="2020-01-01T00:00:00Z"), "invalid_expiry", "after now"),
    bad("expiry-not-a-time", order(type="limit", limitPrice="150", expiresAt="tomorrow"),
        "invalid_expiry", "RFC 3339"),
    bad("price-impact-zero", order(maxPriceImpactBps=0), "invalid_price_impact", "1 to 10000"),
    bad("price-impact-above-100-percent", order(maxPriceImpactBps=10_001),
        "invalid_price_impact", "1 to 10000"),
    bad("price-impact-fractional", order(maxPriceImpactBps=1.5), "invalid_price_impact",
        "integer"),
    bad("price-impact-negative", order(maxPriceImpactBps=-1), "invalid_price_impact",
        "1 to 10000"),
    bad("price-impact-as-text", order(maxPriceImpactBps="500"), "invalid_price_impact",
        "integer"),
    bad("price-impact-boolean", order(maxPriceImpactBps=True), "invalid_price_impact",
        "integer"),
    bad("price-impact-integral-float", order(maxPriceImpactBps=500.0), "invalid_price_impact",
        "integer"),
    bad("price-impact-past-u64", order(maxPriceImpactBps=2**70), "invalid_price_impact",
        "1 to 10000"),
    bad("priority-fee-negative", order(priorityFee=-1), "invalid_priority_fee", "from 0"),
    bad("priority-fee-a-word", order(priorityFee="fast"), "invalid_priority_fee", "auto"),
    bad("priority-fee-fractional", order(priorityFee=1.5), "invalid_priority_fee", "auto"),
    bad("sniper-filter-on-a-limit-order", order(type="limit", limitPrice="150",
        minLiquidity="50"), "invalid_sniper_filter", "expected type 'sniper'"),
    bad("sniper-filter-not-a-bool", order(type="sniper", requireMintAuthorityRevoked="yes"),
        "invalid_sniper_filter", "true or false"),
    bad("sniper-liquidity-too-precise", order(type="sniper", minLiquidity="0.0000000001"),
        "invalid_sniper_filter", "minLiquidity"),
    bad("type-unknown", order(type="twap"), "unsupported_order_type", "'market'"),
    bad("unknown-field", order(stopPrice="150"), "unknown_field", "'stopPrice'"),
    bad("huge-exponent-in-an-unknown-field", PREFIX + b'1, "x": 1e999999999}', "unknown_field",
        "'x'"),
]
# fmt: on


@pytest.mark.parametrize(("body", "code", "says"), BAD_BODIES)
async def test_bad_input_gets_a_4xx_problem_saying_what_was_expected(
    api: tuple[Engine, str, aiohttp.ClientSession],
    body: Any,
    code: str,
    says: str,
) -> None:
    _, url, session = api
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(
        url + EXECUTE, data=raw, headers={"Content-Type": "application/json"}
    ) as response:
        message = await assert_problem(response, 422, code)
    assert says in message, message
    await assert_still_serving(session, url)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        None,
    ],
    ids=["text", "form", "multipart", "xml", "none"],
)
async def test_a_body_that_is_not_declared_as_json_gets_415(
    api: tuple[Engine, str, aiohttp.ClientSession], content_type: str | None
) -> None:
    _, url, session = api
    headers = {"Content-Type": content_type} if content_type else {}
    async with session.post(
        url + EXECUTE,
        data=orjson.dumps(order()),
        headers=headers,
        skip_auto_headers=["Content-Type"],
    ) as response:
        message = await assert_problem(response, 415, "unsupported_media_type")
    assert "application/json" in message
    await assert_still_serving(session, url)


async def test_a_json_content_type_with_a_charset_is_accepted(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    _, url, session = api
    async with session.post(
        url + EXECUTE,
        data=orjson.dumps(order()),
        headers={"Content-Type": "application/json; charset=utf-8"},
    ) as response:
        assert response.status == 201, await response.text()


@pytest.mark.parametrize(
    "size", [MAX_BODY + 1, 64 * MAX_BODY, 1024 * 1024], ids=["one-byte-over", "64x", "1MiB"]
)
async def test_a_body_over_the_size_limit_gets_413_with_a_content_length(
    api: tuple[Engine, str, aiohttp.ClientSession], size: int
) -> None:
    _, url, session = api
    prefix = b'{"inputToken":"SOL","outputToken":"USDC","amount":1,"pad":"'
    raw = prefix + b"x" * (size - len(prefix) - 2) + b'"}'
    assert len(raw) == size
    async with session.post(
        url + EXECUTE, data=raw, headers={"Content-Type": "application/json"}
    ) as response:
        message = await assert_problem(response, 413, "payload_too_large")
    assert str(MAX_BODY) in message
    await assert_still_serving(session, url)


@pytest.mark.parametrize("chunks", [5, 300], ids=["just-over", "far-over"])
async def test_a_chunked_body_over_the_size_limit_gets_413(
    api: tuple[Engine, str, aiohttp.ClientSession], chunks: int
) -> None:
    _, url, session = api

    async def body() -> AsyncIterator[bytes]:
        yield b'{"inputToken":"SOL","outputToken":"USDC","amount":1,"pad":"'
        for _ in range(chunks):
            yield b"x" * 1000
        yield b'"}'

    async with session.post(
        url + EXECUTE, data=body(), headers={"Content-Type": "application/json"}
    ) as response:
        assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
        message = await assert_problem(response, 413, "payload_too_large")
    assert str(MAX_BODY) in message
    await assert_still_serving(session, url)


async def test_a_chunked_body_within_the_limit_is_accepted(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    _, url, session = api

    async def body() -> AsyncIterator[bytes]:
        raw = orjson.dumps(order("0.5"))
        for i in range(0, len(raw), 7):
            yield raw[i : i + 7]

    async with session.post(
        url + EXECUTE, data=body(), headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 201, await response.text()


# fmt: off
WEIRD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, 1e308, -1e308, 2**64, 2**200, "", " ", "x" * 65,
    "x" * 2000, "\u0000", "NaN", "-Infinity", "1e-400", [], {}, [1, 2], {"a": {"b": []}},
    "SOL", SOL_MINT, "0.1", "\ud7ff", "\ud800", "1\u0000",
]
# fmt: on


async def test_no_value_in_any_field_makes_the_server_answer_5xx(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    _, url, session = api
    for field in ("inputToken", "outputToken", "amount", "slippageBps"):
        for value in WEIRD_VALUES:
            body = {**order(), field: value}
            async with session.post(url + EXECUTE, json=body) as response:
                raw = await response.read()
                assert response.status < 500, (field, value, raw)
                if response.status >= 400:
                    assert response.content_type == PROBLEM_JSON, (field, value, raw)
                    problem = orjson.loads(raw)
                    assert problem["code"], (field, value, problem)
                    assert problem["message"], (field, value, problem)


async def test_the_server_still_executes_orders_after_all_that_bad_input(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("0.25"))
    await wait_for_status(engine, order_id, "confirmed", "failed")
    stored = await engine.repo.get(uuid.UUID(order_id))
    assert stored is not None
    assert stored.status.value == "confirmed"


async def test_other_methods_and_a_plain_get_on_the_websocket_path_are_4xx_problems(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    _, url, session = api
    async with session.put(url + EXECUTE, json=order()) as response:
        await assert_problem(response, 405, "method_not_allowed")
    async with session.get(url + "/no/such/path") as response:
        await assert_problem(response, 404, "not_found")
    async with session.get(url + EXECUTE) as response:
        message = await assert_problem(response, 426, "upgrade_required")
    assert "WebSocket" in message
