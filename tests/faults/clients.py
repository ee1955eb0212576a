"""What a client does in the fault tests: submit over HTTP, follow over WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import websockets
from solders.keypair import Keypair

from order_engine.adapters.rpc import ensure_funded
from order_engine.adapters.wallet import load_or_create_keypair
from order_engine.bootstrap import WALLET_FUNDING
from order_engine.domain.tokens import SOL, USDC, TokenRegistry
from tests.faults.invariants import token_balance

ORDER = {"inputToken": "SOL", "outputToken": "USDC", "amount": "0.5", "slippageBps": 500}


async def submit(http: aiohttp.ClientSession, api: str, body: dict[str, Any] | None = None) -> str:
    async with http.post(f"{api}/api/orders/execute", json=body or ORDER) as response:
        text = await response.text()
        assert response.status == 201, f"POST {api}: {response.status} {text}"
        order_id: str = json.loads(text)["orderId"]
        return order_id


async def submit_batch(api: str, count: int, body: dict[str, Any] | None = None) -> list[str]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        return list(await asyncio.gather(*(submit(http, api, body) for _ in range(count))))


def ws_url(api: str, order_id: str, after_seq: int = 0) -> str:
    base = api.replace("http://", "ws://", 1)
    suffix = f"&afterSeq={after_seq}" if after_seq else ""
    return f"{base}/api/orders/execute?orderId={order_id}{suffix}"


@dataclass
class Followed:
    order_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None


async def follow(api: str, order_id: str, *, after_seq: int = 0, timeout: float = 90) -> Followed:  # noqa: ASYNC109
    """Every message of one order's stream until the server closes it."""
    followed = Followed(order_id)
    async with asyncio.timeout(timeout), websockets.connect(ws_url(api, order_id, after_seq)) as ws:
        with contextlib.suppress(websockets.ConnectionClosedOK):
            async for raw in ws:
                followed.events.append(json.loads(raw))
        followed.close_code = ws.close_code
    return followed


async def follow_until_seq_then_drop(
    api: str,
    order_id: str,
    drop_after_seq: int,
    *,
    timeout: float = 60,  # noqa: ASYNC109
) -> list[dict[str, Any]]:
    """Follow until an event with seq >= ``drop_after_seq`` arrives, then reset the
    TCP connection from the client side (RST, no close handshake)."""
    received: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        ws = await websockets.connect(ws_url(api, order_id))
        try:
            async for raw in ws:
                message = json.loads(raw)
                received.append(message)
                if message.get("seq", 0) >= drop_after_seq:
                    break
        finally:
            abort(ws)
    return received


def abort(ws: Any) -> None:
    """Drop a connection the way a lost network or a killed client does: the
    socket is closed with SO_LINGER 0, so the kernel sends RST at once."""
    transport = ws.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def wallet(path: Path) -> Keypair:
    return load_or_create_keypair(path)


@dataclass(frozen=True)
class Funded:
    """The engine's wallet (the workers load it from WALLET_PATH), funded, and the
    USDC it held before any order: what every fill is measured against."""

    keys: Keypair
    owner: str
    usdc_before: int


async def funded_wallet(chain_url: str, path: Path) -> Funded:
    keys = wallet(path)
    await fund(chain_url, keys)
    owner = str(keys.pubkey())
    return Funded(keys, owner, await token_balance(chain_url, owner, USDC.mint))


async def fund(chain_url: str, owner: Keypair) -> None:
    """Fund a wallet as a worker's start-up does, so that no worker tops it up later."""
    tokens = TokenRegistry()
    amounts = {
        tokens.resolve(sym).mint: tokens.resolve(sym).to_base(amount)
        for sym, amount in WALLET_FUNDING.items()
        if sym != "SOL"
    }
    await ensure_funded(
        chain_url, owner.pubkey(), lamports=SOL.to_base(WALLET_FUNDING["SOL"]), tokens=amounts
    )
