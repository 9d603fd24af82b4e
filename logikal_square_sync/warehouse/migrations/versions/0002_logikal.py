"""logikal: per-project contents sync bookkeeping

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:00:00.000000

`contents_synced_at` is when a project's phases, elevations and parts lists
were last synced; `contents_changed_at` the project's `changed_at` that sync
saw. The project-sync sensor picks changed and overdue projects by them, and
the per-project freshness check reads them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("logikal_projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contents_synced_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("contents_changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("logikal_projects", schema=None) as batch_op:
        batch_op.drop_column("contents_changed_at")
        batch_op.drop_column("contents_synced_at")
