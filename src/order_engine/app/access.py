"""Who is calling: API keys, how they are made, and how a request's key is checked.

**Key format.** ``oek_<id>_<secret>``: ``id`` is 10 hex characters, public
(listings, logs, and the ``owner`` of the key's orders); ``secret`` is 32
random bytes (256 bits) in URL-safe base64. Only ``sha256(key)`` is stored.
A slow password hash (bcrypt, argon2) exists to make guessing *low-entropy*
secrets expensive; a 256-bit random secret cannot be guessed at any speed,
so a fast hash loses nothing and lets every request be checked in
microseconds, by an indexed lookup of the hash.

**Modes** (``AUTH_MODE``): ``required`` (``order-engine api``): every request
needs a valid key. ``auto`` (``serve``): open while no key exists, for a
newcomer; enforced from the moment one exists (revoked keys count, so
revoking the last key does not reopen the API). ``off``: keys are optional.
A key that is presented is always checked, in every mode: a bad one is a 401.

**Tickets.** ``issue_ticket`` trades a key (sent in a header) for a
``oet_`` ticket worth one WebSocket connection within ``ticket_ttl_s``
(``?ticket=`` in the socket's URL, where a browser cannot send a header and
a long-lived key would be logged). The store keeps the ticket's sha256 and
the key's hash; redeeming it forgets it and checks the key as a request
would, so a key revoked since is refused.

**Caching.** Lookups (by hash) and the "does any key exist" answer are
cached for ``cache_s``, so a key created or revoked takes effect within that.
Once keys exist they always will, so that answer is kept for good.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Literal

import orjson

from order_engine.app.reporting import wire_time
from order_engine.ports.api_keys import ApiKey, ApiKeyStore
from order_engine.ports.clock import Clock
from order_engine.ports.tickets import TicketStore

AuthMode = Literal["auto", "required", "off"]
KEY_PREFIX = "oek_"
TICKET_PREFIX = "oet_"
_TICKET_SHAPE = re.compile(r"oet_[A-Za-z0-9_-]{43}")
_KEY_SHAPE = re.compile(r"oek_([0-9a-f]{10})_[A-Za-z0-9_-]{43}")
MAX_NAME_LENGTH = 128
_CACHE_LIMIT = 10_000


def hash_secret(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def public_part(key: str) -> str:
    """What may be shown of a presented key: its public id, never the secret."""
    match = _KEY_SHAPE.fullmatch(key)
    return f"{KEY_PREFIX}{match.group(1)}_..." if match else "(not an order-engine key)"


def new_key() -> tuple[str, str, str]:
    """A fresh ``(id, key, hash)``; the key is shown once and never stored."""
    key_id = secrets.token_hex(5)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return key_id, key, hash_secret(key)


async def create_key(store: ApiKeyStore, name: str, clock: Clock) -> tuple[ApiKey, str]:
    """Store a new key named ``name``; returns it with the secret key (shown once)."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValueError(f"expected a key name of 1 to {MAX_NAME_LENGTH} characters, got {name!r}")
    key_id, key, digest = new_key()
    record = ApiKey(key_id, name, clock.now())
    await store.add(record, digest)
    return record, key


@dataclass(frozen=True, slots=True)
class Caller:
    """``owner`` is the key's id; ``None`` is an anonymous caller (open mode), who
    sees every order, as before keys existed."""

    owner: str | None = None
    key_name: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.owner is None


ANONYMOUS = Caller()


