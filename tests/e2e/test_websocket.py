"""The WebSocket on /api/orders/execute over real loopback: following an order at
any moment, submitting over the socket, errors, and what a subscriber costs."""

from __future__ import annotations

import asyncio
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from order_engine.adapters.memory import InMemoryEventBus
from order_engine.api import ws as ws_module
from order_engine.bootstrap import Engine
from tests.e2e.wire import (
    LIFECYCLE,
    Stream,
    assert_gapless_lifecycle,
    eventually,
    follow,
    order,
    read_to_close,
    receive_json,
    slots_held,
    submit,
    wait_for_status,
    ws_url,
)
from tests.integration.helpers import executor_of
from tests.support.harness import engine_settings, open_sockets, running_engine, serving

# One event loop for the module, so that the tests which do not change the engine
# (faults, workers, the slot clock) can share one engine and server.
pytestmark = pytest.mark.asyncio(loop_scope="module")
Api = tuple[Engine, str, aiohttp.ClientSession]

BASE58_SIGNATURE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{86,88}")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


async def stored_messages(engine: Engine, order_id: str) -> list[dict[str, Any]]:
    return [e.to_message() for e in await engine.repo.events(uuid.UUID(order_id))]


def subscriptions(engine: Engine) -> int:
    """Live listeners of the process's stream tailer, which alone holds a bus subscription."""
    assert isinstance(engine.bus, InMemoryEventBus)
    assert engine.bus.subscription_count <= 1, "only the stream tailer subscribes to the bus"
    return engine.streams.listener_count


async def no_subscriptions_left(engine: Engine) -> None:
    async def released() -> bool:
        return subscriptions(engine) == 0 and open_sockets(engine) == 0

    await eventually(released, "every bus subscription and socket to be released")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    settings = engine_settings(tmp_path_factory.mktemp("ws"))
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        yield engine, url, session


# --- following an order --------------------------------------------------------------------


async def test_a_subscriber_from_before_the_order_runs_sees_every_status_with_its_details(
    tmp_path: Path,
) -> None:
    async with (
        running_engine(engine_settings(tmp_path), workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        order_id = await submit(session, url, order("2", slippage_bps=80))
        async with session.ws_connect(ws_url(url, orderId=order_id)) as ws:
            first = await receive_json(ws)
            assert (first["seq"], first["status"]) == (1, "pending")
            await engine.queue.start(executor_of(engine), 4)  # only now does the order run
            rest = await read_to_close(ws)
        stream = Stream([first, *rest.messages], rest.close_code)
        assert_gapless_lifecycle(stream, order_id)
        assert stream.messages == await stored_messages(engine, order_id)
        pending, routing, building, submitted, confirmed = stream.messages
        for message in stream.messages:
            assert ISO_UTC.fullmatch(message["timestamp"]), message

        assert pending["inputToken"] == "SOL"
        assert pending["outputToken"] == "USDC"
        assert pending["amountIn"] == "2"
        assert pending["slippageBps"] == 80

        assert routing["quotes"], routing
        for quote in routing["quotes"]:
            assert {"venue", "amountOut", "fee", "priceImpactBps"} <= set(quote), quote
            assert quote["venue"] in {"raydium", "meteora"}
            assert Decimal(quote["amountOut"]) > 0
            assert Decimal(quote["fee"]) >= 0
            assert Decimal(quote["priceImpactBps"]).is_finite()
        assert {q["venue"] for q in routing["quotes"]} == {"raydium", "meteora"}
        plan = routing["plan"]
        assert plan["dex"]
        assert Decimal(plan["minAmountOut"]) <= Decimal(plan["expectedAmountOut"])

        assert building["dex"] == plan["dex"]
        assert building["expectedAmountOut"] == plan["expectedAmountOut"]
        assert building["minAmountOut"] == plan["minAmountOut"]
        assert int(plan["minAmountOutRaw"]) == int(plan["expectedAmountOutRaw"]) * 9_920 // 10_000
        minimum = Decimal(building["minAmountOut"])

        assert BASE58_SIGNATURE.fullmatch(submitted["txHash"])

        assert confirmed["txHash"] == submitted["txHash"]
        assert confirmed["dex"] == building["dex"]
        assert confirmed["amountIn"] == "2"
        amount_out = Decimal(confirmed["amountOut"])
        assert amount_out >= minimum
        price = Decimal(confirmed["executedPrice"])
        assert abs(price - amount_out / 2) < Decimal("1e-9")
        assert engine.simulator is not None
        assert engine.simulator.executions(confirmed["txHash"]) == 1


async def test_a_subscriber_who_arrives_mid_order_gets_the_history_then_the_rest_live(
    tmp_path: Path,
) -> None:
    async with (
        running_engine(engine_settings(tmp_path)) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
        slots_held(engine) as release,
    ):
        order_id = await submit(session, url, order("1"))
        await wait_for_status(engine, order_id, "submitted")
        async with session.ws_connect(ws_url(url, orderId=order_id)) as ws:
            replayed = [await receive_json(ws) for _ in range(4)]
            assert [m["status"] for m in replayed] == LIFECYCLE[:4]
            await release()  # the transaction lands only now
            rest = await read_to_close(ws)
        stream = Stream([*replayed, *rest.messages], rest.close_code)
        assert_gapless_lifecycle(stream, order_id)
        assert stream.messages == await stored_messages(engine, order_id)


async def test_a_subscriber_who_arrives_after_the_end_gets_the_whole_history_and_a_close(
    api: Api,
) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("1"))
    await wait_for_status(engine, order_id, "confirmed")
    started = time.monotonic()
    stream = await follow(session, url, order_id)
    assert time.monotonic() - started < 2
    assert_gapless_lifecycle(stream, order_id)
    assert stream.messages == await stored_messages(engine, order_id)


@pytest.mark.parametrize("after_seq", [0, 1, 2, 3, 4, 5])
async def test_after_seq_replays_exactly_the_events_after_it(api: Api, after_seq: int) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("1"))
    await wait_for_status(engine, order_id, "confirmed")
    # A client that already has the terminal event (afterSeq=5) is told so at once.
    async with session.ws_connect(ws_url(url, orderId=order_id, afterSeq=after_seq)) as ws:
        stream = await read_to_close(ws, within=2)
    assert stream.seqs == list(range(after_seq + 1, 6))
    assert stream.close_code == 1000
    assert stream.messages == (await stored_messages(engine, order_id))[after_seq:]


