"""Every column an asset page lists is described, in the words of `tables.py`."""

from __future__ import annotations

import dagster as dg

from logikal_square_sync.definitions import build_defs
from logikal_square_sync.warehouse.tables import metadata

_MORE_TABLES = "columns of "


def _schemas(node_metadata: dict[str, object]) -> dict[str, dg.TableSchema]:
    """The column schemas an asset's definition metadata shows, by table name."""
    schemas: dict[str, dg.TableSchema] = {}
    main = node_metadata.get("dagster/column_schema")
    if main is not None:
        value = main.schema if isinstance(main, dg.TableSchemaMetadataValue) else main
        assert isinstance(value, dg.TableSchema)
        schemas[str(node_metadata["dagster/table_name"])] = value
    for key, more in node_metadata.items():
        if key.startswith(_MORE_TABLES):
            assert isinstance(more, dg.TableSchemaMetadataValue)
            schemas[key.removeprefix(_MORE_TABLES)] = more.schema
    return schemas


def test_every_column_of_every_asset_page_has_its_tables_py_description() -> None:
    graph = build_defs().resolve_asset_graph()
    shown: set[str] = set()
    for key in graph.get_all_asset_keys():
        for table_name, schema in _schemas(dict(graph.get(key).metadata)).items():
            table = metadata.tables[table_name]
            assert [column.name for column in schema.columns] == list(table.columns.keys())
            for column in schema.columns:
                assert column.description, f"{key.to_user_string()}: {table_name}.{column.name}"
                assert column.description == table.columns[column.name].doc
            shown.add(table_name)
    # Every table an asset writes is shown; the bookkeeping tables belong to no asset.
    assert shown == set(metadata.tables) - {"sync_state", "rejected_records"}


def test_every_warehouse_column_is_described() -> None:
    for table in metadata.sorted_tables:
        for column in table.columns:
            assert column.doc and column.doc.strip(), f"{table.name}.{column.name}"
