"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 16:47:56.781140

A frozen record of the schema at this revision: the helpers below are its
own, never `tables.py`, which moves on with later revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _utc(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _guid(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=36), nullable=nullable)


def _square_id(name: str, *, nullable: bool = True) -> sa.Column:
    """A Square id or reference: 64 characters at this revision."""
    return sa.Column(name, sa.String(length=64), nullable=nullable)


def _text(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _synced_and_deleted() -> list[sa.Column]:
    return [_utc("synced_at", nullable=False), _utc("deleted_at")]


def _lifecycle(deleted_flag: str) -> list[sa.Column]:
    """A LogiKal project's or elevation's dates and own deletion flag, then the sync's columns."""
    return [
        _utc("created_at"),
        _utc("changed_at"),
        sa.Column(deleted_flag, sa.Boolean(), nullable=False),
        *_synced_and_deleted(),
    ]


def _catalog_versioning() -> list[sa.Column]:
    return [
        sa.Column("version", sa.BigInteger(), nullable=False),
        _utc("updated_at", nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        _utc("synced_at", nullable=False),
    ]


def _create_indexes(table: str, *indexes: tuple[str, list[str]]) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name, columns in indexes:
            batch_op.create_index(name, columns, unique=False)


def _drop_indexes(table: str, *names: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name in names:
            batch_op.drop_index(name)


def upgrade() -> None:
    op.create_table(
        "logikal_directories",
        sa.Column("path", sa.String(length=1000), nullable=False),
        _text("name", nullable=False),
        sa.Column("parent_path", sa.String(length=1000), nullable=True),
        *_synced_and_deleted(),
        sa.PrimaryKeyConstraint("path"),
    )
    op.create_table(
        "logikal_elevation_glass",
        _guid("elevation_id"),
        sa.Column("glass_id", sa.String(length=64), nullable=False),
        _text("name"),
        sa.PrimaryKeyConstraint("elevation_id", "glass_id"),
    )
    op.create_table(
        "logikal_elevations",
        _guid("id"),
        _guid("project_id"),
        _guid("phase_id"),
        _text("name"),
        _guid("version_id", nullable=True),
        *(sa.Column(name, sa.Float(), nullable=True) for name in ("amount", "width", "height")),
        _text("system_description"),
        _text("user_description"),
        *_lifecycle("is_in_recycle_bin"),
        sa.PrimaryKeyConstraint("id"),
    )
    _create_indexes("logikal_elevations", ("ix_logikal_elevations_project", ["project_id"]))

    op.create_table(
        "logikal_parts_list_files",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        _utc("stored_at", nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
        comment="Parts-list SQLite files by content hash; identical files are stored once.",
    )
    op.create_table(
        "logikal_parts_lists",
        _guid("elevation_id"),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        _guid("elevation_version_id", nullable=True),
        _utc("elevation_changed_at"),
        _utc("fetched_at", nullable=False),
        sa.Column("parse_status", sa.String(length=16), nullable=False),
        _text("parse_error"),
        # The summary of the parts list's Elevations table.
        *(_text(name) for name in ("auto_description", "system_code", "system_name")),
        *(
            sa.Column(name, sa.Float(), nullable=True)
            for name in ("width_output", "height_output", "weight_output", "area_output")
        ),
        _text("color_base_long"),
        sa.PrimaryKeyConstraint("elevation_id"),
    )
    op.create_table(
        "logikal_phases",
        _guid("project_id"),
        _guid("id"),
        _text("name"),
        _text("description"),
        *_synced_and_deleted(),
        sa.PrimaryKeyConstraint("project_id", "id"),
    )
    op.create_table(
        "logikal_projects",
        _guid("id"),
        sa.Column("directory_path", sa.String(length=1000), nullable=False),
        _text("name", nullable=False),
        *(_text(name) for name in ("job_number", "offer_number", "person_in_charge")),
        *_lifecycle("is_deleted"),
        sa.PrimaryKeyConstraint("id"),
    )
    _create_indexes("logikal_projects", ("ix_logikal_projects_name", ["name"]))

    op.create_table(
        "square_catalog_categories",
        _square_id("id", nullable=False),
        _text("name"),
        _square_id("parent_category_id"),
        *_catalog_versioning(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "square_catalog_items",
        _square_id("id", nullable=False),
        _text("name"),
        _square_id("category_id"),
        sa.Column("is_archived", sa.Boolean(), nullable=True),
        *_catalog_versioning(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "square_catalog_variations",
        _square_id("id", nullable=False),
        _square_id("item_id"),
        _text("name"),
        _text("sku"),
        sa.Column("price_amount", sa.BigInteger(), nullable=True),
        sa.Column("price_currency", sa.String(length=3), nullable=True),
        *_catalog_versioning(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "square_inventory_counts",
        _square_id("catalog_object_id", nullable=False),
        _square_id("location_id", nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("catalog_object_type", sa.String(length=32), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=20, scale=5), nullable=False),
        _utc("calculated_at", nullable=False),
        _utc("synced_at", nullable=False),
        sa.PrimaryKeyConstraint("catalog_object_id", "location_id", "state"),
    )
    op.create_table(
        "square_locations",
        _square_id("id", nullable=False),
        _text("name"),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        _square_id("merchant_id"),
        _utc("created_at"),
        _utc("synced_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "square_order_line_items",
        _square_id("order_id", nullable=False),
        _square_id("uid", nullable=False),
        _text("name"),
        sa.Column("quantity", sa.Numeric(precision=20, scale=5), nullable=True),
        _square_id("catalog_object_id"),
        sa.Column("base_price_amount", sa.BigInteger(), nullable=True),
        sa.Column("total_amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.PrimaryKeyConstraint("order_id", "uid"),
    )
    op.create_table(
        "square_orders",
        _square_id("id", nullable=False),
        _square_id("location_id", nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _utc("created_at", nullable=False),
        _utc("updated_at", nullable=False),
        _utc("closed_at"),
        sa.Column("version", sa.BigInteger(), nullable=True),
        sa.Column("total_amount", sa.BigInteger(), nullable=True),
        sa.Column("total_currency", sa.String(length=3), nullable=True),
        _utc("synced_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _create_indexes(
        "square_orders",
        ("ix_square_orders_location_updated", ["location_id", "updated_at"]),
        ("ix_square_orders_updated_at", ["updated_at"]),
    )

    op.create_table(
        "sync_state",
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("watermark", sa.String(length=64), nullable=True),
        _utc("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("stream"),
        comment="Watermarks: each commits in the same transaction as the data it covers.",
    )


def downgrade() -> None:
    op.drop_table("sync_state")
    _drop_indexes("square_orders", "ix_square_orders_updated_at", "ix_square_orders_location_updated")
    for table in (
        "square_orders",
        "square_order_line_items",
        "square_locations",
        "square_inventory_counts",
        "square_catalog_variations",
        "square_catalog_items",
        "square_catalog_categories",
    ):
        op.drop_table(table)
    _drop_indexes("logikal_projects", "ix_logikal_projects_name")
    for table in ("logikal_projects", "logikal_phases", "logikal_parts_lists", "logikal_parts_list_files"):
        op.drop_table(table)
    _drop_indexes("logikal_elevations", "ix_logikal_elevations_project")
    for table in ("logikal_elevations", "logikal_elevation_glass", "logikal_directories"):
        op.drop_table(table)
