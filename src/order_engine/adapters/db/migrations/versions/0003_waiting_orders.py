"""Waiting orders (limit, sniper): the reconciler's index leaves them out.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 00:00:00

Written by hand to match schema.py (tests/unit/db proves the two agree).
``open`` orders belong to their trigger service, not to a job, and
``expired``/``cancelled`` are terminal, so the partial index over the orders a
job works on is rebuilt with the new predicate. Its name stays: the query that
uses it only names the predicate.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_orders_active_updated_at"
RUNNING = sa.text("status NOT IN ('confirmed', 'failed', 'expired', 'cancelled', 'open')")
ACTIVE_0001 = sa.text("status NOT IN ('confirmed', 'failed')")


def _index(where: sa.TextClause) -> None:
    op.drop_index(INDEX, table_name="orders")
    op.create_index(INDEX, "orders", ["updated_at"], postgresql_where=where, sqlite_where=where)


def upgrade() -> None:
    _index(RUNNING)


def downgrade() -> None:
    # Orders of the new kinds cannot be represented before 0003: a downgrade
    # with any of them stored would leave rows no older engine understands.
    _index(ACTIVE_0001)
