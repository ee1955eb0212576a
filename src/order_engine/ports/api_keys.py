"""API key store port: keys as the API authenticates them, by the hash of the secret.

The secret itself is never stored: only ``sha256(key)``, which is what a
request's key is looked up by (``app/access.py`` explains why a fast hash is
enough for a 256-bit random key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str  # public: shown in listings, stored as the owner of the key's orders
    name: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class ApiKeyStore(Protocol):
    async def add(self, key: ApiKey, secret_hash: str) -> None:
        """Store a new key; a duplicate id or hash raises and stores nothing."""
        ...

    async def by_hash(self, secret_hash: str) -> ApiKey | None:
        """The key whose secret hashes to ``secret_hash``, revoked or not."""
        ...

    async def list(self) -> list[ApiKey]:
        """Every key, oldest first."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> bool:
        """Revoke an active key; ``False`` when there is no such active key."""
        ...

    async def exists(self) -> bool:
        """Whether any key was ever created (revoked ones included)."""
        ...
