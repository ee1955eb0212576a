"""``ApiKeyStore`` on SQL: the key's public id, its name, and the sha256 of its secret."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, Row, insert, select, update

from order_engine.adapters.db.database import Database
from order_engine.adapters.db.schema import api_keys
from order_engine.ports.api_keys import ApiKey

if TYPE_CHECKING:
    from order_engine.ports.api_keys import ApiKeyStore


class SqlApiKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, key: ApiKey, secret_hash: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                insert(api_keys),
                {
                    "id": key.id,
                    "name": key.name,
                    "secret_hash": secret_hash,
                    "created_at": key.created_at,
                    "revoked_at": key.revoked_at,
                },
            )

    async def by_hash(self, secret_hash: str) -> ApiKey | None:
        async with self._db.reading() as conn:
            row = (
                await conn.execute(select(api_keys).where(api_keys.c.secret_hash == secret_hash))
            ).one_or_none()
        return None if row is None else _key(row)

    async def list(self) -> list[ApiKey]:
        async with self._db.reading() as conn:
            rows = (
                await conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id))
            ).all()
        return [_key(row) for row in rows]

    async def revoke(self, key_id: str, at: datetime) -> bool:
        async with self._db.writing() as conn:
            result: CursorResult[Any] = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        return result.rowcount == 1

    async def exists(self) -> bool:
        async with self._db.reading() as conn:
            return (await conn.scalar(select(api_keys.c.id).limit(1))) is not None


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(row.id, row.name, row.created_at, row.revoked_at)


if TYPE_CHECKING:

    def _satisfies_port(db: Database) -> ApiKeyStore:
        return SqlApiKeyStore(db)