class Unauthorized(Exception):
    def __init__(self, reason: Literal["missing", "invalid", "revoked"], message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


MISSING_KEY = (
    "missing API key: expected an `Authorization: Bearer <key>` or `X-API-Key: <key>` header "
    '(WebSocket: also `?apiKey=<key>` or a first message {"apiKey": "<key>"}); create one '
    "with `order-engine keys create --name <name>`"
)


class Authenticator:
    def __init__(
        self,
        keys: ApiKeyStore,
        *,
        mode: AuthMode,
        cache_s: float,
        clock: Clock,
        tickets: TicketStore | None = None,
        ticket_ttl_s: float = 30.0,
    ) -> None:
        self.keys = keys
        self.tickets = tickets
        self.ticket_ttl_s = ticket_ttl_s
        self.mode = mode
        self.cache_s = cache_s
        self.clock = clock
        self._by_hash: dict[str, tuple[float, ApiKey | None]] = {}
        self._keys_exist = False
        self._keys_checked_at: float | None = None
        # One store read at a time per question, shared by every request that asks
        # meanwhile: 10,000 connections arriving at a cold cache would otherwise
        # queue 10,000 reads for the same answer and exhaust the pool (500s).
        self._checking: asyncio.Future[bool] | None = None
        self._looking_up: dict[str, asyncio.Future[ApiKey | None]] = {}

    async def enforced(self) -> bool:
        """Whether a request without a key is refused right now."""
        if self.mode != "auto":
            return self.mode == "required"
        if self._keys_exist:
            return True
        now = self.clock.monotonic()
        if self._keys_checked_at is None or now - self._keys_checked_at >= self.cache_s:
            if self._checking is None:
                self._checking = asyncio.ensure_future(self._check_keys_exist(now))
            return await asyncio.shield(self._checking)
        return self._keys_exist

    async def _check_keys_exist(self, now: float) -> bool:
        try:
            exists = await self.keys.exists()
            self._keys_exist = self._keys_exist or exists
            self._keys_checked_at = now
            return self._keys_exist
        finally:
            self._checking = None

    async def authenticate(self, presented: str | None) -> Caller:
        """The caller behind ``presented`` (``None``: no key sent); raises ``Unauthorized``."""
        if presented is None:
            if await self.enforced():
                raise Unauthorized("missing", MISSING_KEY)
            return ANONYMOUS
        key = await self._lookup(hash_secret(presented))
        if key is None:
            raise Unauthorized("invalid", f"invalid API key {public_part(presented)}: no such key")
        if key.revoked_at is not None:
            at = wire_time(key.revoked_at)
            raise Unauthorized("revoked", f"API key {KEY_PREFIX}{key.id}_... was revoked at {at}")
        return Caller(key.id, key.name)

    async def issue_ticket(self, presented: str | None) -> str:
        """A single-use ticket standing for the caller of ``presented`` (checked
        first, as ``authenticate`` does); ``None`` in open mode is the anonymous caller."""
        if self.tickets is None:
            raise RuntimeError("this engine was built without a ticket store")
        await self.authenticate(presented)
        ticket = f"{TICKET_PREFIX}{secrets.token_urlsafe(32)}"
        holder = {"keyHash": None if presented is None else hash_secret(presented)}
        await self.tickets.put(
            hash_secret(ticket), orjson.dumps(holder).decode(), self.ticket_ttl_s
        )
        return ticket

    async def redeem_ticket(self, ticket: str) -> Caller:
        """The caller a ticket stands for, once; raises ``Unauthorized`` for a ticket
        that is malformed, unknown, expired or used, or whose key was revoked since."""
        found = None
        if self.tickets is not None and _TICKET_SHAPE.fullmatch(ticket):
            found = await self.tickets.take(hash_secret(ticket))
        if found is None:
            raise Unauthorized(
                "invalid",
                "invalid ticket: expected one from POST /api/ws-tickets, unused and at most "
                f"{self.ticket_ttl_s:g} s old",
            )
        digest = orjson.loads(found)["keyHash"]
        if digest is None:
            if await self.enforced():  # issued while the engine was open; it is not now
                raise Unauthorized("missing", MISSING_KEY)
            return ANONYMOUS
        key = await self._lookup(digest)
        if key is None:
            raise Unauthorized("invalid", "invalid ticket: its API key no longer exists")
        if key.revoked_at is not None:
            at = wire_time(key.revoked_at)
            raise Unauthorized("revoked", f"API key {KEY_PREFIX}{key.id}_... was revoked at {at}")
        return Caller(key.id, key.name)

    async def _lookup(self, digest: str) -> ApiKey | None:
        now = self.clock.monotonic()
        cached = self._by_hash.get(digest)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        pending = self._looking_up.get(digest)
        if pending is None:
            pending = self._looking_up[digest] = asyncio.ensure_future(self._read(digest, now))
        return await asyncio.shield(pending)

    async def _read(self, digest: str, now: float) -> ApiKey | None:
        try:
            key = await self.keys.by_hash(digest)
        finally:
            del self._looking_up[digest]
        if len(self._by_hash) >= _CACHE_LIMIT:
            self._by_hash.clear()  # simplest bound; a miss only costs one indexed read
        self._by_hash[digest] = (now, key)
        if key is not None:
            self._keys_exist = True
        return key