async def test_after_seq_mid_order_resumes_without_a_gap_or_a_duplicate(tmp_path: Path) -> None:
    async with (
        running_engine(engine_settings(tmp_path)) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
        slots_held(engine) as release,
    ):
        order_id = await submit(session, url, order("1"))
        await wait_for_status(engine, order_id, "submitted")
        async with session.ws_connect(ws_url(url, orderId=order_id, afterSeq=2)) as ws:
            replayed = [await receive_json(ws) for _ in range(2)]
            await release()
            rest = await read_to_close(ws)
        stream = Stream([*replayed, *rest.messages], rest.close_code)
        assert stream.seqs == [3, 4, 5]
        assert stream.statuses == ["building", "submitted", "confirmed"]
        assert stream.close_code == 1000


async def test_many_subscribers_at_different_moments_all_get_the_same_complete_stream(
    tmp_path: Path,
) -> None:
    async with (
        running_engine(engine_settings(tmp_path), workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
        slots_held(engine) as release,
    ):
        order_id = await submit(session, url, order("4"))

        async def subscriber(ready: asyncio.Event) -> Stream:
            async with session.ws_connect(ws_url(url, orderId=order_id)) as ws:
                first = await receive_json(ws)
                ready.set()
                rest = await read_to_close(ws)
            return Stream([first, *rest.messages], rest.close_code)

        async def join(count: int) -> list[asyncio.Task[Stream]]:
            ready = [asyncio.Event() for _ in range(count)]
            tasks = [asyncio.create_task(subscriber(r)) for r in ready]
            async with asyncio.timeout(10):
                await asyncio.gather(*(r.wait() for r in ready))
            return tasks

        early = await join(20)  # while the order is only pending
        await engine.queue.start(executor_of(engine), 4)
        await wait_for_status(engine, order_id, "submitted")
        middle = await join(20)  # while its transaction waits to land
        await release()
        await wait_for_status(engine, order_id, "confirmed")
        late = await join(10)  # after it finished
        async with asyncio.timeout(10):
            streams = await asyncio.gather(*early, *middle, *late)
        history = await stored_messages(engine, order_id)
        for stream in streams:
            assert_gapless_lifecycle(stream, order_id)
            assert stream.messages == history
        await no_subscriptions_left(engine)


# --- submitting over the socket ----------------------------------------------------------


@pytest.mark.parametrize("frame", ["text", "binary"])
async def test_an_order_sent_as_the_first_message_is_accepted_and_streamed(
    api: Api, frame: str
) -> None:
    engine, url, session = api
    async with session.ws_connect(ws_url(url)) as ws:
        if frame == "text":
            await ws.send_json(order("0.5", outputToken="USDT"))
        else:
            await ws.send_bytes(b'{"inputToken":"SOL","outputToken":"USDT","amount":"0.5"}')
        accepted = await receive_json(ws)
        assert set(accepted) == {"orderId"}
        order_id = accepted["orderId"]
        stream = await read_to_close(ws)
        assert_gapless_lifecycle(stream, order_id)
        assert stream.messages[0]["amountIn"] == "0.5"
        assert stream.messages[0]["outputToken"] == "USDT"
        assert stream.messages == await stored_messages(engine, order_id)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        pytest.param("not json", "invalid_request", id="not-json"),
        pytest.param("", "invalid_request", id="empty"),
        pytest.param("[1, 2]", "invalid_request", id="an-array"),
        pytest.param('{"inputToken": "SOL", "outputToken": "USDC"}', "invalid_request",
                     id="missing-amount"),
        pytest.param('{"inputToken":"SOL","outputToken":"USDC","amount":0}', "invalid_amount",
                     id="amount-zero"),
        pytest.param('{"inputToken":"USDC","outputToken":"SOL","amount":"1.0000001"}',
                     "invalid_amount", id="too-many-decimals"),
        pytest.param('{"inputToken":"SOL","outputToken":"SOL","amount":1}', "same_token",
                     id="same-token"),
        pytest.param('{"inputToken":"DOGE","outputToken":"SOL","amount":1}', "unknown_token",
                     id="unknown-token"),
        pytest.param('{"inputToken":"BONK","outputToken":"JUP","amount":1}', "no_route",
                     id="no-pool"),
        pytest.param('{"inputToken":"SOL","outputToken":"USDC","amount":1,"slippageBps":0}',
                     "invalid_slippage", id="slippage-zero"),
        pytest.param('{"inputToken":"SOL","outputToken":"not-a-mint","amount":1,"type":"sniper"}',
                     "unknown_token", id="sniper-output-not-a-mint"),
        pytest.param('{"inputToken":"SOL","outputToken":"USDC","amount":1,"stopPrice":"1"}',
                     "unknown_field", id="unknown-field"),
        pytest.param('{"inputToken":"SOL","outputToken":"USDC","amount":1e-999999999}',
                     "invalid_amount", id="amount-underflows-to-zero"),
        pytest.param('{"inputToken":"SOL","outputToken":"USDC","amount":1,"x":1e999999999}',
                     "unknown_field", id="huge-exponent-in-an-unknown-field"),
    ],
)  # fmt: skip
async def test_an_invalid_order_over_the_socket_gets_an_error_and_a_1008_close(
    api: Api, message: str, code: str
) -> None:
    engine, url, session = api
    async with session.ws_connect(ws_url(url)) as ws:
        await ws.send_str(message)
        stream = await read_to_close(ws, within=2)
    assert stream.close_code == 1008
    [error] = stream.messages
    assert error["type"] == "error"
    assert error["code"] == code
    assert "expected" in error["message"] or code == "no_route", error
    await no_subscriptions_left(engine)
    async with session.get(url + "/healthz") as response:
        assert response.status == 200


