"""The TicketStore port's contract (single use, bounded life), in process and on
Redis; and a ticket issued at one API node redeemed at another."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from order_engine.adapters.memory.tickets import InMemoryTicketStore
from order_engine.adapters.redis.tickets import RedisTicketStore
from order_engine.ports.tickets import TicketStore


class TicketStoreContract:
    @pytest.fixture
    def store(self) -> TicketStore:
        raise NotImplementedError("a subclass provides an empty store")

    async def test_a_ticket_is_taken_once_with_what_it_stands_for(self, store: TicketStore) -> None:
        await store.put("d1", "alice", 5)
        assert await store.take("d1") == "alice"
        assert await store.take("d1") is None

    async def test_an_unknown_ticket_is_nothing(self, store: TicketStore) -> None:
        assert await store.take("never-issued") is None

    async def test_a_ticket_past_its_life_is_nothing(self, store: TicketStore) -> None:
        await store.put("d2", "alice", 0.05)
        await asyncio.sleep(0.15)
        assert await store.take("d2") is None

    async def test_of_many_concurrent_takers_exactly_one_gets_the_ticket(
        self, store: TicketStore
    ) -> None:
        await store.put("d3", "alice", 5)
        taken = await asyncio.gather(*(store.take("d3") for _ in range(20)))
        assert taken.count("alice") == 1
        assert taken.count(None) == 19


class TestInMemoryTicketStore(TicketStoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[TicketStore]:
        store = InMemoryTicketStore()
        yield store
        await store.close()


@pytest.mark.redis
class TestRedisTicketStore(TicketStoreContract):
    @pytest.fixture
    def prefix(self) -> str:
        return f"oe-test-tickets-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    async def store(self, redis_url: str, prefix: str) -> AsyncIterator[TicketStore]:
        store = RedisTicketStore.from_url(redis_url, prefix=prefix)
        yield store
        await store.close()

    async def test_a_ticket_issued_at_one_node_is_redeemed_once_at_any(
        self, redis_url: str, prefix: str
    ) -> None:
        nodes = [RedisTicketStore.from_url(redis_url, prefix=prefix) for _ in range(3)]
        try:
            await nodes[0].put("shared", "alice", 5)
            taken = await asyncio.gather(*(node.take("shared") for node in nodes[1:]))
            assert sorted(taken, key=str) == [None, "alice"]
        finally:
            for node in nodes:
                await node.close()
