"""Limits at the edge, over real loopback: frames, slow bodies, connections."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from tests.e2e.wire import EXECUTE, ws_url
from tests.support.harness import engine_settings, running_engine, serving


async def test_a_websocket_frame_over_the_bound_closes_the_socket_before_it_is_buffered(
    tmp_path: Path,
) -> None:
    settings = engine_settings(tmp_path, max_ws_message_bytes=4096, max_body_bytes=65_536)
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url(url)) as ws,
    ):
        await ws.send_str('{"inputToken":"SOL","pad":"' + "x" * 10_000 + '"}')
        message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1009  # message too big (it was 16 MiB before)


async def test_a_body_that_trickles_in_gets_a_408_within_the_read_timeout(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path, body_read_timeout_s=0.3)
    async with running_engine(settings, workers=False) as engine, serving(engine) as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {EXECUTE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 60\r\n\r\n{".encode()
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
        writer.close()
        assert status_line.startswith(b"HTTP/1.1 408"), status_line


async def test_connections_beyond_the_cap_get_a_503_at_once(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path, max_connections=2)
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
    ):
        held = [await session.ws_connect(ws_url(url)) for _ in range(2)]
        try:
            async with aiohttp.ClientSession() as other, other.get(url + "/healthz") as response:
                assert response.status == 503
        finally:
            for ws in held:
                await ws.close()


async def test_a_socket_that_owes_its_key_and_sends_nothing_is_closed_within_the_auth_timeout(
    tmp_path: Path,
) -> None:
    settings = engine_settings(tmp_path, ws_auth_timeout_s=0.3, auth_mode="required")
    async with (
        running_engine(settings, workers=False) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url(url)) as ws,
    ):
        started = time.monotonic()
        error = await ws.receive_json(timeout=5)
        closing = await ws.receive(timeout=5)
        held = time.monotonic() - started
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert "within 0.3 s" in error["message"], error
        assert held < 2.0  # the server's default would have held it as long as it liked
