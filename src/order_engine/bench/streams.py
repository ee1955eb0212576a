"""``order-engine bench --subscribers N --stream account``: many account streams on one engine.

Three phases against one engine (embedded unless ``--url``):

1. **idle**: N account-stream WebSockets open, plus ``--stalled K`` raw
   sockets that complete the handshake and then never read; for ``--idle``
   seconds nothing is submitted, and the server's CPU (cores) and RSS are read
   from /proc.
2. **load**: ``--orders`` orders, ``--concurrency`` at a time over HTTP; every
   subscriber must receive every event of every order, seqs ``1..n`` in order
   per order, all subscribers in the same global order; the lag of a terminal
   event is the client's clock at receipt minus the event's ``timestamp``
   (same machine, same clock).
3. **stalled**: each stalled socket is read at last, and must hold a close
   frame with code 4008 (its buffer filled while it did not read).

Bounded: connection setup, the load and its drain all have deadlines.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from order_engine.bench.embedded import ChildServer, embedded_engine
from order_engine.bench.procstat import (
    CpuSample,
    cpu_between,
    raise_open_files_limit,
    rss_bytes,
)
from order_engine.bench.stats import TERMINAL

STREAM_PATH = "/api/orders/stream"
CONNECT_CONCURRENCY = 100
CLOSE_TOO_SLOW = 4008


@dataclass(frozen=True)
class StreamBenchOptions:
    url: str | None
    subscribers: int
    stalled: int
    idle_s: float
    orders: int
    concurrency: int
    drain_timeout_s: float
    sim_time_scale: float | None
    engine_env: dict[str, str]


@dataclass
class Subscriber:
    ws: aiohttp.ClientWebSocketResponse
    seen: list[tuple[str, int, str]] = field(default_factory=list)  # orderId, seq, status
    terminal_lag_s: list[float] = field(default_factory=list)
    closed_code: int | None = None


async def _follow(subscriber: Subscriber) -> None:
    async for message in subscriber.ws:
        if message.type is not aiohttp.WSMsgType.TEXT:
            break
        data = orjson.loads(message.data)
        if "seq" not in data:
            continue
        subscriber.seen.append((data["orderId"], data["seq"], data["status"]))
        if data["status"] in TERMINAL:
            at = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
            subscriber.terminal_lag_s.append(time.time() - at.timestamp())
    subscriber.closed_code = subscriber.ws.close_code


async def stalled_socket(
    base: str, query: str = ""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket handshake, then a socket whose reading is paused: a client that
    never reads, with the smallest receive buffer the kernel allows."""
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: sets the window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock, limit=2**16)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {STREAM_PATH}{query} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    return reader, writer


