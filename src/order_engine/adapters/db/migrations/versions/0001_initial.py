"""Orders and their event logs.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

Written by hand to match schema.py; tests/unit/db proves the two agree on both
dialects. Types are spelled out here rather than imported from schema.py, so
that later edits to the application cannot rewrite history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# u64 amounts: NUMERIC(20, 0) holds them exactly; SQLite stores decimal text,
# because its INTEGER is signed 64-bit and its NUMERIC falls back to floats.
U64 = sa.Numeric(20, 0).with_variant(sa.String(20), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
ACTIVE = sa.text("status NOT IN ('confirmed', 'failed')")


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("input_mint", sa.String(44), nullable=False),
        sa.Column("output_mint", sa.String(44), nullable=False),
        sa.Column("amount_in", U64, nullable=False),
        sa.Column("slippage_bps", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expires_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("route", JSON, nullable=True),
        sa.Column("fill", JSON, nullable=True),
        sa.Column("tx_signature", sa.String(88), nullable=True),
        sa.Column("tx_raw", sa.LargeBinary(), nullable=True),
        sa.Column("tx_last_valid_block_height", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "(tx_signature IS NULL AND tx_raw IS NULL AND tx_last_valid_block_height IS NULL)"
            " OR (tx_signature IS NOT NULL AND tx_raw IS NOT NULL"
            " AND tx_last_valid_block_height IS NOT NULL)",
            name=op.f("ck_orders_tx_all_or_none"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index(
        "ix_orders_active_updated_at",
        "orders",
        ["updated_at"],
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_index(op.f("ix_orders_owner_created_at_id"), "orders", ["owner", "created_at", "id"])
    op.create_index(op.f("ix_orders_tx_signature"), "orders", ["tx_signature"], unique=True)

    op.create_table(
        "order_events",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", "seq", name=op.f("pk_order_events")),
    )


def downgrade() -> None:
    op.drop_table("order_events")
    op.drop_index(op.f("ix_orders_tx_signature"), table_name="orders")
    op.drop_index(op.f("ix_orders_owner_created_at_id"), table_name="orders")
    op.drop_index("ix_orders_active_updated_at", table_name="orders")
    op.drop_table("orders")