async def test_a_client_that_sends_no_order_is_told_what_was_expected_and_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_module, "FIRST_MESSAGE_TIMEOUT_S", 0.2)
    async with (
        running_engine(engine_settings(tmp_path)) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url(url)) as ws,
    ):
        stream = await read_to_close(ws, within=2)
    assert stream.close_code == 1008
    [error] = stream.messages
    assert error["type"] == "error"
    assert "orderId" in error["message"]


# --- errors on the query -----------------------------------------------------------------


async def test_an_unknown_order_id_gets_an_error_and_a_4404_close_at_once(
    api: Api,
) -> None:
    unknown = uuid.uuid4()
    engine, url, session = api
    started = time.monotonic()
    stream = await follow(session, url, str(unknown))
    assert time.monotonic() - started < 1
    assert stream.close_code == 4404
    [error] = stream.messages
    assert error == {"type": "error", "code": "order_not_found", "message": error["message"]}
    assert str(unknown) in error["message"]
    await no_subscriptions_left(engine)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        pytest.param({"orderId": "not-a-uuid"}, "UUID", id="order-id-not-a-uuid"),
        pytest.param({"orderId": ""}, "UUID", id="order-id-empty"),
        pytest.param({"afterSeq": "-1"}, "non-negative integer", id="after-seq-negative"),
        pytest.param({"afterSeq": "two"}, "non-negative integer", id="after-seq-a-word"),
        pytest.param({"afterSeq": "1.5"}, "non-negative integer", id="after-seq-fractional"),
        pytest.param({"afterSeq": "\u00b2"}, "non-negative integer", id="after-seq-superscript"),
        pytest.param({"afterSeq": "9" * 40}, "non-negative integer", id="after-seq-huge"),
        pytest.param({"afterSeq": "6"}, "beyond", id="after-seq-past-the-last-event"),
    ],
)
async def test_a_malformed_order_id_or_after_seq_gets_an_error_and_a_1008_close(
    api: Api, params: dict[str, str], says: str
) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("1"))
    await wait_for_status(engine, order_id, "confirmed")  # seq 5, the last there will be
    query = {"orderId": order_id, **params}
    started = time.monotonic()
    async with session.ws_connect(ws_url(url, **query)) as ws:
        stream = await read_to_close(ws, within=2)
    assert time.monotonic() - started < 1
    assert stream.close_code == 1008
    [error] = stream.messages
    assert error["type"] == "error"
    assert error["code"] == "invalid_request"
    assert says in error["message"]


