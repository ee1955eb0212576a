"""Order terms: what a waiting order waits for, its expiry, and per-order settings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 12:00:00

Written by hand to match schema.py (tests/unit/db proves the two agree).
Every column is nullable: a market order has no terms, and the orders stored
before this revision keep meaning what they meant (no expiry, the engine's
price-impact bound and priority fee).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
WAITING = sa.text("status IN ('open')")
INDEX = "ix_orders_open_expires_at"


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("terms", JSON, nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("max_price_impact_bps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("priority_fee", sa.String(24), nullable=True))
    op.create_index(INDEX, "orders", ["expires_at"], postgresql_where=WAITING, sqlite_where=WAITING)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("priority_fee")
        batch.drop_column("max_price_impact_bps")
        batch.drop_column("expires_at")
        batch.drop_column("terms")
