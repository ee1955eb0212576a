"""Idempotency-Key on POST /api/orders/execute, over real HTTP, on both backends:
Stripe's semantics, one order however many retries race, keys scoped per API key."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from order_engine.adapters.db.schema import idempotency_keys
from order_engine.app.orders import OrderRequest
from order_engine.bootstrap import Engine
from order_engine.ports.idempotency import Started
from order_engine.ports.order_queries import OrderFilter
from order_engine.settings import Settings
from tests.e2e.accounts import bearer, key_id, new_key, post_order, problem_of
from tests.e2e.wire import EXECUTE, eventually, order
from tests.support.harness import database, running_engine, serving


async def test_a_retry_with_the_same_key_and_order_gets_the_same_response_and_no_new_order(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        first = await post_order(session, url, order("2"), key=key, idempotency_key="retry-1")
        # The same order, written differently, is the same request.
        again = await post_order(
            session, url, {**order("2.0"), "slippageBps": 50}, key=key, idempotency_key="retry-1"
        )
        assert first[0] == again[0] == 201
        assert again[2] == first[2]
        assert again[1]["Location"] == first[1]["Location"] == f"/api/orders/{first[2]['orderId']}"
        assert again[1]["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first[1]
        stored = await engine.gateway.queries.list_orders(OrderFilter(), limit=10)
        assert [str(o.id) for o in stored] == [first[2]["orderId"]]


async def test_the_same_key_with_a_different_order_is_refused_with_a_clear_code(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        await post_order(session, url, order("2"), key=key, idempotency_key="k")
        headers = {**bearer(key), "Idempotency-Key": "k"}
        async with session.post(url + EXECUTE, json=order("3"), headers=headers) as response:
            body = await problem_of(response, 422, "idempotency_key_reused")
        assert "different order" in body["message"]
        assert len(await engine.gateway.queries.list_orders(OrderFilter(), limit=10)) == 1


async def test_the_same_key_while_the_first_request_is_in_flight_gets_409(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        # The first request holds the key (reserved, its order not yet written).
        held = await engine.gateway.idempotency.begin(key_id(key), "k", _sol_usdc(engine, "2"))
        assert isinstance(held, Started)
        headers = {**bearer(key), "Idempotency-Key": "k"}
        async with session.post(url + EXECUTE, json=order("2"), headers=headers) as response:
            await problem_of(response, 409, "idempotency_key_in_use")
            assert response.headers["Retry-After"] == "1"
        assert await engine.gateway.queries.list_orders(OrderFilter(), limit=10) == []


async def test_fifty_concurrent_requests_with_one_key_create_exactly_one_order(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):
        key = await new_key(engine)
        results = await asyncio.gather(
            *(
                post_order(session, url, order("1"), key=key, idempotency_key="race")
                for _ in range(50)
            )
        )
        statuses = Counter(status for status, _, _ in results)
        assert set(statuses) <= {201, 409}, statuses
        created = {body["orderId"] for status, _, body in results if status == 201}
        stored = await engine.gateway.queries.list_orders(OrderFilter(), limit=100)
        assert len(stored) == 1, statuses
        assert created == {str(stored[0].id)}
        # Once settled, every retry replays that one order.
        status, _, body = await post_order(
            session, url, order("1"), key=key, idempotency_key="race"
        )
        assert (status, body["orderId"]) == (201, str(stored[0].id))


async def test_keys_are_scoped_to_the_api_key_that_used_them(api_settings: Settings) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        alice, bob = await new_key(engine, "alice"), await new_key(engine, "bob")
        _, _, theirs = await post_order(session, url, order("1"), key=alice, idempotency_key="k")
        status, _, mine = await post_order(session, url, order("1"), key=bob, idempotency_key="k")
        assert status == 201
        assert mine["orderId"] != theirs["orderId"]
        status, _, _ = await post_order(session, url, order("7"), key=bob, idempotency_key="k2")
        assert status == 201
        # Alice's key "k2" is not Bob's: her different order under it is no mismatch.
        status, _, _ = await post_order(session, url, order("8"), key=alice, idempotency_key="k2")
        assert status == 201


@pytest.mark.parametrize(
    ("value", "ok"),
    [("k" * 255, True), ("a1b2-c3d4:e5/f6", True), ("k" * 256, False), ("two words", False)],
    ids=["255-chars", "punctuation", "256-chars", "space"],
)
async def test_a_key_is_up_to_255_visible_characters(
    api_settings: Settings, value: str, ok: bool
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        headers = {"Idempotency-Key": value}
        async with session.post(url + EXECUTE, json=order("1"), headers=headers) as response:
            if ok:
                assert response.status == 201, await response.text()
            else:
                body = await problem_of(response, 422, "invalid_idempotency_key")
                assert body["errors"][0]["field"] == "Idempotency-Key"


async def test_an_invalid_order_never_takes_the_key(api_settings: Settings) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        status, _, _ = await post_order(session, url, order("-1"), idempotency_key="k")
        assert status == 422
        status, _, _ = await post_order(session, url, order("1"), idempotency_key="k")
        assert status == 201


async def test_a_refused_order_releases_its_key_for_a_retry(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"max_queue_depth": 1, "queue_depth_cache_s": 0.0})
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        for _ in range(2):  # no workers: the queue only grows
            assert (await post_order(session, url, order("1")))[0] == 201
        status, _, body = await post_order(session, url, order("1"), idempotency_key="k")
        assert (status, body["code"]) == (503, "queue_full")
        engine.gateway.backpressure.max_depth = 0  # the bound lifted: the retry goes through
        status, _, _ = await post_order(session, url, order("1"), idempotency_key="k")
        assert status == 201


async def test_under_backpressure_a_keyed_request_writes_no_reservation(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backpressure comes before the reservation: an overload costs no write per
    refused request (it cost one reservation and one abandon each before)."""
    settings = api_settings.model_copy(update={"max_queue_depth": 1, "queue_depth_cache_s": 0.0})
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        for _ in range(2):  # no workers: the queue only grows
            assert (await post_order(session, url, order("1")))[0] == 201
        store = engine.gateway.idempotency.store
        calls: list[str] = []
        for name in ("begin", "abandon"):
            real = getattr(store, name)

            async def counted(*args: Any, _real: Any = real, _name: str = name) -> Any:
                calls.append(_name)
                return await _real(*args)

            monkeypatch.setattr(store, name, counted)
        for attempt in range(3):
            status, _, body = await post_order(
                session, url, order("1"), idempotency_key=f"k{attempt}"
            )
            assert (status, body["code"]) == (503, "queue_full")
        assert calls == []


