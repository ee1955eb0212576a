"""Open orders by their last change: how a trigger service finds orders that
(re)entered ``open`` in another process.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 12:30:00

Written by hand to match schema.py (tests/unit/db proves the two agree). A
price watcher reads, every ``WATCH_DISCOVER_S``, the open orders changed since
it last looked (placed elsewhere, or back to ``open`` after firing); a partial
index keeps that read to the open orders instead of the whole table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("status IN ('open')")
INDEX = "ix_orders_open_updated_at"


def upgrade() -> None:
    op.create_index(INDEX, "orders", ["updated_at"], postgresql_where=WAITING, sqlite_where=WAITING)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="orders")