async def close_frame(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int | None, str]:
    """Read the stalled socket to its end; the close frame's code and reason, if one came."""
    writer.transport.resume_reading()  # type: ignore[attr-defined]
    code, reason = None, ""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        async with asyncio.timeout(15):
            while True:
                head = await reader.readexactly(2)
                length = head[1] & 0x7F
                if length == 126:
                    length = struct.unpack("!H", await reader.readexactly(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", await reader.readexactly(8))[0]
                payload = await reader.readexactly(length)
                if head[0] & 0x0F == 0x8:  # close
                    if len(payload) >= 2:
                        code = struct.unpack("!H", payload[:2])[0]
                        reason = payload[2:].decode("utf-8", "replace")
                    break
    writer.close()
    return code, reason


@contextlib.asynccontextmanager
async def _engine(options: StreamBenchOptions) -> AsyncIterator[tuple[str, ChildServer | None]]:
    if options.url is not None:
        yield options.url, None
        return
    async with embedded_engine(
        database_url=None, sim_time_scale=options.sim_time_scale, extra_env=options.engine_env
    ) as server:
        yield server.url, server


async def run_streams(options: StreamBenchOptions) -> dict[str, Any]:
    raise_open_files_limit()
    async with (
        _engine(options) as (base, server),
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):
        pid = server.pid if server is not None else None
        ws_base = base.replace("http", "ws", 1)
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def connect() -> Subscriber:
            async with gate:
                ws = await session.ws_connect(ws_base + STREAM_PATH, heartbeat=None)
                await ws.receive_json(timeout=30)  # {"type": "subscribed"}
                return Subscriber(ws)

        subscribers = await asyncio.gather(*(connect() for _ in range(options.subscribers)))
        stalled = [await stalled_socket(base) for _ in range(options.stalled)]
        followers = [asyncio.create_task(_follow(s)) for s in subscribers]
        await asyncio.sleep(1.0)  # let connection set-up settle before measuring idleness
        start = CpuSample.take([pid] if pid else [])
        await asyncio.sleep(options.idle_s)
        idle = cpu_between(start, CpuSample.take([pid] if pid else []))
        idle_rss = rss_bytes(pid) if pid else None

        order_ids, refused = await _submit(session, base, options)
        expected = 0
        deadline = time.monotonic() + options.drain_timeout_s
        load_start = CpuSample.take([pid] if pid else [])
        while time.monotonic() < deadline:
            expected = _expected_events(subscribers, order_ids)
            if expected and all(len(s.seen) >= expected for s in subscribers):
                break
            await asyncio.sleep(0.2)
        load = cpu_between(load_start, CpuSample.take([pid] if pid else []))
        end_rss = rss_bytes(pid) if pid else None
        codes = [(await close_frame(r, w))[0] for r, w in stalled]
        for s in subscribers:
            await s.ws.close()
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
    return _report(
        options,
        subscribers=subscribers,
        order_ids=order_ids,
        refused=refused,
        idle=idle,
        idle_rss=idle_rss,
        load=load,
        end_rss=end_rss,
        codes=codes,
    )


async def _submit(
    session: aiohttp.ClientSession, base: str, options: StreamBenchOptions
) -> tuple[set[str], Counter[int]]:
    """The accepted order ids, and the HTTP status of every refusal."""
    ids: set[str] = set()
    refused: Counter[int] = Counter()
    gate = asyncio.Semaphore(options.concurrency)
    body = orjson.dumps({"inputToken": "SOL", "outputToken": "USDC", "amount": "1"})

    async def one() -> None:
        async with (
            gate,
            session.post(
                base + "/api/orders/execute",
                data=body,
                headers={"content-type": "application/json"},
            ) as response,
        ):
            if response.status == 201:
                ids.add((await response.json())["orderId"])
            else:
                refused[response.status] += 1

    await asyncio.gather(*(one() for _ in range(options.orders)))
    return ids, refused


def _expected_events(subscribers: list[Subscriber], order_ids: set[str]) -> int:
    """Events of the bench's orders, from the stream that has seen the most terminals."""
    best = max(subscribers, key=lambda s: len(s.terminal_lag_s), default=None)
    if best is None:
        return 0
    finals = {o: seq for o, seq, status in best.seen if status in TERMINAL}
    if finals.keys() < order_ids:
        return 0
    return sum(finals[o] for o in order_ids)


def _in_order(seen: list[tuple[str, int, str]]) -> bool:
    last: dict[str, int] = {}
    for order_id, seq, _ in seen:
        if seq != last.get(order_id, 0) + 1:
            return False
        last[order_id] = seq
    return True


def _report(
    options: StreamBenchOptions,
    *,
    subscribers: list[Subscriber],
    order_ids: set[str],
    refused: Counter[int],
    idle: Any,
    idle_rss: int | None,
    load: Any,
    end_rss: int | None,
    codes: list[int | None],
) -> dict[str, Any]:
    reference = [(o, s) for o, s, _ in subscribers[0].seen] if subscribers else []
    same = sum(1 for s in subscribers if [(o, q) for o, q, _ in s.seen] == reference)
    ordered = sum(1 for s in subscribers if _in_order(s.seen))
    lags = sorted(lag for s in subscribers for lag in s.terminal_lag_s)
    expected = _expected_events(subscribers, order_ids)
    problems = []
    short = sum(1 for s in subscribers if len(s.seen) < expected)
    if not expected:
        problems.append("no stream saw every order finish")
    elif short:
        problems.append(f"{short} of {len(subscribers)} streams short of the {expected} events")
    if len(order_ids) < options.orders:
        reasons = ", ".join(f"{n} x http {status}" for status, n in sorted(refused.items()))
        problems.append(f"{options.orders - len(order_ids)} orders not accepted ({reasons})")
    if same < len(subscribers) or ordered < len(subscribers):
        problems.append(
            f"{len(subscribers) - same} streams differ from the first, "
            f"{len(subscribers) - ordered} out of order"
        )
    if any(code != CLOSE_TOO_SLOW for code in codes):
        problems.append(f"stalled sockets closed with {codes}, expected {CLOSE_TOO_SLOW}")
    return {
        "subscribers": len(subscribers),
        "stalled": len(codes),
        "orders": len(order_ids),
        "events_per_stream": len(reference),
        "events_expected": expected,
        "idle_server_cores": idle.watched_cores,
        "idle_others_cores": idle.others_cores,
        "idle_rss_mb": None if idle_rss is None else idle_rss / 2**20,
        "load_others_cores": load.others_cores,
        "end_rss_mb": None if end_rss is None else end_rss / 2**20,
        "terminal_lag_p50_s": lags[len(lags) // 2] if lags else None,
        "terminal_lag_max_s": lags[-1] if lags else None,
        "stalled_closed_4008": sum(1 for code in codes if code == CLOSE_TOO_SLOW),
        "stalled_close_codes": codes,
        "subscriber_close_codes": sorted({str(s.closed_code) for s in subscribers}),
        "problems": problems,
    }


def render(doc: dict[str, Any]) -> str:
    lines = [f"{key}: {value}" for key, value in doc.items() if key != "problems"]
    lines.append("ok" if not doc["problems"] else "problems: " + "; ".join(doc["problems"]))
    return "\n".join(lines)
