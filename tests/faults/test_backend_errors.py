"""The API's side of a backend outage, without the outage: which exceptions mean
"PostgreSQL or Redis cannot be reached" (503 with Retry-After, problem+json) and
which are bugs (500).

Found by the PostgreSQL restart (test_postgres_restart.py): every POST during
the outage answered 500 (a bare ``ConnectionRefusedError`` from the pool) and
uvicorn logged "Exception in ASGI application" for each.
"""

from __future__ import annotations

import asyncpg
import httpx
import pytest
import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, WebSocket
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from order_engine.adapters.outages import backend_unavailable
from order_engine.api.errors import install_error_handlers


def _invalidated() -> sqlalchemy.exc.DBAPIError:
    cause = asyncpg.exceptions.ConnectionDoesNotExistError(
        "connection was closed in the middle of operation"
    )
    return sqlalchemy.exc.DBAPIError("UPDATE orders ...", {}, cause, connection_invalidated=True)


OUTAGES = {
    "refused": ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
    "reset": ConnectionResetError(104, "Connection reset by peer"),
    "closed mid-query": _invalidated(),
    "starting up": asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    "pool exhausted": sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached"),
    "server full": asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    "redis down": redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379."),
    "redis slow": redis.exceptions.TimeoutError("Timeout reading from socket"),
}
BUGS = {
    "constraint": sqlalchemy.exc.IntegrityError(
        "INSERT INTO orders ...", {}, Exception("duplicate key value violates unique constraint")
    ),
    "programming": sqlalchemy.exc.ProgrammingError(
        "SELECT nope", {}, Exception("column nope does not exist")
    ),
    "plain bug": KeyError("route"),
}


def _app(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/api/orders/execute")
    async def execute() -> None:
        raise error

    return app


async def _post(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.post("/api/orders/execute", json={})


@pytest.mark.parametrize("name", OUTAGES)
async def test_an_unreachable_backend_is_a_503_with_retry_after(name: str) -> None:
    response = await _post(_app(OUTAGES[name]))

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert "cannot be reached" in body["message"]


@pytest.mark.parametrize("name", BUGS)
async def test_any_other_failure_stays_a_500_that_reveals_nothing(name: str) -> None:
    response = await _post(_app(BUGS[name]))

    assert response.status_code == 500
    assert "retry-after" not in response.headers
    assert response.json()["code"] == "internal_error"
    assert backend_unavailable(BUGS[name]) is None


def test_a_websocket_meeting_an_unreachable_backend_is_told_to_try_again_later() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.websocket("/api/orders/execute")
    async def follow(websocket: WebSocket) -> None:
        await websocket.accept()
        raise OUTAGES["refused"]

    with TestClient(app) as client, client.websocket_connect("/api/orders/execute") as ws:
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()

    assert error["type"] == "error"
    assert error["code"] == "service_unavailable"
    assert closed.value.code == 1013
