"""uvicorn's WebSocket protocol (websockets' sans-I/O implementation), minus what an
open socket never needs.

An idle stream socket lives for hours, and what it holds is paid per socket
(docs/performance.md, "Memory: an open socket and an order in flight").
Against uvicorn's own class this one saves about 6 KB per open socket:

* Its inbox is an ``asyncio.Queue`` and its write gate an ``asyncio.Event``:
  four deques (about 620 bytes each, empty) and two instance dicts, 4.7 KB.
  Here they are ``Inbox`` and ``Gate``, a few slots each, whose deque and
  waiter lists exist only while something waits.
* uvicorn keeps the handshake response (a ``websockets`` ``Response`` and its
  ``Headers``, about 1 KB) for the socket's whole life, though nothing reads it
  after the handshake. It is dropped once the handshake is answered, and so is
  uvicorn's reference to the upgrade request (which ``websockets``' parser
  generator still holds, so that one stays).

It also bounds each socket's kernel send buffer (``WS_SEND_BUFFER_BYTES``).
Everything else is uvicorn's. The subclass relies on uvicorn's attribute names
(``request``, ``response``, ``queue``, ``writable``) and on the methods it calls
on the last two; ``tests/unit/test_ws_protocol.py`` fails if an upgrade of
uvicorn (pinned in constraints.txt) changes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from asyncio import BaseTransport
from collections import deque
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class Inbox:
    """What uvicorn's protocol uses of ``asyncio.Queue``: ``put_nowait``, ``get``, ``empty``."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._getters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_one()

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                self._forget(getter)
                if self._items:
                    self._wake_one()  # the item it was woken for goes to the next getter
                raise
            self._forget(getter)
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def _wake_one(self) -> None:
        for getter in self._getters or ():
            if not getter.done():
                getter.set_result(None)
                return

    def _forget(self, getter: asyncio.Future[None]) -> None:
        if self._getters is not None:
            if getter in self._getters:
                self._getters.remove(getter)
            if not self._getters:
                self._getters = None


class Gate:
    """What uvicorn's protocol uses of ``asyncio.Event``: ``set``, ``clear``, ``wait``."""

    __slots__ = ("_open", "_waiters")

    def __init__(self, *, open_: bool) -> None:
        self._open = open_
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> bool:
        if self._open:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    send_buffer_bytes = 0  # SO_SNDBUF for the socket; 0 leaves the kernel's autotuning

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Gate(open_=True)  # type: ignore[assignment]

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if self.send_buffer_bytes and sock is not None:
            # Without a bound, Linux grows a loopback socket's send buffer to 4 MB: a
            # client that stops reading would pin that much before its stream's own
            # bounded buffer even starts to fill (and it is closed with 4008).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and self.__dict__.get("response") is not None:
            # Read only while answering the upgrade (uvicorn's handle_connect and the
            # accept branch of send), both behind handshake_complete from here on.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]


def lean_protocol(send_buffer_bytes: int) -> type[LeanWebSocketProtocol]:
    """The protocol class uvicorn instantiates per socket, with this send buffer.

    A module attribute by name (``LeanWebSocketProtocol_<bytes>``), so that it
    pickles: ``serve --reload`` hands uvicorn's config, protocol class
    included, to its worker process by pickling it, and the worker finds the
    class again through ``__getattr__`` below."""
    name = f"LeanWebSocketProtocol_{send_buffer_bytes}"
    made = globals().get(name)
    if made is None:
        made = type(name, (LeanWebSocketProtocol,), {"send_buffer_bytes": send_buffer_bytes})
        globals()[name] = made
    return cast("type[LeanWebSocketProtocol]", made)


def __getattr__(name: str) -> type[LeanWebSocketProtocol]:
    prefix, _, size = name.rpartition("_")
    if prefix == "LeanWebSocketProtocol" and size.isdigit():
        return lean_protocol(int(size))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
