"""A trivially fast server of the wire contract, to measure the bench client itself.

``POST /api/orders/execute`` -> 201 ``{"orderId"}``; the WebSocket on the same
path with ``?orderId=`` sends the five statuses (seq 1..5, bodies shaped like
the engine's) and closes 1000. No queue, no database, no validation beyond
JSON: whatever rate the bench reaches against it is the client's ceiling on
this machine (with the stub's own CPU alongside).

Run: ``python -m order_engine.bench.stub --port 8080`` (loopback only).
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime

import orjson
from aiohttp import web

PATH = "/api/orders/execute"
_QUOTES = [
    {"venue": "meteora", "poolKind": "dlmm", "amountOut": "149.86", "fee": "0.004"},
    {"venue": "raydium", "poolKind": "amm_v4", "amountOut": "149.40", "fee": "0.0025"},
]


def _events(order_id: str) -> list[str]:
    now = datetime.now(UTC).isoformat()
    base = {"orderId": order_id, "timestamp": now}
    bodies: list[dict[str, object]] = [
        {"status": "pending", "inputToken": "SOL", "outputToken": "USDC", "amountIn": "1"},
        {"status": "routing", "quotes": _QUOTES, "plan": {"dex": "meteora", "reason": "best"}},
        {"status": "building", "dex": "meteora", "expectedAmountOut": "149.86"},
        {"status": "submitted", "txHash": "9" * 88},
        {"status": "confirmed", "txHash": "9" * 88, "amountOut": "149.86", "dex": "meteora"},
    ]
    return [
        orjson.dumps({**base, "seq": seq, **body}).decode()
        for seq, body in enumerate(bodies, start=1)
    ]


async def execute(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        orjson.loads(await request.read())
        return web.Response(
            status=201,
            body=orjson.dumps({"orderId": str(uuid.uuid4()), "status": "pending"}),
            content_type="application/json",
        )
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    for event in _events(request.query.get("orderId", "")):
        await ws.send_str(event)
    await ws.close(code=1000, message=b"order finished")
    return ws


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post(PATH, execute)
    app.router.add_get(PATH, execute)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    loop_factory = None
    try:
        import uvloop  # noqa: PLC0415 - optional fast loop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        pass
    web.run_app(
        make_app(),
        host="127.0.0.1",
        port=args.port,
        print=None,
        backlog=4096,
        access_log=None,
        loop=loop_factory() if loop_factory else None,
    )


if __name__ == "__main__":
    main()
