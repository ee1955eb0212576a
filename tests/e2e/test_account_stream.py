"""The account stream (/api/orders/stream) over a real WebSocket, on both backends:
every event of the caller's orders and nobody else's, resumable from any cursor
without gaps or repeats."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import aiohttp
import orjson
import pytest

from order_engine.bench.streams import close_frame, stalled_socket
from order_engine.bootstrap import Engine
from order_engine.ports.order_queries import START
from order_engine.settings import Settings
from tests.e2e.accounts import key_id, new_key, post_order, stream_url
from tests.e2e.wire import (
    WAIT_S,
    eventually,
    order,
    read_to_close,
    receive_json,
    wait_for_status,
)
from tests.support.harness import open_sockets, running_engine, serving

Event = tuple[str, int]  # (orderId, seq)


async def _events(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    """The next ``count`` event messages (no more arrive unasked)."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT_S * 2):
        while len(found) < count:
            message = await receive_json(ws)
            assert "seq" in message, message
            found.append(message)
    return found


async def _stored(engine: Engine, owner_key: str) -> list[Event]:
    """The account's whole log, in its order, as the store has it."""
    log: list[Event] = []
    after = START
    while page := await engine.gateway.queries.account_events(key_id(owner_key), after, 100):
        log += [(str(e.event.order_id), e.event.seq) for e in page]
        after = page[-1].cursor
    return log


async def _place_and_finish(
    session: aiohttp.ClientSession, url: str, engine: Engine, key: str, count: int
) -> list[str]:
    ids = []
    for _ in range(count):
        status, _, body = await post_order(session, url, order("1"), key=key)
        assert status == 201, body
        ids.append(body["orderId"])
    for order_id in ids:
        await wait_for_status(engine, order_id, "confirmed")
    return ids


async def test_the_stream_carries_every_event_of_the_callers_orders_and_no_one_elses(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        alice, bob = await new_key(engine, "alice"), await new_key(engine, "bob")
        async with session.ws_connect(stream_url(url, apiKey=alice)) as ws:
            hello = await receive_json(ws)
            assert hello == {"type": "subscribed", "cursor": str(START)}
            mine = await _place_and_finish(session, url, engine, alice, 2)
            await _place_and_finish(session, url, engine, bob, 1)
            received = await _events(ws, 10)
            with contextlib.suppress(TimeoutError):
                extra = await ws.receive(timeout=0.3)
                raise AssertionError(f"nothing else was expected, got {extra!r}")
        assert {m["orderId"] for m in received} == set(mine)
        assert [(m["orderId"], m["seq"]) for m in received] == await _stored(engine, alice)
        for order_id in mine:
            ours = [m for m in received if m["orderId"] == order_id]
            assert [m["status"] for m in ours] == [
                "pending", "routing", "building", "submitted", "confirmed",
            ]  # fmt: skip
            stored = [e.to_message() for e in await engine.repo.events(uuid.UUID(order_id))]
            assert [{k: v for k, v in m.items() if k != "cursor"} for m in ours] == stored


async def test_reconnecting_with_the_last_cursor_misses_nothing_and_repeats_nothing(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        await _place_and_finish(session, url, engine, key, 2)
        async with session.ws_connect(stream_url(url, apiKey=key, after="0")) as ws:
            assert (await receive_json(ws))["type"] == "subscribed"
            first = await _events(ws, 4)
        await _place_and_finish(session, url, engine, key, 1)  # while disconnected
        async with session.ws_connect(stream_url(url, apiKey=key, after=first[-1]["cursor"])) as ws:
            hello = await receive_json(ws)
            assert hello["cursor"] == first[-1]["cursor"]
            rest = await _events(ws, 11)
        log = await _stored(engine, key)
        assert [(m["orderId"], m["seq"]) for m in first + rest] == log
        assert len(log) == 15


async def test_without_a_cursor_the_stream_starts_at_the_end_of_the_log(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        [old] = await _place_and_finish(session, url, engine, key, 1)
        async with session.ws_connect(stream_url(url), headers={"X-API-Key": key}) as ws:
            hello = await receive_json(ws)
            assert hello["cursor"] != str(START)
            [new] = await _place_and_finish(session, url, engine, key, 1)
            received = await _events(ws, 5)
        assert {m["orderId"] for m in received} == {new}
        assert old != new


async def test_the_key_and_cursor_may_come_in_the_first_message(api_settings: Settings) -> None:
    async with (
        running_engine(api_settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        await _place_and_finish(session, url, engine, key, 1)
        async with session.ws_connect(stream_url(url)) as ws:
            await ws.send_str(orjson.dumps({"apiKey": key, "after": "0"}).decode())
            assert (await receive_json(ws))["type"] == "subscribed"
            assert [m["seq"] for m in await _events(ws, 5)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("after", "code", "close"),
    [("yesterday", "invalid_cursor", 1008), ("0-999999999", "invalid_cursor", 1008)],
    ids=["malformed", "beyond-the-end"],
)
async def test_a_bad_cursor_is_refused_with_an_error_and_a_close(
    api_settings: Settings, after: str, code: str, close: int
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        async with session.ws_connect(stream_url(url, apiKey=key, after=after)) as ws:
            stream = await read_to_close(ws)
        assert stream.close_code == close
        [error] = stream.messages
        assert (error["type"], error["code"]) == ("error", code)
        assert "expected" in error["message"]


async def test_without_a_key_the_stream_is_refused_once_keys_exist(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        await new_key(engine)
        async with session.ws_connect(stream_url(url)) as ws:
            await ws.send_str(orjson.dumps({"after": "0"}).decode())
            stream = await read_to_close(ws)
        assert stream.close_code == 4401
        assert stream.messages[0]["code"] == "unauthorized"


async def test_a_stream_that_the_client_leaves_releases_its_subscription(
    api_settings: Settings,
) -> None:
    async with (
        running_engine(api_settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        async with session.ws_connect(stream_url(url, apiKey=key)) as ws:
            await receive_json(ws)
            assert open_sockets(engine) == 1

        async def released() -> bool:
            return open_sockets(engine) == 0

        await eventually(released, "the stream's connection to be released")


async def test_a_subscriber_that_never_reads_is_closed_4008_and_the_others_get_everything(
    api_settings: Settings,
) -> None:
    # A buffer of 8 messages and small kernel buffers: the stalled socket's backlog
    # (kernel buffers, then uvicorn's 64 KB write buffer, then the stream's own)
    # fills within a few hundred events.
    settings = api_settings.model_copy(
        update={"stream_buffer_events": 8, "ws_send_buffer_bytes": 4096}
    )
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        key = await new_key(engine)
        reader, writer = await stalled_socket(url, query=f"?apiKey={key}")
        async with session.ws_connect(stream_url(url, apiKey=key)) as ws:
            await receive_json(ws)  # subscribed
            # This one reads as events come (aiohttp stops reading the socket once
            # 64 KB wait unread in its queue: a client idle meanwhile would be slow too).
            reading = asyncio.create_task(_events(ws, 5 * 60))
            ids = await _place_and_finish(session, url, engine, key, 60)
            received = await reading
        assert len(ids) == 60
        assert [(m["orderId"], m["seq"]) for m in received] == await _stored(engine, key)
        code, reason = await close_frame(reader, writer)
        assert code == 4008
        assert "reconnect with after=" in reason
