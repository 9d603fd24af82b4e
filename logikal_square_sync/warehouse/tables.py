"""The warehouse schema as SQLAlchemy Core tables.

These are the contract tables listed in README.md (*Warehouse*): others
query them by these names, keys and columns. Besides them, `sync_state` holds
the watermarks and `logikal_parts_list_files` the parts-list files. Every
change here needs an Alembic migration in `migrations/versions/`;
`test_migrations` fails when the two drift apart.

Each column's `doc` says what it holds; the asset pages show it in their
column tables (`asset_metadata.py`). It lives in Python only: a `doc` is no
database comment, so it needs no migration.
"""

from __future__ import annotations

import sqlalchemy as sa

from logikal_square_sync.warehouse.types import ExactDecimal, UtcDateTime

metadata = sa.MetaData()


# --- column groups several tables share ----------------------------------------


def _utc(name: str, doc: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, UtcDateTime(), nullable=nullable, doc=doc)


def _synced_at() -> sa.Column:
    return _utc("synced_at", "When a sync last wrote this row.", nullable=False)


def _guid(name: str, doc: str, *, primary_key: bool = False, nullable: bool | None = None) -> sa.Column:
    """A LogiKal id: a lowercase hyphenated GUID (nullable unless a key, as `sa.Column` has it)."""
    nullable = not primary_key if nullable is None else nullable
    return sa.Column(name, sa.String(36), primary_key=primary_key, nullable=nullable, doc=doc)


def _square_id(doc: str) -> sa.Column:
    return sa.Column("id", sa.String(64), primary_key=True, doc=doc)


def _square_id_and_name(kind: str) -> list[sa.Column]:
    return [_square_id(f"The {kind}'s Square id."), sa.Column("name", sa.Text, doc=f"The {kind}'s name.")]


def _money(prefix: str, of: str) -> list[sa.Column]:
    """A Square money field: its amount in the currency's minor unit and the currency."""
    return [
        sa.Column(f"{prefix}_amount", sa.BigInteger, doc=f"{of} in the currency's minor unit (e.g. cents)."),
        sa.Column(f"{prefix}_currency", sa.String(16), doc=f"The ISO 4217 currency code of {of.lower()}."),
    ]


def _catalog_versioning(kind: str) -> list[sa.Column]:
    """What every Square catalog object carries: its version, last change and deletion flag."""
    return [
        sa.Column(
            "version", sa.BigInteger, nullable=False, doc=f"The {kind}'s version (each change raises it)."
        ),
        _utc("updated_at", f"When the {kind} last changed at Square (or was deleted).", nullable=False),
        sa.Column("is_deleted", sa.Boolean, nullable=False, doc=f"Whether Square deleted the {kind}."),
        _synced_at(),
    ]


def _logikal_dates(kind: str) -> list[sa.Column]:
    """When LogiKal says the object was made and last changed (its Unix-second dates)."""
    return [
        _utc("created_at", f"When the {kind} was created in LogiKal (createdDate)."),
        _utc("changed_at", f"When the {kind} last changed in LogiKal (changedDate)."),
    ]


def _sync_and_tombstone() -> list[sa.Column]:
    """When a sync last wrote a LogiKal row, and when it found it gone (rows are never deleted)."""
    return [
        _synced_at(),
        _utc("deleted_at", "When a sync confirmed the row gone at the source; NULL while listed."),
    ]


# --- bookkeeping -------------------------------------------------------------

sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("stream", sa.String(200), primary_key=True, doc="What the row tracks, e.g. `square/catalog`."),
    sa.Column("watermark", sa.String(64), doc="How far the stream got (an ISO time), or a count or hash."),
    _utc("updated_at", "When the row was last written.", nullable=False),
    comment="Watermarks: each commits in the same transaction as the data it covers.",
)

rejected_records = sa.Table(
    "rejected_records",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True, doc="The system that sent it: LogiKal or Square."),
    sa.Column("object_type", sa.String(64), primary_key=True, doc="The record's kind, e.g. order."),
    sa.Column("id", sa.Text, primary_key=True, doc="The record's id at its source."),
    sa.Column("reason", sa.Text, nullable=False, doc="Why the warehouse could not take it."),
    sa.Column("raw_json", sa.Text, nullable=False, doc="The record as the source last sent it."),
    _utc("first_seen", "When a sync first had to reject it.", nullable=False),
    _utc("last_seen", "When a sync last had to reject it.", nullable=False),
    comment="Records the warehouse could not take (quarantine); a later sync that writes one removes it.",
)

# --- Square ------------------------------------------------------------------

square_locations = sa.Table(
    "square_locations",
    metadata,
    *_square_id_and_name("location"),
    sa.Column("status", sa.String(16), doc="ACTIVE or INACTIVE (Square never deletes a location)."),
    sa.Column("type", sa.String(16), doc="PHYSICAL or MOBILE."),
    sa.Column("timezone", sa.String(64), doc="The location's IANA timezone, e.g. America/Chicago."),
    sa.Column("currency", sa.String(16), doc="The location's ISO 4217 currency code."),
    sa.Column("merchant_id", sa.String(64), doc="The Square merchant (seller) the location belongs to."),
    _utc("created_at", "When the location was created at Square."),
    _synced_at(),
)