# --- what a subscriber costs -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["close-frame", "dropped-connection"])
async def test_a_client_that_leaves_mid_stream_releases_its_subscription(
    tmp_path: Path, how: str
) -> None:
    async with (
        running_engine(engine_settings(tmp_path)) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
        slots_held(engine) as release,
    ):
        order_id = await submit(session, url, order("1"))
        await wait_for_status(engine, order_id, "submitted")
        sockets = [await session.ws_connect(ws_url(url, orderId=order_id)) for _ in range(5)]
        for ws in sockets:
            assert [(await receive_json(ws))["seq"] for _ in range(4)] == [1, 2, 3, 4]
        assert subscriptions(engine) == 5
        for ws in sockets:
            if how == "close-frame":
                await ws.close()
            else:
                raw = ws.get_extra_info("socket")
                assert raw is not None
                raw.shutdown(socket.SHUT_RDWR)  # no close frame: the TCP connection just ends
        await no_subscriptions_left(engine)
        for ws in sockets:
            await ws.close()
        # The order itself is untouched by its watchers leaving.
        await release()
        await wait_for_status(engine, order_id, "confirmed")
        assert (await follow(session, url, order_id)).statuses == LIFECYCLE
        await no_subscriptions_left(engine)


# --- failures --------------------------------------------------------------------------------


async def test_an_order_that_fails_on_chain_streams_failed_with_its_reason_code_and_attempts(
    api: Api,
) -> None:
    # The engine wallet holds 5 000 000 000 USDC: selling more routes and signs
    # fine, and the chain then refuses the transfer.
    engine, url, session = api
    body = order("6000000000", inputToken="USDC", outputToken="SOL")
    order_id = await submit(session, url, body)
    stream = await follow(session, url, order_id)
    assert stream.statuses == ["pending", "routing", "building", "submitted", "failed"]
    assert stream.seqs == [1, 2, 3, 4, 5]
    assert stream.close_code == 1000
    failed = stream.messages[-1]
    assert failed["code"] == "insufficient_funds"
    assert "InsufficientFunds" in failed["error"]
    assert failed["attempts"] == 1
    assert failed["txHash"] == stream.messages[3]["txHash"]
    assert stream.messages == await stored_messages(engine, order_id)
    stored = await engine.repo.get(uuid.UUID(order_id))
    assert stored is not None
    assert (stored.error_code, stored.error_message) == ("insufficient_funds", failed["error"])