def _sol_usdc(engine: Engine, amount: str) -> OrderRequest:
    return engine.orders.validate("SOL", "USDC", amount)


async def test_in_open_mode_a_retry_without_any_api_key_is_replayed_too(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = str(uuid.uuid4())
        first = await post_order(session, url, order("1"), idempotency_key=key)
        again = await post_order(session, url, order("1"), idempotency_key=key)
        assert (first[0], again[0]) == (201, 201)
        assert again[2]["orderId"] == first[2]["orderId"]
        assert len(await engine.gateway.queries.list_orders(OrderFilter(), limit=10)) == 1


async def test_a_process_serving_the_api_purges_keys_past_their_retention_without_workers(
    api_settings: Settings,
) -> None:
    # No workers, so no reconciler: the purge belongs to the processes that write keys.
    settings = api_settings.model_copy(update={"idempotency_purge_s": 0.05})
    async with running_engine(settings, workers=False) as engine:
        store = engine.gateway.idempotency.store
        now = engine.orders.clock.now()
        for key, age_h in (("old", 25), ("recent", 23)):
            created = now - timedelta(hours=age_h)
            outcome = await store.begin(
                "alice", key, "h", created, expired_before=created, stale_before=created
            )
            assert isinstance(outcome, Started)

        async def keys_left() -> set[str]:
            async with database(engine).engine.connect() as conn:
                return set((await conn.scalars(select(idempotency_keys.c.key))).all())

        async def purged() -> bool:
            return await keys_left() == {"recent"}

        await eventually(purged, "the key older than 24 h to be purged")