square_catalog_categories = sa.Table(
    "square_catalog_categories",
    metadata,
    *_square_id_and_name("category"),
    sa.Column("parent_category_id", sa.String(64), doc="The category it sits in; NULL for a top-level one."),
    *_catalog_versioning("category"),
)

square_catalog_items = sa.Table(
    "square_catalog_items",
    metadata,
    *_square_id_and_name("item"),
    sa.Column("category_id", sa.String(64), doc="The item's first category (square_catalog_categories.id)."),
    sa.Column("is_archived", sa.Boolean, doc="Whether the item is archived (hidden from sale, not deleted)."),
    *_catalog_versioning("item"),
)

square_catalog_variations = sa.Table(
    "square_catalog_variations",
    metadata,
    _square_id("The variation's Square catalog object id (what orders and inventory counts refer to)."),
    sa.Column("item_id", sa.String(64), doc="The item it is a variation of (square_catalog_items.id)."),
    sa.Column("name", sa.Text, doc="The variation's name, e.g. a size."),
    sa.Column("sku", sa.Text, doc="The variation's stock-keeping unit."),
    *_money("price", "The price"),
    *_catalog_versioning("variation"),
)

square_orders = sa.Table(
    "square_orders",
    metadata,
    _square_id("The order's Square id."),
    sa.Column("location_id", sa.String(64), nullable=False, doc="Where it was sold (square_locations.id)."),
    sa.Column("state", sa.String(16), nullable=False, doc="OPEN, COMPLETED, CANCELED or DRAFT."),
    _utc("created_at", "When the order was created at Square.", nullable=False),
    _utc("updated_at", "When the order last changed at Square (the sync's watermark).", nullable=False),
    _utc("closed_at", "When the order was completed or canceled; NULL while open."),
    sa.Column("version", sa.BigInteger, doc="Square's order version, rising with each update; may be NULL."),
    *_money("total", "The order's total"),
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
        doc="The order it belongs to (square_orders.id); the sync replaces an order's items with it.",
    ),
    sa.Column("uid", sa.String(64), primary_key=True, doc="Its uid in the order, or `#<position>`."),
    sa.Column("name", sa.Text, doc="The name it was sold under."),
    sa.Column("quantity", sa.Numeric(20, 5), doc="How many were sold (decimal)."),
    sa.Column("catalog_object_id", sa.String(192), doc="The variation sold; NULL for an ad-hoc item."),
    sa.Column(
        "base_price_amount", sa.BigInteger, doc="The price of one, in the currency's minor unit (e.g. cents)."
    ),
    sa.Column(
        "total_amount", sa.BigInteger, doc="The line's total, in the currency's minor unit (e.g. cents)."
    ),
    sa.Column("currency", sa.String(16), doc="The line total's ISO 4217 currency code."),
)

square_inventory_counts = sa.Table(
    "square_inventory_counts",
    metadata,
    sa.Column("catalog_object_id", sa.String(100), primary_key=True, doc="The variation (or item) counted."),
    sa.Column("location_id", sa.String(100), primary_key=True, doc="Where it is (square_locations.id)."),
    sa.Column("state", sa.String(32), primary_key=True, doc="The stock state, e.g. IN_STOCK or SOLD."),
    sa.Column("catalog_object_type", sa.String(32), doc="The counted object's type, e.g. ITEM_VARIATION."),
    # Square sends up to 26 characters with at most 5 decimals: 26 digits before the point.
    sa.Column("quantity", ExactDecimal(31, 5), nullable=False, doc="How many are in that state."),
    _utc("calculated_at", "When Square calculated the count (the sync's watermark).", nullable=False),
    _synced_at(),
)

# --- LogiKal -----------------------------------------------------------------

logikal_directories = sa.Table(
    "logikal_directories",
    metadata,
    sa.Column("path", sa.String(1000), primary_key=True, doc="The directory's full path, e.g. `Demo/Sub 1`."),
    sa.Column("name", sa.Text, nullable=False, doc="The directory's name as LogiKal lists it."),
    sa.Column("parent_path", sa.String(1000), doc="The path of the directory it sits in; NULL for a root."),
    *_sync_and_tombstone(),
)

logikal_projects = sa.Table(
    "logikal_projects",
    metadata,
    _guid("id", "The project's LogiKal GUID.", primary_key=True),
    sa.Column("directory_path", sa.String(1000), nullable=False, doc="The directory that lists the project."),
    sa.Column("name", sa.Text, nullable=False, doc="The project's name."),
    sa.Column("job_number", sa.Text, doc="The project's job number in LogiKal."),
    sa.Column("offer_number", sa.Text, doc="The project's offer number in LogiKal."),
    sa.Column("person_in_charge", sa.Text, doc="Who is in charge of the project, as LogiKal names them."),
    *_logikal_dates("project"),
    sa.Column("is_deleted", sa.Boolean, nullable=False, doc="LogiKal's own deletion flag (isDeleted)."),
    *_sync_and_tombstone(),
    _utc("contents_synced_at", "When its phases, elevations and parts lists were last synced in full."),
    _utc("contents_changed_at", "The changed_at that sync saw; the project-sync sensor compares the two."),
    sa.Index("ix_logikal_projects_name", "name"),
)

