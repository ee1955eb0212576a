"""Fuzzing the API over real loopback HTTP.

* schemathesis generates requests for every operation in ``/openapi.json``
  (valid and invalid, bounded) and checks each response: never a 5xx, status
  code, content type, headers and body as the document says, invalid data
  refused, auth enforced. Not checked: that every schema-valid request is
  accepted, which no schema of this API can promise (an unknown token, a pair
  without a route, a reused Idempotency-Key are all well-formed and refused).
* hypothesis throws arbitrary and almost-valid bodies at the order endpoint:
  a 201 or a problem+json 4xx, never a 5xx.

The engine and server run in a thread with their own event loop, because both
tools drive a synchronous client.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from order_engine.api.app import create_app
from order_engine.settings import Settings
from tests.e2e.accounts import new_key
from tests.e2e.wire import EXECUTE, PROBLEM_FIELDS, PROBLEM_JSON
from tests.support.harness import engine_settings, running_engine, serving

MAX_EXAMPLES = 30  # per operation; CI-bounded
BODY_EXAMPLES = 150


@dataclass
class Served:
    url: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real engine and uvicorn on loopback, in a thread of their own, with one key."""
    config = engine_settings(
        tmp_path_factory.mktemp("fuzz"), rate_limit_per_s=0.0, max_body_bytes=4096
    )
    ready = threading.Event()
    found: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        try:
            async with running_engine(config, workers=False) as engine, serving(engine) as url:
                found["served"] = Served(url, await new_key(engine))
                ready.set()
                await stop.wait()
        except BaseException as exc:
            found["error"] = exc
            ready.set()
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(60), "the engine did not start within 60 s"
    if "error" in found:
        raise found["error"]
    yield found["served"]
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    loop.close()


# The document the server serves at /openapi.json, built the same way without a
# server (schemathesis' lazy fixture loader does not work with this pytest);
# test_the_served_document_is_the_one_fuzzed checks that they are the same.
DOCUMENT = create_app(Settings(_env_file=None)).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_documented_and_never_with_a_5xx(
    case: Any, served: Served
) -> None:
    case.call_and_validate(
        base_url=served.url, headers=served.auth, excluded_checks=[positive_data_acceptance]
    )


# --- hypothesis: bodies for POST /api/orders/execute -----------------------------------------

SYMBOLS = ["SOL", "USDC", "USDT", "BONK", "JUP", "So11111111111111111111111111111111111111112"]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
amounts = (
    st.decimals(allow_nan=False, allow_infinity=False, places=12).map(str)
    | st.decimals(min_value=Decimal("1e-9"), max_value=Decimal("1e12"), places=9)
    | st.integers(min_value=-10, max_value=2**66)
    | st.sampled_from(["1", "0", "-1", "1e3", "NaN", "Infinity", " 2 ", "1_000", "٣", "", "0x10"])
    | json_scalars
)
orders = st.fixed_dictionaries(
    {
        "inputToken": st.sampled_from(SYMBOLS) | st.text(max_size=70),
        "outputToken": st.sampled_from(SYMBOLS) | st.text(max_size=70),
        "amount": amounts,
    },
    optional={
        "slippageBps": st.integers(min_value=-5, max_value=6000) | json_scalars,
        "extra": json_values,
    },
)


def _encode(body: Any) -> bytes:
    # The stdlib encoder: integers of any size (orjson stops at 64 bits).
    return json.dumps(body, default=str).encode()


