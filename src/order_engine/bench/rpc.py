"""Client-side cost of a JSON-RPC call: ``RpcChain`` (aiohttp) vs solana-py's
``AsyncClient`` (httpx), against a running chain server.

``python -m order_engine.bench.rpc --url http://127.0.0.1:8899``

Each client runs ``concurrency`` tasks for ``seconds``, cycling through the
read calls a worker makes per order (``getLatestBlockhash``, ``getBlockHeight``,
``getMultipleAccounts`` of one AMM v4 pool's three state accounts,
``getSignatureStatuses`` of one signature), each answer parsed into typed
values. Reported: calls/s and this process's CPU time per call (the server
runs in its own process, so its work is not counted). Run the server at
``SIM_TIME_SCALE=0`` with faults off so that no simulated wait or fault
distorts the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from order_engine.adapters.rpc.chain import RpcChain
from order_engine.adapters.rpc.funding import fetch_pool_listing

Call = Callable[[int], Awaitable[object]]


async def _measure(calls: list[Call], seconds: float, concurrency: int) -> dict[str, float]:
    done = 0
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while loop.time() < stop_at:
            await calls[i % len(calls)](i)
            i += 1
            done += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "calls": done,
        "calls_per_s": round(done / wall),
        "cpu_us_per_call": round(cpu / done * 1e6, 1),
    }


async def run_rpc_client_benchmark(
    url: str, *, seconds: float = 5.0, concurrency: int = 32
) -> dict[str, Any]:
    pool = next(p for p in await fetch_pool_listing(url) if p.kind == "amm_v4")
    keys = [pool.address, pool.keys["coin_vault"], pool.keys["pc_vault"]]
    signature = Keypair().sign_message(b"never sent")
    results: dict[str, Any] = {"url": url, "seconds": seconds, "concurrency": concurrency}

    async with RpcChain(url) as chain:
        ours: list[Call] = [
            lambda _i: chain.get_latest_blockhash(),
            lambda _i: chain.get_block_height(),
            lambda _i: chain.get_multiple_accounts(keys),
            lambda _i: chain.get_signature_statuses([str(signature)]),
        ]
        await _measure(ours, 0.5, concurrency)  # warm the connection pool
        results["rpc_chain_aiohttp"] = await _measure(ours, seconds, concurrency)

    pubkeys = [Pubkey.from_string(k) for k in keys]
    for label, http2 in (("solana_py_async_client", True), ("solana_py_async_client_http1", False)):
        client = AsyncClient(url, commitment=Confirmed, timeout=10, http2=http2)
        try:
            theirs = _solana_py_calls(client, pubkeys, signature)
            await _measure(theirs, 0.5, concurrency)
            results[label] = await _measure(theirs, seconds, concurrency)
        finally:
            await client.close()
    return results


def _solana_py_calls(
    client: AsyncClient, pubkeys: list[Pubkey], signature: Signature
) -> list[Call]:
    return [
        lambda _i: client.get_latest_blockhash(Confirmed),
        lambda _i: client.get_block_height(Confirmed),
        lambda _i: client.get_multiple_accounts(pubkeys, Confirmed, encoding="base64"),
        lambda _i: client.get_signature_statuses([signature], search_transaction_history=True),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8899")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    result = asyncio.run(
        run_rpc_client_benchmark(args.url, seconds=args.seconds, concurrency=args.concurrency)
    )
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":  # pragma: no cover
    main()
