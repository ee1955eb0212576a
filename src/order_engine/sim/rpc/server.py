"""``order-engine chain``: the simulated cluster and venues behind Solana JSON-RPC.

An aiohttp application over one ``Simulator``:

* ``POST /``: JSON-RPC 2.0, single calls and batches (methods in ``methods.py``);
* ``GET /pools``: the venues' static pool lists (``{"pools": [...]}``, see
  ``wire.listing_to_json``), as Raydium's pool API and Meteora's ``/pair/all``
  publish them;
* ``GET /health``: ``ok``, as a Solana node answers.

The slot clock runs while the application runs (``Simulator.start``/``stop``)
at ``time_scale > 0``; at ``time_scale == 0`` status polls drive it, as in the
in-process chain.

Faults and latency are the in-process chain's own objects (``sim.chain.faults``
and ``.latency``, driven by the live ``sim.faults`` knobs), applied per HTTP
request before anything runs:

* every request waits ``Latency.rpc()`` (5-40 ms x time scale);
* ``transient_failure_rate``, per call of a method the engine uses: HTTP 503,
  nothing executed;
* ``rate_limit_rate``, per account read (``getMultipleAccounts``,
  ``getAccountInfo``): HTTP 429 with ``Retry-After``, nothing executed;
* ``send_timeout_rate``, per ``sendTransaction``: the request hangs
  ``1.5 s x time scale`` and gets HTTP 504. With probability ``ambiguous_share``
  the transaction *was* submitted before the timeout (it may land and shows in
  ``getSignatureStatuses``); otherwise it was not. The client cannot tell which.

A fault answers the whole HTTP request, batch or not, as a proxy in front of a
node would.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiohttp import web

from order_engine.adapters.rpc import wire
from order_engine.ports.chain import RateLimited
from order_engine.sim import Simulator
from order_engine.sim.faults import RpcUnavailable
from order_engine.sim.rpc.faucet import Faucet
from order_engine.sim.rpc.launch_methods import launch_methods
from order_engine.sim.rpc.methods import RpcFailure, RpcMethods

log = structlog.get_logger(__name__)

# The calls a fault may hit: what the engine and its venue clients use. Health,
# version, the pool list and the faucet stay reliable so that start-up is.
FAULTY_METHODS = frozenset(
    {
        "getLatestBlockhash",
        "getBlockHeight",
        "getSlot",
        "sendTransaction",
        "getSignatureStatuses",
        "getTransaction",
        "getMultipleAccounts",
        "getAccountInfo",
        "getBalance",
        "getTokenAccountBalance",
        "getSignaturesForAddress",
        "getRecentPrioritizationFees",
    }
)
ACCOUNT_READS = frozenset({"getMultipleAccounts", "getAccountInfo"})
JSON = "application/json"


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": request_id}


def _respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


class ChainRpc:
    """The request handlers; one per application, over one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.faults = sim.chain.faults
        self.latency = sim.chain.latency
        self.faucet = Faucet(sim.cluster, sim.seed)
        self.methods = RpcMethods(sim.cluster, self.faucet)
        self.methods.table.update(launch_methods(sim.launchpad))
        self.driver = sim.driver

    async def pools(self, _request: web.Request) -> web.Response:
        # Launched pools join the list, as the venues' pool APIs list new pools.
        body = orjson.dumps({"pools": [wire.listing_to_json(p) for p in self.sim.pools]})
        return web.Response(body=body, content_type=JSON)

    async def health(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def rpc(self, request: web.Request) -> web.Response:
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _respond(_error(None, wire.PARSE_ERROR, "Parse error"))
        batch = isinstance(payload, list)
        calls: list[Any] = payload if batch else [payload]
        if not calls:
            return _respond(_error(None, wire.INVALID_REQUEST, "Invalid request"))
        await self.latency.rpc()
        first_id = calls[0].get("id") if isinstance(calls[0], dict) else None
        try:
            for call in calls:
                method = call.get("method") if isinstance(call, dict) else None
                if method in FAULTY_METHODS:
                    self.faults.check(method, account_read=method in ACCOUNT_READS)
        except RateLimited as exc:
            body = _error(first_id, wire.TOO_MANY_REQUESTS, exc.message)
            return _respond(body, status=429, headers={"Retry-After": "1"})
        except RpcUnavailable as exc:
            return _respond(_error(first_id, wire.NODE_UNHEALTHY, exc.message), status=503)
        answers: list[dict[str, Any]] = []
        timed_out = False
        for call in calls:
            if isinstance(call, dict) and call.get("method") == "sendTransaction":
                lost, reached = self.faults.send_times_out()
                if lost:
                    timed_out = True
                    if reached:
                        self.answer(call)  # the leader got the bytes; the answer is lost
                    continue
            answers.append(self.answer(call))
        if self.driver is not None:
            self.driver.wake()  # a transaction may be pending now: let slots pass
        if timed_out:
            await self.latency.send_timeout()
            message = "sendTransaction timed out (simulated 504): the transaction may have landed"
            return _respond(_error(first_id, wire.TIMEOUT, message), status=504)
        return _respond(answers if batch else answers[0])

    def answer(self, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict) or call.get("jsonrpc") != "2.0":
            return _error(None, wire.INVALID_REQUEST, "Invalid request")
        request_id = call.get("id")
        handler = self.methods.table.get(call.get("method"))  # type: ignore[arg-type]
        if handler is None:
            return _error(request_id, wire.METHOD_NOT_FOUND, "Method not found")
        params = call.get("params", [])
        if not isinstance(params, list):
            return _error(request_id, wire.INVALID_PARAMS, "Invalid params: expected an array")
        try:
            result = handler(params)
        except RpcFailure as exc:
            return _error(request_id, exc.code, exc.message, exc.data)
        except Exception as exc:  # a bug must answer this call, not take the node down
            log.exception("chain_rpc_internal_error", method=call.get("method"))
            return _error(request_id, wire.INTERNAL_ERROR, f"Internal error: {exc!r}")
        return {"jsonrpc": "2.0", "result": result, "id": request_id}


def build_chain_app(sim: Simulator) -> web.Application:
    """The server's application; its start-up starts the simulator's slot clock."""
    rpc = ChainRpc(sim)
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/", rpc.rpc)
    app.router.add_get("/pools", rpc.pools)
    app.router.add_get("/health", rpc.health)

    async def start_clock(_app: web.Application) -> None:
        await sim.start()

    async def stop_clock(_app: web.Application) -> None:
        await sim.stop()

    app.on_startup.append(start_clock)
    app.on_cleanup.append(stop_clock)
    return app


@dataclass
class ChainServer:
    """A running chain server; ``url`` is its JSON-RPC endpoint."""

    url: str
    runner: web.AppRunner

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_chain_server(
    sim: Simulator, *, host: str = "127.0.0.1", port: int = 0
) -> ChainServer:
    """Serve ``sim`` on ``host:port`` (``0``: an ephemeral port) until ``close()``."""
    runner = web.AppRunner(build_chain_app(sim), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    return ChainServer(f"http://{host}:{bound}", runner)


async def serve_chain(sim: Simulator, *, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then stop the clock and return (exit 0)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = await start_chain_server(sim, host=host, port=port)
    log.info("chain_serving", url=server.url, time_scale=sim.time_scale, seed=sim.seed)
    try:
        await stop.wait()
    finally:
        log.info("chain_stopping", url=server.url)
        await server.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