logikal_phases = sa.Table(
    "logikal_phases",
    metadata,
    _guid("project_id", "The project the phase belongs to (logikal_projects.id).", primary_key=True),
    _guid("id", "The phase's GUID, unique per project only (all zeros: the default).", primary_key=True),
    sa.Column("name", sa.Text, doc="The phase's name."),
    sa.Column("description", sa.Text, doc="The phase's description."),
    *_sync_and_tombstone(),
)

logikal_elevations = sa.Table(
    "logikal_elevations",
    metadata,
    _guid("id", "The elevation's LogiKal GUID.", primary_key=True),
    _guid("project_id", "The project it belongs to (logikal_projects.id).", nullable=False),
    _guid("phase_id", "The phase that lists it (logikal_phases.id, with project_id).", nullable=False),
    sa.Column("name", sa.Text, doc="The elevation's name, e.g. P15."),
    _guid("version_id", "The elevation's versionId in LogiKal; a new one refetches its parts list."),
    sa.Column("amount", sa.Float, doc="How many of this elevation the project needs."),
    sa.Column("width", sa.Float, doc="The elevation's width in mm."),
    sa.Column("height", sa.Float, doc="The elevation's height in mm."),
    sa.Column("system_description", sa.Text, doc="The profile system it is built in, as LogiKal names it."),
    sa.Column("user_description", sa.Text, doc="The description a user gave the elevation."),
    *_logikal_dates("elevation"),
    sa.Column("is_in_recycle_bin", sa.Boolean, nullable=False, doc="In the recycle bin (isInRecycleBin)."),
    *_sync_and_tombstone(),
    sa.Index("ix_logikal_elevations_project", "project_id"),
)

logikal_parts_lists = sa.Table(
    "logikal_parts_lists",
    metadata,
    _guid("elevation_id", "The elevation the parts list is of (logikal_elevations.id).", primary_key=True),
    sa.Column(
        "sha256", sa.String(64), doc="SHA-256 of the decoded SQLite file; NULL if none was fetched yet."
    ),
    sa.Column("size_bytes", sa.BigInteger, doc="The decoded file's size in bytes."),
    _guid("elevation_version_id", "The elevation's version_id the file was fetched for; a change refetches."),
    _utc("elevation_changed_at", "The elevation's changed_at the file was fetched for; a change refetches."),
    _utc("fetched_at", "When the file was last fetched (fetch_failed: when it last failed).", nullable=False),
    sa.Column("parse_status", sa.String(16), nullable=False, doc="parsed, partial, invalid or fetch_failed."),
    sa.Column("parse_error", sa.Text, doc="What was missing or wrong; NULL when fully parsed."),
    # Fields of the `Elevations` summary table of the parts list.
    sa.Column("auto_description", sa.Text, doc="AutoDescription of the file's Elevations row."),
    sa.Column("system_code", sa.Text, doc="SystemCode of the file's Elevations row."),
    sa.Column("system_name", sa.Text, doc="SystemName of the file's Elevations row."),
    sa.Column("width_output", sa.Float, doc="Width_Output of the file's Elevations row (in Width_Unit)."),
    sa.Column("height_output", sa.Float, doc="Height_Output of the file's Elevations row (in Height_Unit)."),
    sa.Column("weight_output", sa.Float, doc="Weight_Output of the file's Elevations row (in Weight_Unit)."),
    sa.Column("area_output", sa.Float, doc="Area_Output of the file's Elevations row (in Area_Unit)."),
    sa.Column("color_base_long", sa.Text, doc="ColorBase_Long of the file's Elevations row."),
)

logikal_parts_list_files = sa.Table(
    "logikal_parts_list_files",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True, doc="SHA-256 of the file, its key."),
    sa.Column("size_bytes", sa.BigInteger, nullable=False, doc="The file's size in bytes."),
    sa.Column("content", sa.LargeBinary, nullable=False, doc="The parts list, a SQLite file (decoded)."),
    _utc("stored_at", "When the file was first stored.", nullable=False),
    comment="Parts-list SQLite files by content hash; identical files are stored once.",
)

logikal_elevation_glass = sa.Table(
    "logikal_elevation_glass",
    metadata,
    _guid("elevation_id", "The elevation whose parts list names the glass.", primary_key=True),
    sa.Column("glass_id", sa.String(64), primary_key=True, doc="GlassID from the parts list's Glass table."),
    sa.Column("name", sa.Text, doc="The glass's name from the parts list's Glass table."),
)
