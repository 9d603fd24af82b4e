"""The warehouse schema as SQLAlchemy Core tables.

These are the contract tables listed in README.md (*Warehouse*): others
query them by these names, keys and columns. Besides them, `sync_state` holds
the watermarks and `logikal_parts_list_files` the parts-list files. Every
change here needs an Alembic migration in `migrations/versions/`;
`test_migrations` fails when the two drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa

from logikal_square_sync.warehouse.types import ExactDecimal, UtcDateTime

metadata = sa.MetaData()


def _synced_at() -> sa.Column:
    return sa.Column("synced_at", UtcDateTime(), nullable=False)


# --- bookkeeping -------------------------------------------------------------

sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("stream", sa.String(200), primary_key=True),
    sa.Column("watermark", sa.String(64), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    comment="Watermarks: each commits in the same transaction as the data it covers.",
)

rejected_records = sa.Table(
    "rejected_records",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("object_type", sa.String(64), primary_key=True),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw_json", sa.Text, nullable=False),
    sa.Column("first_seen", UtcDateTime(), nullable=False),
    sa.Column("last_seen", UtcDateTime(), nullable=False),
    comment="Records the warehouse could not take (quarantine); a later sync that writes one removes it.",
)

# --- Square ------------------------------------------------------------------

square_locations = sa.Table(
    "square_locations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("status", sa.String(16)),
    sa.Column("type", sa.String(16)),
    sa.Column("timezone", sa.String(64)),
    sa.Column("currency", sa.String(16)),
    sa.Column("merchant_id", sa.String(64)),
    sa.Column("created_at", UtcDateTime()),
    _synced_at(),
)

square_catalog_categories = sa.Table(
    "square_catalog_categories",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("parent_category_id", sa.String(64)),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("is_deleted", sa.Boolean, nullable=False),
    _synced_at(),
)

square_catalog_items = sa.Table(
    "square_catalog_items",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("category_id", sa.String(64)),
    sa.Column("is_archived", sa.Boolean),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("is_deleted", sa.Boolean, nullable=False),
    _synced_at(),
)

square_catalog_variations = sa.Table(
    "square_catalog_variations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("item_id", sa.String(64)),
    sa.Column("name", sa.Text),
    sa.Column("sku", sa.Text),
    sa.Column("price_amount", sa.BigInteger),
    sa.Column("price_currency", sa.String(16)),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("is_deleted", sa.Boolean, nullable=False),
    _synced_at(),
)

square_orders = sa.Table(
    "square_orders",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("location_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("closed_at", UtcDateTime()),
    sa.Column("version", sa.BigInteger),
    sa.Column("total_amount", sa.BigInteger),
    sa.Column("total_currency", sa.String(16)),
    _synced_at(),
    sa.Index("ix_square_orders_location_updated", "location_id", "updated_at"),
    sa.Index("ix_square_orders_updated_at", "updated_at"),
)

square_order_line_items = sa.Table(
    "square_order_line_items",
    metadata,
    # Line items live and die with their order: none can be left behind without one.
    sa.Column(
        "order_id",
        sa.String(64),
        sa.ForeignKey("square_orders.id", ondelete="CASCADE", name="fk_square_order_line_items_order"),
        primary_key=True,
    ),
    sa.Column("uid", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("quantity", sa.Numeric(20, 5)),
    sa.Column("catalog_object_id", sa.String(192)),
    sa.Column("base_price_amount", sa.BigInteger),
    sa.Column("total_amount", sa.BigInteger),
    sa.Column("currency", sa.String(16)),
)

square_inventory_counts = sa.Table(
    "square_inventory_counts",
    metadata,
    sa.Column("catalog_object_id", sa.String(100), primary_key=True),
    sa.Column("location_id", sa.String(100), primary_key=True),
    sa.Column("state", sa.String(32), primary_key=True),
    sa.Column("catalog_object_type", sa.String(32)),
    # Square sends up to 26 characters with at most 5 decimals: 26 digits before the point.
    sa.Column("quantity", ExactDecimal(31, 5), nullable=False),
    sa.Column("calculated_at", UtcDateTime(), nullable=False),
    _synced_at(),
)

# --- LogiKal -----------------------------------------------------------------

logikal_directories = sa.Table(
    "logikal_directories",
    metadata,
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("parent_path", sa.String(1000)),
    _synced_at(),
    sa.Column("deleted_at", UtcDateTime()),
)

logikal_projects = sa.Table(
    "logikal_projects",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("directory_path", sa.String(1000), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("job_number", sa.Text),
    sa.Column("offer_number", sa.Text),
    sa.Column("person_in_charge", sa.Text),
    sa.Column("created_at", UtcDateTime()),
    sa.Column("changed_at", UtcDateTime()),
    sa.Column("is_deleted", sa.Boolean, nullable=False),
    _synced_at(),
    sa.Column("deleted_at", UtcDateTime()),
    # When phases, elevations and parts lists were last synced, and the
    # project's changed_at that sync saw (the project-sync sensor compares them).
    sa.Column("contents_synced_at", UtcDateTime()),
    sa.Column("contents_changed_at", UtcDateTime()),
    sa.Index("ix_logikal_projects_name", "name"),
)

logikal_phases = sa.Table(
    "logikal_phases",
    metadata,
    sa.Column("project_id", sa.String(36), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("description", sa.Text),
    _synced_at(),
    sa.Column("deleted_at", UtcDateTime()),
)

logikal_elevations = sa.Table(
    "logikal_elevations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("project_id", sa.String(36), nullable=False),
    sa.Column("phase_id", sa.String(36), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("version_id", sa.String(36)),
    sa.Column("amount", sa.Float),
    sa.Column("width", sa.Float),
    sa.Column("height", sa.Float),
    sa.Column("system_description", sa.Text),
    sa.Column("user_description", sa.Text),
    sa.Column("created_at", UtcDateTime()),
    sa.Column("changed_at", UtcDateTime()),
    sa.Column("is_in_recycle_bin", sa.Boolean, nullable=False),
    _synced_at(),
    sa.Column("deleted_at", UtcDateTime()),
    sa.Index("ix_logikal_elevations_project", "project_id"),
)

logikal_parts_lists = sa.Table(
    "logikal_parts_lists",
    metadata,
    sa.Column("elevation_id", sa.String(36), primary_key=True),
    sa.Column("sha256", sa.String(64)),
    sa.Column("size_bytes", sa.BigInteger),
    # The elevation state the file was fetched for: a later change refetches it.
    sa.Column("elevation_version_id", sa.String(36)),
    sa.Column("elevation_changed_at", UtcDateTime()),
    sa.Column("fetched_at", UtcDateTime(), nullable=False),
    sa.Column("parse_status", sa.String(16), nullable=False),
    sa.Column("parse_error", sa.Text),
    # Fields of the `Elevations` summary table of the parts list.
    sa.Column("auto_description", sa.Text),
    sa.Column("system_code", sa.Text),
    sa.Column("system_name", sa.Text),
    sa.Column("width_output", sa.Float),
    sa.Column("height_output", sa.Float),
    sa.Column("weight_output", sa.Float),
    sa.Column("area_output", sa.Float),
    sa.Column("color_base_long", sa.Text),
)

logikal_parts_list_files = sa.Table(
    "logikal_parts_list_files",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("stored_at", UtcDateTime(), nullable=False),
    comment="Parts-list SQLite files by content hash; identical files are stored once.",
)

logikal_elevation_glass = sa.Table(
    "logikal_elevation_glass",
    metadata,
    sa.Column("elevation_id", sa.String(36), primary_key=True),
    sa.Column("glass_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text),
)
