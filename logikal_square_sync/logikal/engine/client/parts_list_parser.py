"""Parts-list files: content hash and parsing (pandas over sqlite3).

LogiKal's parts list is a whole SQLite database per elevation (~71 tables,
0.7–1.7 MB, docs/logikal-api.md §9). We keep the file by its sha256 and lift two things into
warehouse tables: the elevation's summary (`Elevations`) and its glass
(`Glass`). Files from other LogiKal versions may lack tables or columns; what
is missing becomes NULL and is named in `parse_error` with status `partial`.
A file that is not a whole, readable SQLite database gets status `invalid`
and the reason (`damage`): not SQLite at all, shorter or longer than its own
header announces, or failing SQLite's `quick_check`. Whether such a file is a
download gone wrong or broken at the source is the fetcher's call
(`parts_list_fetch`): only the same bytes on two fetches make it `invalid`
in the warehouse.

The API announces no file size (the spec's `data` is a bare base64 string; the
HTTP Content-Length covers the JSON envelope, and httpx already refuses a body
shorter than it). The SQLite header does: its page size times its page count
is the file's length whenever the header's size field is valid (the
version-valid-for number equals the change counter, as in every file SQLite
3.7.0 or later writes). When it is not valid, the length must still be a whole
number of pages, and `quick_check` finds pages that are missing or garbled.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SQLITE_HEADER = b"SQLite format 3\x00"

PARSED = "parsed"
PARTIAL = "partial"
INVALID = "invalid"
FETCH_FAILED = "fetch_failed"
# How `parse_error` of an `invalid` file begins: LogiKal served the same damaged bytes on two fetches.
BROKEN_AT_SOURCE = "broken at the source (the same damaged file on two fetches)"

# Elevations column → warehouse column (logikal_parts_lists).
SUMMARY_COLUMNS: dict[str, str] = {
    "AutoDescription": "auto_description",
    "SystemCode": "system_code",
    "SystemName": "system_name",
    "Width_Output": "width_output",
    "Height_Output": "height_output",
    "Weight_Output": "weight_output",
    "Area_Output": "area_output",
    "ColorBase_Long": "color_base_long",
}
_NUMERIC = {"width_output", "height_output", "weight_output", "area_output"}


@dataclass(frozen=True)
class ParsedPartsList:
    sha256: str
    size_bytes: int
    parse_status: str
    parse_error: str | None
    summary: dict[str, Any] = field(default_factory=dict)
    glass: list[dict[str, Any]] = field(default_factory=list)


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@contextlib.contextmanager
def _open(content: bytes) -> Iterator[sqlite3.Connection]:
    # deserialize() reads the file in memory: no temp file, nothing left behind.
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(content)
        yield connection
    finally:
        connection.close()


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]


def _value(value: Any, column: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if column in _NUMERIC:
        import pandas as pd

        number = pd.to_numeric(value, errors="coerce")
        return None if pd.isna(number) else float(number)
    return str(value)


def _glass_id(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _summary(connection: sqlite3.Connection, tables: set[str], elevation_name: str | None, notes: list[str]):
    if "Elevations" not in tables:
        notes.append("no Elevations table")
        return {}
    present = [column for column in SUMMARY_COLUMNS if column in _columns(connection, "Elevations")]
    missing = [column for column in SUMMARY_COLUMNS if column not in present]
    if missing:
        notes.append(f"Elevations lacks {', '.join(missing)}")
    import pandas as pd

    frame = pd.read_sql_query("SELECT * FROM Elevations", connection)
    if frame.empty:
        notes.append("Elevations is empty")
        return {}
    # Coupled elements carry one row per part; the elevation's own row has its name.
    if "Name" in frame.columns and elevation_name is not None and (frame["Name"] == elevation_name).any():
        row = frame[frame["Name"] == elevation_name].iloc[0]
    else:
        row = frame.iloc[0]
        if len(frame) > 1:
            notes.append(f"no Elevations row named {elevation_name!r}; used the first of {len(frame)}")
    return {
        target: _value(row[source], target) for source, target in SUMMARY_COLUMNS.items() if source in present
    }


def _glass(connection: sqlite3.Connection, tables: set[str], notes: list[str]) -> list[dict[str, Any]]:
    if "Glass" not in tables:
        notes.append("no Glass table")
        return []
    columns = _columns(connection, "Glass")
    if "GlassID" not in columns:
        notes.append("Glass lacks GlassID")
        return []
    name = '"Name"' if "Name" in columns else "NULL AS Name"
    if "Name" not in columns:
        notes.append("Glass lacks Name")
    import pandas as pd

    frame = pd.read_sql_query(f'SELECT "GlassID", {name} FROM Glass', connection)
    rows: dict[str, dict[str, Any]] = {}
    for glass_id, glass_name in zip(frame["GlassID"], frame["Name"], strict=True):
        key = _glass_id(glass_id)
        if key is not None and key not in rows:
            rows[key] = {"glass_id": key, "name": None if glass_name is None else _value(glass_name, "name")}
    return list(rows.values())


_HEADER_BYTES = 100


def _page_size(content: bytes) -> int:
    raw = int.from_bytes(content[16:18], "big")
    return 65536 if raw == 1 else raw


def damage(content: bytes) -> str | None:
    """Why `content` is not a whole SQLite file by its header alone (None: it may be)."""
    size = len(content)
    if not content.startswith(SQLITE_HEADER):
        preview = content[:40].decode("latin-1").strip() or "empty file"
        return f"not a SQLite database (starts with {preview!r})"
    if size < _HEADER_BYTES:
        return f"cut short: {size} bytes, less than the 100-byte SQLite header"
    page_size = _page_size(content)
    if page_size < 512 or page_size & (page_size - 1):
        return f"damaged SQLite header: page size {page_size}"
    pages = int.from_bytes(content[28:32], "big")
    if pages and content[92:96] == content[24:28] and pages * page_size != size:
        announced = pages * page_size
        how = "cut short" if size < announced else "longer than announced"
        return (
            f"{how}: {size:,} bytes where the SQLite header announces {announced:,} "
            f"({pages} pages of {page_size})"
        )
    if size % page_size:
        return f"cut short: {size:,} bytes is not a whole number of {page_size}-byte pages"
    return None


def parse_parts_list(content: bytes, elevation_name: str | None) -> ParsedPartsList:
    """Hash and parse one decoded parts-list file; never raises for bad content."""
    digest, size = content_hash(content), len(content)
    if (reason := damage(content)) is not None:
        return ParsedPartsList(digest, size, INVALID, reason)
    notes: list[str] = []
    # pandas (with numpy) is imported where a file is parsed, in this module's functions: it takes
    # longer to import than the rest of the code location, and nothing else needs it.
    import pandas as pd

    try:
        with _open(content) as connection:
            # A file cut or garbled inside its pages can still answer the queries below from the
            # pages that survived; quick_check walks every page (~20 ms for 1 MB).
            problems = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                # One line for the warehouse and alerts: the messages carry line breaks of their own.
                found = "; ".join(line for problem in problems for line in problem.splitlines() if line)
                return ParsedPartsList(digest, size, INVALID, f"damaged SQLite database: {found}")
            tables = {
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            summary = _summary(connection, tables, elevation_name, notes)
            glass = _glass(connection, tables, notes)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as error:
        return ParsedPartsList(digest, size, INVALID, f"unreadable SQLite database: {error}")
    return ParsedPartsList(
        digest, size, PARTIAL if notes else PARSED, "; ".join(notes) or None, summary=summary, glass=glass
    )
