"""The relational schema, as SQLAlchemy Core tables: one definition for SQLite and PostgreSQL.

``versions/`` writes the same schema by hand, one revision at a time; a test
proves that the two agree on both dialects, so edit them together.

Choices that are not obvious from the column list:

* Token amounts are u64 and exceed BIGINT's signed range, so ``U64`` stores them
  as NUMERIC(20, 0) on PostgreSQL and as decimal text on SQLite, whose INTEGER
  is signed 64-bit and whose NUMERIC would silently turn large values into floats.
* Timestamps are stored in UTC and always come back timezone-aware: SQLite
  keeps no offset, so ``UtcDateTime`` normalises on the way in and the way out.
  Its fixed-width text format also makes lexical comparison chronological,
  which the lease and reconciler predicates rely on.
* ``status`` has no CHECK constraint: a new order type may add statuses, and a
  constraint listing them would need a migration that no test could remind
  anyone to write. The domain's transition table is the guard.
* ``order_events.order_id`` has no ON DELETE CASCADE: nothing deletes orders,
  and on SQLite Alembic's batch mode rebuilds a table by dropping it, which
  would cascade into (and empty) the event log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

U64_MAX = 2**64 - 1

# The reconciler's partial index and its query must spell the predicate the
# same way, with literals rather than parameters, for PostgreSQL to match a
# prepared query to the index. A unit test checks these are the domain's
# TERMINAL and WAITING: RUNNING (what a job works on) is every other status.
TERMINAL_STATUSES: tuple[str, ...] = ("confirmed", "failed", "expired", "cancelled")
WAITING_STATUSES: tuple[str, ...] = ("open",)
RUNNING = sa.text(
    f"status NOT IN ({', '.join(repr(s) for s in TERMINAL_STATUSES + WAITING_STATUSES)})"
)
WAITING = sa.text(f"status IN ({', '.join(repr(s) for s in WAITING_STATUSES)})")


class U64(sa.TypeDecorator[int]):
    """An unsigned 64-bit integer, stored losslessly on either dialect."""

    impl = sa.Numeric(20, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(20))
        return dialect.type_descriptor(sa.Numeric(20, 0, asdecimal=True))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an int amount in base units, got {type(value).__name__}")
        if not 0 <= value <= U64_MAX:
            raise ValueError(f"expected an amount within u64 (0..{U64_MAX}), got {value}")
        return str(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp; naive datetimes are refused, not guessed at."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"expected a timezone-aware datetime, got naive {value.isoformat()}")
        value = value.astimezone(UTC)
        # SQLite's DateTime formats the wall clock and drops the offset anyway;
        # stripping it after converting makes the stored text unambiguously UTC.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json() -> TypeEngine[Any]:
    # JSONB on PostgreSQL: binary, indexable, and equality-comparable.
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("input_mint", sa.String(44), nullable=False),
    sa.Column("output_mint", sa.String(44), nullable=False),
    sa.Column("amount_in", U64(), nullable=False),
    sa.Column("slippage_bps", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # The version every conditional write checks: equal to the last event's seq.
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
    sa.Column("route", _json(), nullable=True),
    sa.Column("fill", _json(), nullable=True),
    sa.Column("tx_signature", sa.String(88), nullable=True),
    sa.Column("tx_raw", sa.LargeBinary(), nullable=True),
    sa.Column("tx_last_valid_block_height", sa.BigInteger(), nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # What a waiting order waits for (domain/terms.py's JSON: exact decimal
    # strings), and settings any type may carry; all part of the immutable
    # definition, written once at create.
    sa.Column("terms", _json(), nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("max_price_impact_bps", sa.Integer(), nullable=True),
    # Micro-lamports per compute unit as decimal text, or "auto".
    sa.Column("priority_fee", sa.String(24), nullable=True),
    # A signed transaction is persisted whole or not at all: a retry must be
    # able to rebroadcast exactly the bytes whose signature it checks.
    sa.CheckConstraint(
        "(tx_signature IS NULL AND tx_raw IS NULL AND tx_last_valid_block_height IS NULL)"
        " OR (tx_signature IS NOT NULL AND tx_raw IS NOT NULL"
        " AND tx_last_valid_block_height IS NOT NULL)",
        name="tx_all_or_none",
    ),
)

# The reconciler scans running orders by age; terminal ones, the bulk of the
# table over time, and open ones (their trigger service's) are left out.
sa.Index(
    "ix_orders_active_updated_at",
    orders.c.updated_at,
    postgresql_where=RUNNING,
    sqlite_where=RUNNING,
)
# The expiry sweeper's scan, and the trigger services' discovery of orders that
# (re)entered ``open`` elsewhere: only the open orders, a small part of the table.
sa.Index(
    "ix_orders_open_expires_at",
    orders.c.expires_at,
    postgresql_where=WAITING,
    sqlite_where=WAITING,
)
sa.Index(
    "ix_orders_open_updated_at",
    orders.c.updated_at,
    postgresql_where=WAITING,
    sqlite_where=WAITING,
)
# Listing an owner's orders, newest first, with id as the keyset tie-break.
sa.Index(None, orders.c.owner, orders.c.created_at, orders.c.id)
# A signature names one transaction; two orders sharing one would mean the same
# swap could land for both, so the database refuses it outright.
sa.Index(None, orders.c.tx_signature, unique=True)

# The account stream's global order (docs/decisions/0004): PostgreSQL takes
# ``position`` from this sequence and ``txid`` from the writing transaction;
# SQLite, whose writers are serial, numbers positions itself with txid 0.
# Events that predate the columns were numbered with txid 0 by migration 0002.
EVENT_POSITION_SEQ = sa.Sequence("order_events_position_seq", metadata=metadata)

order_events = sa.Table(
    "order_events",
    metadata,
    sa.Column("order_id", sa.Uuid(), sa.ForeignKey(orders.c.id), primary_key=True),
    sa.Column("seq", sa.Integer(), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("details", _json(), nullable=False),
    sa.Column("txid", sa.BigInteger(), nullable=False),
    sa.Column("position", sa.BigInteger(), nullable=False),
    # The order's owner, copied so that an account's events are one index range.
    sa.Column("owner", sa.String(128), nullable=True),
)
sa.Index(None, order_events.c.txid, order_events.c.position, unique=True)
sa.Index(None, order_events.c.owner, order_events.c.txid, order_events.c.position)

# API keys: only the sha256 of the secret is kept (app/access.py says why that suffices).
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
)
sa.Index(None, api_keys.c.secret_hash, unique=True)

# Idempotency-Key records (ports/idempotency.py). The primary key is what makes
# a reservation atomic; ``owner`` is "" for anonymous callers (open mode).
# No foreign key to orders: the record is completed in the order's transaction.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("owner", sa.String(128), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("order_id", sa.Uuid(), nullable=True),
    sa.Column("response", _json(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index(None, idempotency_keys.c.created_at)
