"""API keys, idempotency keys, and the events' global position.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01 00:00:00

Written by hand to match schema.py (tests/unit/db proves the two agree).
Events that already exist are numbered in the order they happened, with txid
0, so they sort before every event written from now on
(docs/decisions/0004-account-stream-cursor.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
POSITION_SEQ = "order_events_position_seq"

# UPDATE ... FROM: PostgreSQL, and SQLite since 3.33.
_NUMBER_EXISTING_EVENTS = """
UPDATE order_events SET txid = 0, position = numbered.position, owner = numbered.owner
FROM (
    SELECT e.order_id, e.seq, o.owner,
           row_number() OVER (ORDER BY e.at, e.order_id, e.seq) AS position
    FROM order_events e JOIN orders o ON o.id = e.order_id
) AS numbered
WHERE numbered.order_id = order_events.order_id AND numbered.seq = order_events.seq
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(sa.schema.CreateSequence(sa.Sequence(POSITION_SEQ)))
    with op.batch_alter_table("order_events") as batch:
        batch.add_column(sa.Column("txid", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(128), nullable=True))
    op.execute(_NUMBER_EXISTING_EVENTS)
    if postgres:
        op.execute(
            "SELECT setval('order_events_position_seq', COALESCE(MAX(position), 0) + 1, false) "
            "FROM order_events"
        )
    with op.batch_alter_table("order_events") as batch:
        batch.alter_column("txid", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("position", existing_type=sa.BigInteger(), nullable=False)
    op.create_index(
        op.f("ix_order_events_txid_position"), "order_events", ["txid", "position"], unique=True
    )
    op.create_index(
        op.f("ix_order_events_owner_txid_position"),
        "order_events",
        ["owner", "txid", "position"],
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("revoked_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_secret_hash"), "api_keys", ["secret_hash"], unique=True)

    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("response", JSON, nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_api_keys_secret_hash"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_order_events_owner_txid_position"), table_name="order_events")
    op.drop_index(op.f("ix_order_events_txid_position"), table_name="order_events")
    with op.batch_alter_table("order_events") as batch:
        batch.drop_column("owner")
        batch.drop_column("position")
        batch.drop_column("txid")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.schema.DropSequence(sa.Sequence(POSITION_SEQ)))
