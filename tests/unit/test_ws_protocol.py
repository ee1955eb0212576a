"""The lean WebSocket protocol: uvicorn's class with a smaller idle footprint."""

from __future__ import annotations

import asyncio
import inspect
import pickle
import subprocess
import sys

import pytest
from uvicorn.protocols.websockets import websockets_sansio_impl

from order_engine.cli.serving import server_limits
from order_engine.cli.ws_protocol import Gate, Inbox, LeanWebSocketProtocol
from order_engine.settings import Settings


def test_uvicorn_still_names_what_the_lean_protocol_replaces_and_drops() -> None:
    # The subclass swaps these attributes and relies on these calls only; an upgrade
    # of uvicorn that renames or starts using anything else must fail here first.
    source = inspect.getsource(websockets_sansio_impl.WebSocketsSansIOProtocol)
    for needle in (
        "self.queue: asyncio.Queue",
        "self.writable = asyncio.Event()",
        "self.request = event",
        "self.response = self.conn.accept(event)",
    ):
        assert needle in source
    used = {
        line.strip().split("self.queue.")[1].split("(")[0]
        for line in source.splitlines()
        if "self.queue." in line
    }
    assert used <= {"put_nowait", "get", "empty"}
    gate_calls = {
        line.strip().split("self.writable.")[1].split("(")[0]
        for line in source.splitlines()
        if "self.writable." in line
    }
    assert gate_calls <= {"set", "clear", "wait"}


def test_the_served_protocol_is_the_lean_one_without_compression_by_default() -> None:
    options = server_limits(Settings())
    assert issubclass(options["ws"], LeanWebSocketProtocol)
    assert options["ws"].send_buffer_bytes == Settings().ws_send_buffer_bytes
    assert options["ws_per_message_deflate"] is False
    assert options["backlog"] == Settings().listen_backlog
    assert options["ws_ping_interval"] == Settings().ws_ping_interval_s
    assert server_limits(Settings(ws_ping_interval_s=0))["ws_ping_interval"] is None


async def test_an_inbox_hands_items_over_in_order_to_a_waiting_getter() -> None:
    inbox = Inbox()
    assert inbox.empty()
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("a")
    inbox.put_nowait("b")
    assert await getter == "a"
    assert not inbox.empty()
    assert await inbox.get() == "b"
    assert inbox.empty()


async def test_an_inbox_getter_cancelled_after_its_wake_up_passes_the_item_on() -> None:
    inbox = Inbox()
    first = asyncio.create_task(inbox.get())
    second = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("only")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs
    assert await second == "only"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_gate_holds_waiters_while_closed_and_lets_them_all_through_when_set() -> None:
    gate = Gate(open_=True)
    assert await gate.wait()
    gate.clear()
    waiters = [asyncio.create_task(gate.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    gate.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    gate.clear()
    cancelled = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    gate.set()
    assert gate.is_set()


def test_the_served_protocol_class_pickles_for_the_reloader() -> None:
    # `serve --reload` pickles uvicorn's config, protocol class included, into its
    # worker process, a fresh interpreter that must find the class by name.
    cls = server_limits(Settings(ws_send_buffer_bytes=12345))["ws"]
    load = "import pickle, sys; print(pickle.load(sys.stdin.buffer).send_buffer_bytes)"
    worker = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", load], input=pickle.dumps(cls), capture_output=True, check=True
    )
    assert worker.stdout.strip() == b"12345"
