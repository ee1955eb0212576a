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
DOCUMENT = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
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
