"""The ApiKeyStore port's contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from tests.contract.sql_stores import PostgresStores, SqliteStores, at

from order_engine.adapters.db import SqlApiKeyStore, SqlOrderRepository
from order_engine.adapters.db.schema import api_keys
from order_engine.app.access import hash_secret, new_key
from order_engine.ports.api_keys import ApiKey, ApiKeyStore


class ApiKeyStoreContract:
    @pytest.fixture
    def store(self, sql_repo: SqlOrderRepository) -> ApiKeyStore:
        return SqlApiKeyStore(sql_repo.db)

    async def _add(self, store: ApiKeyStore, name: str, when: float = 0) -> tuple[ApiKey, str]:
        key_id, key, digest = new_key()
        record = ApiKey(key_id, name, at(when))
        await store.add(record, digest)
        return record, key

    async def test_a_key_is_found_by_the_hash_of_its_secret_and_only_by_it(
        self, store: ApiKeyStore
    ) -> None:
        record, key = await self._add(store, "alice")
        assert await store.by_hash(hash_secret(key)) == record
        assert await store.by_hash(hash_secret(key + "x")) is None
        assert await store.by_hash(key) is None  # the secret itself is not what is stored

    async def test_the_secret_is_not_stored_anywhere(
        self, store: ApiKeyStore, sql_repo: SqlOrderRepository
    ) -> None:
        _, key = await self._add(store, "alice")
        secret = key.rsplit("_", 1)[1]
        async with sql_repo.engine.connect() as conn:
            rows = (await conn.execute(api_keys.select())).all()
        assert rows
        assert all(secret not in str(value) for row in rows for value in row)

    async def test_keys_are_listed_oldest_first(self, store: ApiKeyStore) -> None:
        second, _ = await self._add(store, "second", when=2)
        first, _ = await self._add(store, "first", when=1)
        assert await store.list() == [first, second]

    async def test_a_revoked_key_is_still_found_but_says_when_it_was_revoked(
        self, store: ApiKeyStore
    ) -> None:
        record, key = await self._add(store, "alice")
        assert await store.revoke(record.id, at(60))
        found = await store.by_hash(hash_secret(key))
        assert found is not None
        assert found.revoked
        assert found.revoked_at == at(60)

    async def test_revoking_twice_or_an_unknown_key_reports_nothing_revoked(
        self, store: ApiKeyStore
    ) -> None:
        record, _ = await self._add(store, "alice")
        assert await store.revoke(record.id, at(1))
        assert not await store.revoke(record.id, at(2))
        assert not await store.revoke("0000000000", at(3))
        (listed,) = await store.list()
        assert listed.revoked_at == at(1)

    async def test_exists_answers_whether_any_key_was_ever_created(
        self, store: ApiKeyStore
    ) -> None:
        assert not await store.exists()
        record, _ = await self._add(store, "alice")
        assert await store.exists()
        await store.revoke(record.id, at(1))
        assert await store.exists()

    async def test_a_duplicate_hash_is_refused_and_stores_nothing(self, store: ApiKeyStore) -> None:
        record, key = await self._add(store, "alice")
        with pytest.raises(IntegrityError):
            await store.add(ApiKey("ffffffffff", "copy", at(1)), hash_secret(key))
        assert await store.list() == [record]


class TestSqliteApiKeyStore(SqliteStores, ApiKeyStoreContract):
    pass


class TestPostgresApiKeyStore(PostgresStores, ApiKeyStoreContract):
    pass
