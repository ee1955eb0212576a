"""The execute path's POST and WebSocket, and the account stream's WebSocket, skip
FastAPI's router (api/hot.py), yet keep every guard and error handler of the full
stack; other methods still take it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from order_engine.api.account_ws import STREAM_PATH
from order_engine.api.app import create_app
from order_engine.api.hot import EngineApp
from order_engine.api.routes import EXECUTE_PATH
from tests.e2e.wire import PROBLEM_JSON, order
from tests.support.harness import engine_settings, running_engine, serving


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[str]:
    settings = engine_settings(tmp_path, max_body_bytes=2048)
    async with running_engine(settings) as engine, serving(engine) as url:
        yield url


def test_the_app_is_an_engine_app_with_both_short_paths_installed(tmp_path: Path) -> None:
    app = create_app(engine_settings(tmp_path))
    assert isinstance(app, EngineApp)
    assert app._hot_post is not None
    assert app._hot_sockets is not None
    assert set(app._hot_sockets) == {EXECUTE_PATH, STREAM_PATH}


async def test_post_and_websocket_on_the_execute_path_never_enter_the_full_stack(
    tmp_path: Path,
) -> None:
    async with running_engine(engine_settings(tmp_path)) as engine:
        app = create_app(engine.settings, engine=engine)
        entered: list[tuple[str, str]] = []
        full_stack = app.build_middleware_stack()

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket"):
                entered.append((scope["type"], scope["path"]))
            await full_stack(scope, receive, send)

        app.middleware_stack = counted
        async with serving(engine, app) as url, aiohttp.ClientSession() as session:
            async with session.post(url + EXECUTE_PATH, json=order()) as response:
                assert response.status == 201, await response.text()
                order_id = (await response.json())["orderId"]
            ws_url = url.replace("http", "ws") + f"{EXECUTE_PATH}?orderId={order_id}"
            async with session.ws_connect(ws_url) as ws:
                first = orjson.loads((await ws.receive()).data)
                assert first["orderId"] == order_id
            async with session.ws_connect(url.replace("http", "ws") + STREAM_PATH) as ws:
                assert orjson.loads((await ws.receive()).data)["type"] == "subscribed"
            assert entered == []
            async with session.get(url + f"/api/orders/{order_id}") as response:
                assert response.status == 200
            assert entered == [("http", f"/api/orders/{order_id}")]


async def test_errors_on_the_short_post_are_the_same_problems_as_elsewhere(api: str) -> None:
    async with aiohttp.ClientSession() as session:
        cases = [
            (b"{", {"Content-Type": "application/json"}, 422),
            (orjson.dumps(order(amount="0")), {"Content-Type": "application/json"}, 422),
            (orjson.dumps(order()), {"Content-Type": "text/plain"}, 415),
            (b"x" * 4096, {"Content-Type": "application/json"}, 413),
            (orjson.dumps(order()), {"Content-Type": "application/json", "Host": "evil.test"}, 403),
        ]
        for body, headers, status in cases:
            async with session.post(api + EXECUTE_PATH, data=body, headers=headers) as response:
                assert response.status == status, (headers, await response.text())
                assert response.content_type == PROBLEM_JSON
                assert (await response.json())["status"] == status


async def test_other_methods_on_the_execute_path_take_the_full_stack(api: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(api + EXECUTE_PATH) as response:
            assert response.status == 426  # the route that explains the missing upgrade
        async with session.put(api + EXECUTE_PATH, json=order()) as response:
            assert response.status == 405
            assert {"GET", "POST"} <= set(response.headers["Allow"].split(", "))
        async with session.patch(api + "/api/orders/x", json={}) as response:
            assert response.status == 405  # GET and DELETE are two routes: both are named
            assert {"DELETE", "GET"} <= set(response.headers["Allow"].split(", "))
