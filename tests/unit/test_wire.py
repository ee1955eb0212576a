"""The wire form of an event, encoded once: the same bytes the streams sent when
each message was built and encoded per subscriber."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import orjson

from order_engine.app.wire import account_text, event_json, event_text, with_cursor
from order_engine.domain.order import OrderEvent, OrderStatus


def _event() -> OrderEvent:
    details = {"txHash": "5Cx", "quotes": [{"venue": "meteora", "amountOut": "1.5"}], "n": 3}
    at = datetime(2026, 1, 2, 3, tzinfo=UTC)
    return OrderEvent(uuid4(), 4, OrderStatus.SUBMITTED, at, details)


def test_the_per_order_message_is_the_event_message_encoded_by_orjson() -> None:
    event = _event()
    assert event_json(event) == orjson.dumps(event.to_message())
    assert event_text(event) == orjson.dumps(event.to_message()).decode()


def test_the_account_message_is_byte_for_byte_the_event_message_with_its_cursor_last() -> None:
    event = _event()
    expected = orjson.dumps({**event.to_message(), "cursor": "17-42"}).decode()
    assert account_text(event, "17-42") == expected
    assert list(orjson.loads(expected))[-1] == "cursor"


def test_a_cursor_is_spliced_as_a_json_string() -> None:
    assert orjson.loads(with_cursor(b'{"a":1}', '0-"9')) == {"a": 1, "cursor": '0-"9'}