async def test_an_order_whose_venues_never_answer_streams_failed_after_every_attempt(
    tmp_path: Path,
) -> None:
    async with (
        running_engine(engine_settings(tmp_path, max_attempts=3)) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        assert engine.simulator is not None
        engine.simulator.faults.transient_failure_rate = 1.0
        order_id = await submit(session, url, order("1"))
        stream = await follow(session, url, order_id)
        assert stream.statuses == ["pending", "failed"]
        assert stream.close_code == 1000
        failed = stream.messages[-1]
        assert failed["code"] == "venue_unavailable"
        assert failed["attempts"] == 3
        assert "3 attempts" in failed["error"]


async def test_an_order_too_small_to_buy_anything_fails_rather_than_confirming_for_nothing(
    api: Api,
) -> None:
    # One lamport of SOL buys less than one base unit of USDC.
    _, url, session = api
    async with session.post(url + "/api/orders/execute", json=order("0.000000001")) as resp:
        if resp.status >= 400:  # refusing it at the door would do too
            assert resp.status == 422
            return
        order_id = (await resp.json())["orderId"]
    stream = await follow(session, url, order_id)
    assert stream.statuses[-1] == "failed", stream.messages[-1]
    failed = stream.messages[-1]
    assert failed["code"] == "insufficient_liquidity", failed
    assert failed["error"]
    assert stream.close_code == 1000


async def test_selling_more_sol_than_the_wallet_holds_streams_failed_as_insufficient_funds(
    api: Api,
) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("60000000"))  # the wallet holds 50M SOL
    stream = await follow(session, url, order_id)
    assert stream.statuses == ["pending", "routing", "building", "submitted", "failed"]
    failed = stream.messages[-1]
    assert failed["code"] == "insufficient_funds", failed
    assert failed["attempts"] == 1
    assert engine.simulator is not None
    assert engine.simulator.executions(failed["txHash"]) == 1  # it landed, and failed


async def test_an_order_whose_route_moves_the_price_too_far_fails_before_signing(
    tmp_path: Path,
) -> None:
    """10,000,000 SOL once filled at a 99% loss; now it fails with the impact named,
    and nothing is signed or sent."""
    settings = engine_settings(tmp_path, max_price_impact_bps=500)
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        order_id = await submit(session, url, order("10000000"))
        stream = await follow(session, url, order_id)
        failed = stream.messages[-1]
        assert stream.statuses[-1] == "failed", failed
        assert failed["code"] == "price_impact_too_high", failed
        assert "maxPriceImpactBps 500" in failed["error"], failed
        assert "submitted" not in stream.statuses  # failed before signing
        stored = await engine.repo.get(uuid.UUID(order_id))
        assert stored is not None
        assert stored.tx is None
        # A small order on the same engine still fills.
        small = await submit(session, url, order("1"))
        assert (await follow(session, url, small)).statuses[-1] == "confirmed"


async def test_an_orders_own_price_impact_bound_overrides_the_engines_either_way(
    tmp_path: Path,
) -> None:
    """maxPriceImpactBps on the order: tighter than the engine's bound, it refuses a
    route the engine would take; looser, it lets through one the engine refuses."""
    settings = engine_settings(tmp_path, max_price_impact_bps=500)
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        tight = await submit(session, url, order("20000", maxPriceImpactBps=1))
        stream = await follow(session, url, tight)
        failed = stream.messages[-1]
        assert failed["code"] == "price_impact_too_high", failed
        assert "maxPriceImpactBps 1:" in failed["error"], failed
        assert "submitted" not in stream.statuses

        loose = await submit(session, url, order("10000000", maxPriceImpactBps=10_000))
        stream = await follow(session, url, loose)
        assert stream.statuses[-1] != "failed" or stream.messages[-1]["code"] != (
            "price_impact_too_high"
        ), stream.messages[-1]
        assert "submitted" in stream.statuses  # signed and sent: the order's bound allowed it
        stored = await engine.repo.get(uuid.UUID(loose))
        assert stored is not None
        assert stored.max_price_impact_bps == 10_000
