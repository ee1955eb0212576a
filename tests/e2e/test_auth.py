"""API keys over real HTTP and WebSockets: who may call, and whose orders they see.

Another key's order must look exactly like an order that does not exist: same
status, same code, same message (with the id the caller asked about), nothing
about its owner, on every route and on the socket.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from order_engine.ports.order_queries import OrderFilter
from order_engine.settings import Settings
from tests.e2e.accounts import bearer, get_json, key_id, new_key, post_order, problem_of
from tests.e2e.wire import EXECUTE, eventually, order, read_to_close, receive_json, ws_url
from tests.support.harness import running_engine, serving


async def test_with_no_key_created_the_embedded_api_is_open(api_settings: Settings) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        status, _, body = await post_order(session, url, order("1"))
        assert status == 201, body
        assert (await get_json(session, url, f"/api/orders/{body['orderId']}"))[0] == 200
        assert not await engine.gateway.auth.enforced()


async def test_once_a_key_exists_a_request_without_one_gets_a_401_problem(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        await new_key(engine)
        for method, path in (("POST", EXECUTE), ("GET", "/api/orders"), ("GET", "/api/quote")):
            async with session.request(method, url + path, json=order("1")) as response:
                body = await problem_of(response, 401, "unauthorized")
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "Authorization: Bearer" in body["message"], body
        async with session.get(url + "/healthz") as response:
            assert response.status == 200  # health, readiness and metrics stay open


async def test_a_key_created_while_serving_takes_effect_within_the_cache_period(
    api_settings: Settings,
) -> None:
    settings = api_settings.model_copy(update={"auth_cache_s": 0.5})
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        assert (await post_order(session, url, order("1")))[0] == 201
        await new_key(engine)

        async def refused() -> bool:
            return (await post_order(session, url, order("1")))[0] == 401

        await eventually(refused, "anonymous requests refused once a key exists", within=3)


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
async def test_a_key_is_accepted_as_a_bearer_token_or_an_x_api_key_header(
    api_settings: Settings, header: str
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        value = f"Bearer {key}" if header == "Authorization" else key
        async with session.post(url + EXECUTE, json=order("1"), headers={header: value}) as r:
            assert r.status == 201, await r.text()
            order_id = (await r.json())["orderId"]
        stored = await engine.repo.get(uuid.UUID(order_id))
        assert stored is not None
        assert stored.owner == key_id(key)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer oek_0123456789_" + "A" * 43},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"Authorization": "Bearer"},
        {"X-API-Key": ""},
        {"X-API-Key": "oek_0123456789_" + "B" * 43},
    ],
    ids=["unknown", "garbage", "basic-scheme", "no-key", "empty", "unknown-header"],
)
async def test_a_bad_key_gets_a_401_that_never_echoes_the_secret(
    api_settings: Settings, headers: dict[str, str]
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        await new_key(engine)
        async with session.post(url + EXECUTE, json=order("1"), headers=headers) as response:
            body = await problem_of(response, 401, "unauthorized")
        for secret in ("A" * 43, "B" * 43, "YWxpY2U6c2VjcmV0"):
            assert secret not in orjson.dumps(body).decode()
        assert await engine.gateway.queries.list_orders(OrderFilter(), limit=5) == []


async def test_a_revoked_key_gets_a_401_saying_so_and_its_orders_stay_its_own(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key, other = await new_key(engine, "alice"), await new_key(engine, "bob")
        _, _, accepted = await post_order(session, url, order("1"), key=key)
        assert await engine.gateway.auth.keys.revoke(key_id(key), engine.orders.clock.now())
        async with session.get(url + "/api/orders", headers=bearer(key)) as response:
            body = await problem_of(response, 401, "unauthorized")
        assert "revoked" in body["message"]
        status, _ = await get_json(session, url, f"/api/orders/{accepted['orderId']}", key=other)
        assert status == 404


async def test_another_keys_order_is_a_404_everywhere_exactly_like_an_unknown_order(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        alice, bob = await new_key(engine, "alice"), await new_key(engine, "bob")
        _, _, placed = await post_order(session, url, order("1.25"), key=alice)
        theirs, unknown = placed["orderId"], str(uuid.uuid4())

        for path in ("/api/orders/{}", "/api/orders/{}/events"):
            seen: list[dict[str, Any]] = []
            for order_id in (theirs, unknown):
                async with session.get(url + path.format(order_id), headers=bearer(bob)) as r:
                    body = await problem_of(r, 404, "order_not_found")
                seen.append(orjson.loads(orjson.dumps(body).decode().replace(order_id, "<id>")))
            assert seen[0] == seen[1], seen
            assert key_id(alice) not in orjson.dumps(seen[0]).decode()

        status, listed = await get_json(session, url, "/api/orders", key=bob)
        assert (status, listed["orders"]) == (200, [])
        status, listed = await get_json(session, url, "/api/orders", key=alice)
        assert [o["orderId"] for o in listed["orders"]] == [theirs]

        closes = []
        for order_id in (theirs, unknown):
            async with session.ws_connect(ws_url(url, orderId=order_id, apiKey=bob)) as ws:
                stream = await read_to_close(ws)
            closes.append((stream.close_code, stream.messages[0]["message"].replace(order_id, "")))
        assert closes[0] == closes[1] == (4404, "no order with id ")


async def test_orders_made_before_keys_existed_belong_to_no_key(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        _, _, anonymous = await post_order(session, url, order("1"))
        key = await new_key(engine)
        status, _ = await get_json(session, url, f"/api/orders/{anonymous['orderId']}", key=key)
        assert status == 404


# --- WebSocket ----------------------------------------------------------------------------


async def test_a_socket_takes_the_key_as_a_query_parameter_a_header_or_a_first_message(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        async with session.ws_connect(ws_url(url, apiKey=key)) as ws:
            await ws.send_str(orjson.dumps(order("1")).decode())
            by_query = (await receive_json(ws))["orderId"]
        async with session.ws_connect(ws_url(url), headers=bearer(key)) as ws:
            await ws.send_str(orjson.dumps(order("1")).decode())
            by_header = (await receive_json(ws))["orderId"]
        async with session.ws_connect(ws_url(url)) as ws:
            await ws.send_str(orjson.dumps({"apiKey": key}).decode())
            await ws.send_str(orjson.dumps(order("1")).decode())
            by_message = (await receive_json(ws))["orderId"]
        async with session.ws_connect(ws_url(url)) as ws:
            await ws.send_str(orjson.dumps({**order("1"), "apiKey": key}).decode())
            in_the_order = (await receive_json(ws))["orderId"]
        async with session.ws_connect(ws_url(url, orderId=by_query)) as ws:
            await ws.send_str(orjson.dumps({"apiKey": key}).decode())
            followed = await read_to_close(ws)
        assert followed.close_code == 1000
        assert followed.events[0]["orderId"] == by_query
        for order_id in (by_query, by_header, by_message, in_the_order):
            stored = await engine.repo.get(uuid.UUID(order_id))
            assert stored is not None
            assert stored.owner == key_id(key)


@pytest.mark.parametrize(
    ("first", "params"),
    [
        (order("1"), {}),  # an order, but no key in it
        ({"apiKey": "oek_0123456789_" + "C" * 43}, {}),
        (None, {"apiKey": "wrong"}),
    ],
    ids=["order-without-key", "unknown-key", "bad-query-key"],
)
async def test_a_socket_without_a_valid_key_gets_an_error_and_a_4401_close(
    api_settings: Settings, first: dict[str, Any] | None, params: dict[str, str]
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        await new_key(engine)
        async with session.ws_connect(ws_url(url, **params)) as ws:
            if first is not None:
                await ws.send_str(orjson.dumps(first).decode())
            stream = await read_to_close(ws)
        assert stream.close_code == 4401
        [error] = stream.messages
        assert (error["type"], error["code"]) == ("error", "unauthorized")
        assert "C" * 43 not in error["message"]
        assert await engine.gateway.queries.list_orders(OrderFilter(), limit=5) == []


async def test_a_burst_over_the_rate_limit_gets_429_with_retry_after_per_key(
    api_settings: Settings,
) -> None:
    settings = api_settings.model_copy(update={"rate_limit_per_s": 2.0, "rate_limit_burst": 3})
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        alice, bob = await new_key(engine, "alice"), await new_key(engine, "bob")
        statuses = [(await get_json(session, url, "/api/orders", key=alice))[0] for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        async with session.get(url + "/api/orders", headers=bearer(alice)) as response:
            body = await problem_of(response, 429, "rate_limited")
            retry_after = int(response.headers["Retry-After"])
        assert 1 <= retry_after <= 2, body
        assert (await get_json(session, url, "/api/orders", key=bob))[0] == 200
        await asyncio.sleep(0.6)  # a token every 0.5 s
        assert (await get_json(session, url, "/api/orders", key=alice))[0] == 200
        async with session.get(url + "/metrics", headers=bearer(bob)) as response:
            text = await response.text()
        assert 'order_engine_requests_rejected_total{reason="rate_limited"} 3.0' in text


async def test_metrics_need_a_key_once_keys_are_enforced(api_settings: Settings) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(url + "/metrics") as response:
            assert response.status == 200  # open mode (loopback only)
        key = await new_key(engine)
        async with session.get(url + "/metrics") as response:
            await problem_of(response, 401, "unauthorized")
        async with session.get(url + "/metrics", headers=bearer(key)) as response:
            assert response.status == 200
            assert "order_engine_queue_depth" in await response.text()


async def test_while_open_only_loopback_hosts_and_origins_are_served(
    api_settings: Settings,
) -> None:
    """No key yet: a DNS-rebound name or another site's page must not trade the wallet."""
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        port = url.rsplit(":", 1)[1]
        for headers in (
            {"Host": f"evil.example:{port}"},
            {"Origin": "https://evil.example"},
            {"Host": f"localhost:{port}", "Origin": "http://127.0.0.1.evil.example"},
        ):
            async with session.post(url + EXECUTE, json=order("1"), headers=headers) as response:
                body = await problem_of(response, 403, "forbidden_host")
            assert "OPEN_MODE_HOSTS" in body["message"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url(url), headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        # A page served by the engine itself (same origin) works, as does a plain client.
        same_origin = {"Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"}
        async with session.post(url + EXECUTE, json=order("1"), headers=same_origin) as response:
            assert response.status == 201
        async with session.ws_connect(ws_url(url), headers={"Origin": url}) as ws:
            await ws.send_str(orjson.dumps(order("1")).decode())
            assert "orderId" in await receive_json(ws)
        # Once a key exists the check stands aside: the key is what protects the API.
        key = await new_key(engine)
        async with session.get(
            url + "/api/orders", headers={**bearer(key), "Host": f"engine.example:{port}"}
        ) as response:
            assert response.status == 200


async def test_without_keys_callers_are_rate_limited_by_their_address(
    api_settings: Settings,
) -> None:
    settings = api_settings.model_copy(update={"rate_limit_per_s": 0.5, "rate_limit_burst": 3})
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        statuses = [(await get_json(session, url, "/api/orders"))[0] for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        async with session.ws_connect(ws_url(url)) as ws:
            refused = await read_to_close(ws)
        assert refused.close_code == 4429


async def test_refused_keys_are_rate_limited_per_address(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"rate_limit_per_s": 0.5, "rate_limit_burst": 3})
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        await new_key(engine)
        guess = "oek_0123456789_" + "C" * 43
        statuses = [(await get_json(session, url, "/api/orders", key=guess))[0] for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429]


async def test_a_first_message_carrying_key_and_order_is_held_to_the_size_limit_and_parsed_once(
    api_settings: Settings,
) -> None:
    """It was parsed once for the key (unbounded, as floats) and re-encoded for the
    order, so the size limit never saw it and its digits went through a float."""
    settings = api_settings.model_copy(update={"max_body_bytes": 1024})
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        padded = {**order("1"), "apiKey": key, "pad": "x" * 4000}
        async with session.ws_connect(ws_url(url)) as ws:
            await ws.send_str(orjson.dumps(padded).decode())
            refused = await read_to_close(ws)
        assert refused.close_code == 1008
        assert refused.messages[0]["code"] == "payload_too_large"
        # 1e10 + 1e-6 USDC: a float would make it 1e10 and lose the last digit.
        exact = (
            '{"inputToken":"USDC","outputToken":"SOL","amount":10000000000.000001,"apiKey":"%s"}'
        )
        async with session.ws_connect(ws_url(url)) as ws:
            await ws.send_str(exact % key)
            order_id = (await receive_json(ws))["orderId"]
        stored = await engine.repo.get(uuid.UUID(order_id))
        assert stored is not None
        assert stored.amount_in == 10_000_000_000_000_001


async def test_a_socket_submit_with_an_idempotency_key_is_replayed_not_repeated(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        message = {**order("1"), "apiKey": key, "idempotencyKey": "retry-me"}
        replies = []
        for _ in range(2):
            async with session.ws_connect(ws_url(url)) as ws:
                await ws.send_str(orjson.dumps(message).decode())
                replies.append(await receive_json(ws))
        assert replies[0]["orderId"] == replies[1]["orderId"]
        assert "replayed" not in replies[0]
        assert replies[1]["replayed"] is True
        # The same key over HTTP is the same order too.
        async with session.post(
            url + "/api/orders/execute",
            json=order("1"),
            headers={**bearer(key), "Idempotency-Key": "retry-me"},
        ) as response:
            assert (await response.json())["orderId"] == replies[0]["orderId"]
        async with session.ws_connect(ws_url(url)) as ws:
            await ws.send_str(orjson.dumps({**message, "amount": "2"}).decode())
            reused = await read_to_close(ws)
        assert reused.close_code == 1008
        assert reused.messages[0]["code"] == "idempotency_key_reused"


async def ws_ticket(session: aiohttp.ClientSession, url: str, key: str | None) -> str:
    headers = bearer(key) if key else {}
    async with session.post(f"{url}/api/ws-tickets", headers=headers) as response:
        body = await response.json(content_type=None)
        assert response.status == 201, body
        assert response.headers["Cache-Control"] == "no-store"
        ticket: str = body["ticket"]
        return ticket


def stream_url(url: str, **params: str) -> URL:
    return ws_url(url).with_path("/api/orders/stream").with_query(params)


async def test_a_socket_takes_a_single_use_ticket_instead_of_a_key_in_its_url(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        async with session.post(f"{url}/api/ws-tickets") as refused:
            assert refused.status == 401
        ticket = await ws_ticket(session, url, key)
        assert key not in ticket
        async with session.ws_connect(ws_url(url, ticket=ticket)) as ws:
            await ws.send_str(orjson.dumps(order("1")).decode())
            order_id = (await receive_json(ws))["orderId"]
        stored = await engine.repo.get(uuid.UUID(order_id))
        assert stored is not None
        assert stored.owner == key_id(key)  # the ticket stood for the key
        # Once only, on either socket.
        async with session.ws_connect(stream_url(url, ticket=ticket)) as ws:
            again = await read_to_close(ws)
        assert again.close_code == 4401
        assert "invalid ticket" in again.messages[0]["message"]
        fresh = await ws_ticket(session, url, key)
        async with session.ws_connect(stream_url(url, ticket=fresh)) as ws:
            assert (await receive_json(ws))["type"] == "subscribed"


async def test_a_ticket_expires_and_one_for_a_revoked_key_is_refused(
    api_settings: Settings,
) -> None:
    settings = api_settings.model_copy(update={"ws_ticket_ttl_s": 0.3, "auth_cache_s": 0.01})
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        late = await ws_ticket(session, url, key)
        await asyncio.sleep(0.4)
        async with session.ws_connect(stream_url(url, ticket=late)) as ws:
            expired = await read_to_close(ws)
        assert expired.close_code == 4401
        revoked = await ws_ticket(session, url, key)
        assert await engine.gateway.auth.keys.revoke(key_id(key), engine.clock.now())
        await asyncio.sleep(0.05)
        async with session.ws_connect(stream_url(url, ticket=revoked)) as ws:
            refused = await read_to_close(ws)
        assert refused.close_code == 4401
        assert "revoked" in refused.messages[0]["message"]
