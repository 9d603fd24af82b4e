"""square: line items reference their order (ON DELETE CASCADE)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:45:00.000000

A line item cannot outlive its order, so an order that is inserted again
(e.g. by a history re-fetch after data loss) has no stale line items and the
sync need not look for any.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Orphans from before this migration would violate the new constraint.
    op.execute("DELETE FROM square_order_line_items WHERE order_id NOT IN (SELECT id FROM square_orders)")
    with op.batch_alter_table("square_order_line_items", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_square_order_line_items_order", "square_orders", ["order_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("square_order_line_items", schema=None) as batch_op:
        batch_op.drop_constraint("fk_square_order_line_items_order", type_="foreignkey")
