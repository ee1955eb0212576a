"""API keys and the authenticator, on a real (SQLite) key store, with a clock the
test moves: modes, caching, and what a refusal may reveal."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from order_engine.adapters.db import Database, SqlApiKeyStore, create_engine
from order_engine.adapters.db.migrate import run_migrations_async
from order_engine.api.middleware import RedactApiKeys
from order_engine.app.access import (
    ANONYMOUS,
    Authenticator,
    AuthMode,
    Caller,
    Unauthorized,
    create_key,
    hash_secret,
    new_key,
    public_part,
)
from order_engine.app.idempotency import KEY_SHAPE, request_fingerprint
from order_engine.app.order_terms import Expiry, Resolved
from order_engine.app.orders import OrderRequest
from order_engine.domain.order import OrderKind
from order_engine.domain.terms import LimitTerms, PriorityFee, floor_out
from order_engine.domain.tokens import TokenRegistry
from order_engine.ports.api_keys import ApiKey


class SteppedClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlApiKeyStore]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"
    await run_migrations_async(url)
    engine = create_engine(url)
    yield SqlApiKeyStore(Database(engine))
    await engine.dispose()


def authenticator(store: SqlApiKeyStore, mode: AuthMode, clock: SteppedClock) -> Authenticator:
    return Authenticator(store, mode=mode, cache_s=2.0, clock=clock)


def test_a_key_has_a_public_id_and_a_256_bit_secret_and_is_stored_as_its_sha256() -> None:
    key_id, key, digest = new_key()
    prefix, public, secret = key.split("_", 2)
    assert (prefix, public) == ("oek", key_id)
    assert len(key_id) == 10
    assert len(secret) == 43  # 32 bytes, URL-safe base64
    assert digest == hash_secret(key)
    assert len(digest) == 64
    assert new_key()[1] != key
    assert public_part(key) == f"oek_{key_id}_..."
    assert secret not in public_part(key)
    assert public_part("hunter2") == "(not an order-engine key)"


async def test_auto_mode_is_open_until_a_key_exists_then_closed_within_the_cache_period(
    store: SqlApiKeyStore,
) -> None:
    clock = SteppedClock()
    auth = authenticator(store, "auto", clock)
    assert await auth.authenticate(None) == ANONYMOUS
    record, key = await create_key(store, "alice", clock)
    assert await auth.authenticate(None) == ANONYMOUS  # cached "no keys" answer
    await clock.sleep(2.0)
    with pytest.raises(Unauthorized) as refused:
        await auth.authenticate(None)
    assert refused.value.reason == "missing"
    assert await auth.authenticate(key) == Caller(record.id, "alice")


async def test_revoking_the_last_key_does_not_reopen_auto_mode(store: SqlApiKeyStore) -> None:
    clock = SteppedClock()
    record, _ = await create_key(store, "alice", clock)
    await store.revoke(record.id, clock.now())
    with pytest.raises(Unauthorized):
        await authenticator(store, "auto", clock).authenticate(None)


@pytest.mark.parametrize(("mode", "open_"), [("required", False), ("off", True)])
async def test_required_and_off_modes_do_not_depend_on_keys_existing(
    store: SqlApiKeyStore, mode: AuthMode, open_: bool
) -> None:
    auth = authenticator(store, mode, SteppedClock())
    assert await auth.enforced() is not open_
    if open_:
        assert await auth.authenticate(None) == ANONYMOUS
    else:
        with pytest.raises(Unauthorized):
            await auth.authenticate(None)


async def test_a_presented_key_is_checked_in_every_mode(store: SqlApiKeyStore) -> None:
    for mode in ("auto", "required", "off"):
        with pytest.raises(Unauthorized) as refused:
            await authenticator(store, mode, SteppedClock()).authenticate("oek_bad")
        assert refused.value.reason == "invalid"


async def test_a_revoked_key_is_refused_once_the_cache_expires(store: SqlApiKeyStore) -> None:
    clock = SteppedClock()
    auth = authenticator(store, "required", clock)
    record, key = await create_key(store, "alice", clock)
    assert (await auth.authenticate(key)).owner == record.id
    await store.revoke(record.id, clock.now())
    assert (await auth.authenticate(key)).owner == record.id  # within AUTH_CACHE_S
    await clock.sleep(2.0)
    with pytest.raises(Unauthorized) as refused:
        await auth.authenticate(key)
    assert refused.value.reason == "revoked"
    assert key.split("_", 2)[2] not in refused.value.message


class CountingStore(SqlApiKeyStore):
    """The real SQLite store, counting the reads the authenticator makes."""

    def __init__(self, inner: SqlApiKeyStore) -> None:
        super().__init__(inner._db)
        self.reads = 0

    async def exists(self) -> bool:
        self.reads += 1
        await asyncio.sleep(0.01)  # a read that takes a while: the others arrive meanwhile
        return await super().exists()

    async def by_hash(self, digest: str) -> ApiKey | None:
        self.reads += 1
        await asyncio.sleep(0.01)
        return await super().by_hash(digest)


async def test_requests_arriving_together_at_a_cold_cache_share_one_store_read(
    store: SqlApiKeyStore,
) -> None:
    clock = SteppedClock()
    counting = CountingStore(store)
    auth = authenticator(counting, "auto", clock)
    assert await asyncio.gather(*(auth.enforced() for _ in range(500))) == [False] * 500
    assert counting.reads == 1
    _, key = await create_key(store, "alice", clock)
    clock.t += 5  # past the cache period
    callers = await asyncio.gather(*(auth.authenticate(key) for _ in range(500)))
    assert {caller.key_name for caller in callers} == {"alice"}
    assert counting.reads == 2


async def test_a_key_name_must_be_given(store: SqlApiKeyStore) -> None:
    with pytest.raises(ValueError, match="key name"):
        await create_key(store, "   ", SteppedClock())
    assert await store.list() == []


def _request(
    amount: int, slippage: int = 50, pair: tuple[str, str] = ("SOL", "USDC")
) -> OrderRequest:
    tokens = TokenRegistry()
    return OrderRequest(tokens.resolve(pair[0]), tokens.resolve(pair[1]), amount, slippage)


def test_the_idempotency_fingerprint_is_the_order_not_its_spelling() -> None:
    assert request_fingerprint(_request(10**9)) == request_fingerprint(_request(10**9))
    differing = {
        request_fingerprint(r)
        for r in (
            _request(10**9),
            _request(10**9 + 1),
            _request(10**9, 51),
            _request(10**9, 50, ("SOL", "USDT")),
        )
    }
    assert len(differing) == 4


def test_a_limit_orders_terms_and_settings_are_part_of_its_fingerprint() -> None:
    tokens = TokenRegistry()
    sol, usdc = tokens.resolve("SOL"), tokens.resolve("USDC")

    def limit(price: str, **more: object) -> OrderRequest:
        terms = LimitTerms(Decimal(price), floor_out(10**9, 9, 6, Decimal(price)))
        return OrderRequest(
            sol,
            usdc,
            10**9,
            50,
            OrderKind.LIMIT,
            Resolved(terms=terms, **more),  # type: ignore[arg-type]
        )

    variants = {
        request_fingerprint(r)
        for r in (
            limit("150"),
            limit("151"),
            limit("150", expiry=Expiry(in_s=60)),
            limit("150", max_price_impact_bps=100),
            limit("150", priority_fee=PriorityFee(None)),
        )
    }
    assert len(variants) == 5
    assert request_fingerprint(limit("150.0")) == request_fingerprint(limit("150"))
    # A market order without options hashes as it did before these fields existed,
    # so a key stored by an older engine still replays.
    old = {
        "endpoint": "POST /api/orders/execute",
        "inputMint": sol.mint,
        "outputMint": usdc.mint,
        "amountIn": str(10**9),
        "slippageBps": 50,
        "kind": "market",
    }
    digest = hashlib.sha256(orjson.dumps(old, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert request_fingerprint(_request(10**9)) == digest


@pytest.mark.parametrize(
    ("key", "ok"),
    [("a", True), ("~" * 255, True), ("", False), ("a" * 256, False), ("a b", False), ("é", False)],
)
def test_an_idempotency_key_is_1_to_255_visible_ascii_characters(key: str, ok: bool) -> None:
    assert bool(KEY_SHAPE.fullmatch(key)) is ok


def test_a_key_in_a_websocket_url_is_redacted_from_server_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/api/orders/stream?after=0&apiKey=oek_0123456789_SECRETSECRET&x=1"),
        None,
    )
    assert RedactApiKeys().filter(record)
    text = record.getMessage()
    assert "SECRETSECRET" not in text
    assert "apiKey=[redacted]&x=1" in text
    assert "after=0" in text


@pytest.mark.parametrize(
    "path",
    [
        "/api/orders/execute?%61piKey=oek_0123456789_SECRETSECRET",  # percent-encoded name
        "/api/orders/execute?APIKEY=oek_0123456789_SECRETSECRET&orderId=1",
        "/api/orders/execute?orderId=1&api%5Fkey=oek_0123456789_SECRETSECRET",
        "/api/orders/execute?orderId=1&apiKey=oek_0123456789_SECRET%53ECRET",
        "/api/orders/execute?+apiKey=oek_0123456789_SECRETSECRET",
        "/api/orders/stream?after=0&ticket=oet_SECRETSECRET",
        "/api/orders/stream?%74icket=oet_SECRETSECRET",
    ],
)
def test_a_key_is_redacted_however_its_parameter_name_is_spelled(path: str) -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", path), None,
    )  # fmt: skip
    assert RedactApiKeys().filter(record)
    text = record.getMessage()
    assert "SECRET" not in text, text
    assert "=[redacted]" in text
    if "orderId=1" in path:
        assert "orderId=1" in text