def _assert_answered(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code == 201:
        assert response.json()["status"] == "pending"
        return
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem = response.json()
    assert set(problem) >= PROBLEM_FIELDS, problem
    assert problem["status"] == response.status_code
    assert problem["message"]


@given(body=orders | json_values)
@settings(
    max_examples=BODY_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_any_json_body_gets_an_order_or_a_problem_never_a_5xx(served: Served, body: Any) -> None:
    response = httpx.post(
        served.url + EXECUTE,
        content=_encode(body),
        headers={**served.auth, "Content-Type": "application/json"},
        timeout=10,
    )
    _assert_answered(response)


@given(
    raw=st.binary(max_size=300), content_type=st.sampled_from(["application/json", "text/plain"])
)
@settings(
    max_examples=BODY_EXAMPLES // 3,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_any_bytes_get_a_problem_never_a_5xx(served: Served, raw: bytes, content_type: str) -> None:
    response = httpx.post(
        served.url + EXECUTE,
        content=raw,
        headers={**served.auth, "Content-Type": content_type},
        timeout=10,
    )
    _assert_answered(response)


def test_the_served_document_is_the_one_fuzzed(served: Served) -> None:
    assert httpx.get(served.url + "/openapi.json", timeout=10).json() == DOCUMENT
    assert httpx.get(served.url + "/healthz", timeout=10).status_code == 200


# --- hostile numbers and cursors, over HTTP and the WebSocket alike ---------------------------

# JSON number literals a well-behaved client never sends: exponents far past any
# float, underflow to (almost) zero, more digits than a decimal context holds,
# and the non-standard NaN and Infinity that Python's parser takes.
hostile_numbers = st.one_of(
    st.builds(
        "{}{}e{}".format,
        st.sampled_from(["", "-"]),
        st.integers(min_value=0, max_value=10**40),
        st.integers(min_value=-(10**12), max_value=10**12),
    ),
    st.builds(
        "{}.{}".format, st.integers(0, 10**20), st.text("0123456789", min_size=28, max_size=45)
    ),
    st.integers(min_value=10**39, max_value=10**41).map(str),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e-999999999", "1e999999999", "-0"]),
)
HOSTILE_FIELDS = [
    "inputToken",
    "outputToken",
    "amount",
    "slippageBps",
    "maxPriceImpactBps",
    "type",
    "ignoredField",
]


def _with_number(field: str, literal: str) -> bytes:
    """A valid order but for ``field``, which is the raw number literal (no encoder
    would write most of these)."""
    body = {"inputToken": "SOL", "outputToken": "USDC", "amount": "0.001", field: 0}
    text = json.dumps(body)
    return text.replace(f'"{field}": 0', f'"{field}": {literal}').encode()


@given(field=st.sampled_from(HOSTILE_FIELDS), literal=hostile_numbers)
@settings(
    max_examples=BODY_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_a_hostile_number_in_any_field_gets_a_4xx_over_http_never_a_5xx_or_a_fill(
    served: Served, field: str, literal: str
) -> None:
    response = httpx.post(
        served.url + EXECUTE,
        content=_with_number(field, literal),
        headers={**served.auth, "Content-Type": "application/json"},
        timeout=10,
    )
    _assert_answered(response)
    # Every one of these is wrong somewhere: none may become an order.
    assert response.status_code == 422, (field, literal, response.text)


@given(field=st.sampled_from(HOSTILE_FIELDS), literal=hostile_numbers)
@settings(
    max_examples=BODY_EXAMPLES // 3,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_a_hostile_number_in_any_field_gets_an_error_and_a_close_frame_over_the_socket(
    served: Served, field: str, literal: str
) -> None:
    # The key travels in the same first message, as a browser client would send it.
    message = _with_number(field, literal).decode()[:-1] + f', "apiKey": "{served.key}"}}'
    url = served.url.replace("http", "ws", 1) + EXECUTE
    with ws_connect(url, open_timeout=10, close_timeout=5) as ws:
        ws.send(message)
        error = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert error["type"] == "error", error
    assert error["code"], error
    assert error["message"], error
    assert closed.value.rcvd is not None, "closed without a close frame"
    assert closed.value.rcvd.code == 1008, (closed.value.rcvd, error)


def _cursor(value: Any) -> str:
    raw = json.dumps(value, default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


EDGE_TIMES = [
    "0001-01-01T00:00:00+23:59",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59.999999-23:59",
    "9999-12-31T23:59:59.999999+00:00",
    "2025-02-29T00:00:00+00:00",
    "2024-02-29T24:00:00+00:00",
]
cursor_elements = json_scalars | st.sampled_from(EDGE_TIMES) | st.lists(json_scalars, max_size=2)
cursors = st.lists(cursor_elements, min_size=0, max_size=3) | cursor_elements | json_values


@given(cursor=cursors, uuid_like=st.uuids().map(str))
@settings(
    max_examples=BODY_EXAMPLES // 2,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_any_cursor_with_wrong_types_or_times_at_the_calendar_edges_gets_a_4xx(
    served: Served, cursor: Any, uuid_like: str
) -> None:
    for value in (cursor, [cursor, uuid_like]):
        response = httpx.get(
            served.url + "/api/orders",
            params={"cursor": _cursor(value)[:200]},
            headers=served.auth,
            timeout=10,
        )
        assert response.status_code in (200, 422), (value, response.text)
        if response.status_code == 422:
            _assert_answered(response)


@pytest.mark.parametrize("when", EDGE_TIMES)
def test_a_cursor_at_the_edge_of_the_calendar_gets_a_422_or_a_page(
    served: Served, when: str
) -> None:
    cursor = _cursor([when, "00000000-0000-0000-0000-000000000000"])
    response = httpx.get(
        served.url + "/api/orders", params={"cursor": cursor}, headers=served.auth, timeout=10
    )
    assert response.status_code in (200, 422), response.text
