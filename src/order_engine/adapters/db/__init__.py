"""Persistence adapter: SQLAlchemy Core on SQLite (embedded) or PostgreSQL (distributed)."""

from order_engine.adapters.db.api_keys import SqlApiKeyStore
from order_engine.adapters.db.database import Database
from order_engine.adapters.db.engine import create_engine
from order_engine.adapters.db.idempotency import SqlIdempotencyStore
from order_engine.adapters.db.migrate import run_migrations, run_migrations_async
from order_engine.adapters.db.queries import SqlOrderQueries
from order_engine.adapters.db.repository import SqlOrderRepository
from order_engine.adapters.db.schema import metadata, order_events, orders

__all__ = [
    "Database",
    "SqlApiKeyStore",
    "SqlIdempotencyStore",
    "SqlOrderQueries",
    "SqlOrderRepository",
    "create_engine",
    "metadata",
    "order_events",
    "orders",
    "run_migrations",
    "run_migrations_async",
]
