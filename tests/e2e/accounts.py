"""API keys and authenticated requests, for the end-to-end tests."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict
from yarl import URL

from order_engine.adapters.clock import SystemClock
from order_engine.app.access import create_key
from order_engine.bootstrap import Engine
from tests.e2e.wire import EXECUTE, PROBLEM_FIELDS, PROBLEM_JSON

STREAM = "/api/orders/stream"


async def new_key(engine: Engine, name: str = "alice") -> str:
    """A key made the way ``order-engine keys create`` makes one, in the engine's store."""
    _, key = await create_key(engine.gateway.auth.keys, name, SystemClock())
    return key


def key_id(key: str) -> str:
    return key.split("_")[1]


def bearer(key: str | None) -> dict[str, str]:
    return {} if key is None else {"Authorization": f"Bearer {key}"}


async def post_order(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    *,
    key: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[int, CIMultiDict[str], dict[str, Any]]:
    headers = bearer(key)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    async with session.post(url + EXECUTE, json=body, headers=headers) as response:
        return response.status, CIMultiDict(response.headers), orjson.loads(await response.read())


async def get_json(
    session: aiohttp.ClientSession, url: str, path: str, *, key: str | None = None, **params: Any
) -> tuple[int, dict[str, Any]]:
    async with session.get(url + path, headers=bearer(key), params=params or None) as response:
        return response.status, orjson.loads(await response.read())


async def problem_of(response: aiohttp.ClientResponse, status: int, code: str) -> dict[str, Any]:
    """The problem+json body, checked for shape, status and code."""
    raw = await response.read()
    assert response.status == status, raw
    assert response.content_type == PROBLEM_JSON, (response.content_type, raw)
    body: dict[str, Any] = orjson.loads(raw)
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["code"] == code, body
    assert body["status"] == status
    return body


def stream_url(base: str, **params: str) -> URL:
    url = URL(base.replace("http://", "ws://", 1) + STREAM)
    return url.with_query(params) if params else url
