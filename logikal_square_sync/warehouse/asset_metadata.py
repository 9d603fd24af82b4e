"""What an asset page shows of its warehouse tables, derived from `tables.py` (never written twice).

Definition metadata: `dagster/table_name` and `dagster/column_schema` of the asset's main table
(the UI's *Columns* tab), and the schema of any further table it writes. Materialization
metadata: `dagster/row_count` of the main table after the run (the UI plots it over time).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import sqlalchemy as sa

from logikal_square_sync.warehouse.types import UtcDateTime


def column_schema(table: sa.Table) -> dg.TableSchema:
    """The table's columns with their SQL types, descriptions (`doc`), nullability and the primary key."""
    columns = [
        dg.TableColumn(
            name=column.name,
            type=_type(column),
            description=column.doc,
            constraints=dg.TableColumnConstraints(
                nullable=bool(column.nullable) and not column.primary_key,
                unique=bool(column.unique),
            ),
        )
        for column in table.columns
    ]
    key = ", ".join(column.name for column in table.primary_key.columns)
    return dg.TableSchema(columns=columns, constraints=dg.TableConstraints(other=[f"primary key ({key})"]))


def _type(column: sa.Column) -> str:
    if isinstance(column.type, UtcDateTime):
        return "timestamp (UTC)"  # timezone-aware on PostgreSQL, UTC text on SQLite
    return str(column.type).lower()


def table_metadata(table: sa.Table, *more: sa.Table) -> dict[str, Any]:
    """Definition metadata for an asset whose rows live in `table` (and `more`)."""
    metadata: dict[str, Any] = {
        "dagster/table_name": table.name,
        "dagster/column_schema": column_schema(table),
    }
    for other in more:
        metadata[f"columns of {other.name}"] = dg.MetadataValue.table_schema(column_schema(other))
    return metadata


def row_count(
    engine: sa.Engine, table: sa.Table, where: sa.ColumnElement[bool] | None = None
) -> dict[str, int]:
    """`dagster/row_count`: rows in `table` now (of one partition when `where` selects it)."""
    query = sa.select(sa.func.count()).select_from(table)
    if where is not None:
        query = query.where(where)
    with engine.connect() as conn:
        return {"dagster/row_count": conn.execute(query).scalar_one()}
