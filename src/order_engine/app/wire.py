"""An event's wire form, encoded once however many sockets send it.

The per-order stream sends ``OrderEvent.to_message()``; the account stream
sends the same object with ``cursor`` appended. Both are produced here, from
one orjson encoding: the account message is that encoding with the cursor
spliced in before the closing brace, byte for byte what encoding the merged
dict would give (orjson keeps insertion order, and ``cursor`` comes last).
ASGI text frames are ``str``, so the text is decoded once too, and every
subscriber is handed the same string.
"""

from __future__ import annotations

import orjson

from order_engine.domain.order import OrderEvent


def event_json(event: OrderEvent) -> bytes:
    """The per-order wire message of ``event``, as UTF-8 JSON bytes."""
    return orjson.dumps(event.to_message())


def with_cursor(message: bytes, cursor: str) -> bytes:
    """``message`` (a JSON object) with ``"cursor": cursor`` as its last member."""
    return message[:-1] + b',"cursor":' + orjson.dumps(cursor) + b"}"


def event_text(event: OrderEvent) -> str:
    return event_json(event).decode()


def account_text(event: OrderEvent, cursor: str) -> str:
    return with_cursor(event_json(event), cursor).decode()
