"""square columns as wide as Square's spec allows; the rejected_records quarantine

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 15:20:00.000000

Square's OpenAPI spec allows line items' catalog_object_id 192 characters,
inventory counts' catalog_object_id and location_id 100, a count's quantity
26 characters (26 digits before the point, at most 5 after it) and a
currency code of 16 ("UNKNOWN_CURRENCY"). Widening a varchar or a numeric's
precision rewrites nothing on PostgreSQL. On SQLite, which stores every
string alike, the batch mode rebuilds the tables; rebuilding `square_orders`
drops it, and with foreign keys on that deletes its line items (ON DELETE
CASCADE), so they are kept aside and put back.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (table, column, narrower type, wider type)
_WIDENED: list[tuple[str, str, sa.types.TypeEngine[Any], sa.types.TypeEngine[Any]]] = [
    ("square_locations", "currency", sa.String(3), sa.String(16)),
    ("square_catalog_variations", "price_currency", sa.String(3), sa.String(16)),
    ("square_orders", "total_currency", sa.String(3), sa.String(16)),
    ("square_order_line_items", "catalog_object_id", sa.String(64), sa.String(192)),
    ("square_order_line_items", "currency", sa.String(3), sa.String(16)),
    ("square_inventory_counts", "catalog_object_id", sa.String(64), sa.String(100)),
    ("square_inventory_counts", "location_id", sa.String(64), sa.String(100)),
    ("square_inventory_counts", "quantity", sa.Numeric(20, 5), sa.Numeric(31, 5)),
]
# SQLite would turn a 26-digit quantity into a float: it is kept as text there (`types.ExactDecimal`).
_SQLITE_QUANTITY = sa.String()


def _retype(*, widen: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMP TABLE kept_line_items AS SELECT * FROM square_order_line_items")
    tables = dict.fromkeys(table for table, *_ in _WIDENED)
    for table in tables:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, narrow, wide in _WIDENED:
                if name == table:
                    if sqlite and column == "quantity":
                        wide = _SQLITE_QUANTITY
                    batch_op.alter_column(
                        column,
                        existing_type=narrow if widen else wide,
                        type_=wide if widen else narrow,
                    )
    if sqlite:
        op.execute("DELETE FROM square_order_line_items")
        op.execute("INSERT INTO square_order_line_items SELECT * FROM kept_line_items")
        op.execute("DROP TABLE kept_line_items")


def upgrade() -> None:
    _retype(widen=True)
    op.create_table(
        "rejected_records",
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("object_type", sa.String(64), primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw_json", sa.Text, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        comment="Records the warehouse could not take (quarantine); a later sync that writes one removes it.",
    )


def downgrade() -> None:
    op.drop_table("rejected_records")
    _retype(widen=False)
