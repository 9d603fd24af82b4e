"""The parts-list parser: summary and glass from a SQLite file, tolerant of what is missing."""

from __future__ import annotations

import hashlib
import sqlite3

from logikal_square_sync.logikal.engine.client.parts_list_parser import (
    INVALID,
    PARSED,
    PARTIAL,
    ParsedPartsList,
    parse_parts_list,
)
from logikal_square_sync_sandbox.logikal import LogikalSandbox, LogikalSandboxConfig

SUMMARY = (
    "Name TEXT, AutoDescription TEXT, SystemCode TEXT, SystemName TEXT, Width_Output REAL, "
    "Height_Output REAL, Weight_Output REAL, Area_Output REAL, ColorBase_Long TEXT"
)


def sqlite_file(*statements: str) -> bytes:
    connection = sqlite3.connect(":memory:")
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
        return connection.serialize()
    finally:
        connection.close()


def _error(parsed: ParsedPartsList) -> str:
    """What a parse that fell short reports (a parse that did not has nothing to say)."""
    assert parsed.parse_error is not None, parsed
    return parsed.parse_error


def test_the_summary_row_is_the_elevations_own_and_glass_is_deduplicated() -> None:
    content = sqlite_file(
        f"CREATE TABLE Elevations ({SUMMARY})",
        "INSERT INTO Elevations VALUES"
        " ('P15.1', 'Door', 'MASL8', 'MasterLine 8', 600, 2100, 40, 1.26, 'RAL 9016'),"
        " ('P15', 'Door', 'MASL8', 'MasterLine 8', 1200, 2100, 80, 2.52, 'RAL 9016')",
        "CREATE TABLE Glass (GlassID INTEGER, Name TEXT, Width REAL)",
        "INSERT INTO Glass VALUES (1, '4/16/4', 500), (2, '44.2/16/4', 600), (1, '4/16/4', 500)",
    )
    parsed = parse_parts_list(content, "P15")
    assert parsed.parse_status == PARSED and parsed.parse_error is None
    assert parsed.sha256 == hashlib.sha256(content).hexdigest() and parsed.size_bytes == len(content)
    assert parsed.summary == {
        "auto_description": "Door",
        "system_code": "MASL8",
        "system_name": "MasterLine 8",
        "width_output": 1200.0,
        "height_output": 2100.0,
        "weight_output": 80.0,
        "area_output": 2.52,
        "color_base_long": "RAL 9016",
    }
    assert parsed.glass == [{"glass_id": "1", "name": "4/16/4"}, {"glass_id": "2", "name": "44.2/16/4"}]


def test_missing_tables_and_columns_are_tolerated_and_named() -> None:
    content = sqlite_file(
        "CREATE TABLE Elevations (Name TEXT, SystemCode TEXT, Width_Output TEXT)",
        "INSERT INTO Elevations VALUES ('P1', 'CS77', 'n/a')",
    )
    parsed = parse_parts_list(content, "P1")
    assert parsed.parse_status == PARTIAL
    assert "Elevations lacks AutoDescription, SystemName" in _error(parsed)
    assert "no Glass table" in _error(parsed)
    assert parsed.summary == {"system_code": "CS77", "width_output": None}
    assert parsed.glass == []
    empty = parse_parts_list(sqlite_file("CREATE TABLE Other (x)"), "P1")
    assert empty.parse_status == PARTIAL and "no Elevations table" in _error(empty)


def test_an_unknown_name_falls_back_to_the_first_row_and_says_so() -> None:
    content = sqlite_file(
        f"CREATE TABLE Elevations ({SUMMARY})",
        "INSERT INTO Elevations (Name, SystemCode) VALUES ('A', 'X'), ('B', 'Y')",
        "CREATE TABLE Glass (GlassID INTEGER, Name TEXT)",
    )
    parsed = parse_parts_list(content, "C")
    assert parsed.summary["system_code"] == "X"
    assert parsed.parse_status == PARTIAL and "no Elevations row named 'C'" in _error(parsed)


def test_bytes_that_are_not_sqlite_are_invalid_with_the_reason() -> None:
    parsed = parse_parts_list(b"Report generation failed: object reference not set", "P1")
    assert parsed.parse_status == INVALID and "not a SQLite database" in _error(parsed)
    assert parsed.sha256 == hashlib.sha256(b"Report generation failed: object reference not set").hexdigest()
    cut = sqlite_file(f"CREATE TABLE Elevations ({SUMMARY})")[:200]  # a SQLite header, then nothing
    assert parse_parts_list(cut, "P1").parse_status == INVALID
    assert parse_parts_list(b"", "P1").parse_status == INVALID


def test_the_sandbox_files_parse_completely() -> None:
    sandbox = LogikalSandbox(LogikalSandboxConfig(parts_list_target_bytes=0))
    for elevation_id in sandbox.all_elevation_ids()[:6]:
        _, project, phase = sandbox.elevation_location(elevation_id)
        elevation = next(e for e in sandbox.elevations(project, phase) if e["id"] == elevation_id)
        parsed = parse_parts_list(sandbox.parts_list_bytes(elevation_id), elevation["name"])
        assert parsed.parse_status == PARSED, parsed.parse_error
        assert parsed.glass and parsed.summary["width_output"] == elevation["width"]


def _sandbox_file() -> tuple[bytes, str]:
    sandbox = LogikalSandbox(LogikalSandboxConfig(parts_list_target_bytes=200_000))
    elevation_id = sandbox.all_elevation_ids()[0]
    _, project, phase = sandbox.elevation_location(elevation_id)
    name = next(e["name"] for e in sandbox.elevations(project, phase) if e["id"] == elevation_id)
    return sandbox.parts_list_bytes(elevation_id), name


def test_a_file_cut_short_is_invalid_by_the_size_its_header_announces() -> None:
    content, name = _sandbox_file()
    pages = len(content) // 4096
    assert parse_parts_list(content, name).parse_status == PARSED
    cut = content[: (pages * 2 // 3) * 4096]  # whole pages: only the header's page count tells
    parsed = parse_parts_list(cut, name)
    assert parsed.parse_status == INVALID and parsed.sha256 == hashlib.sha256(cut).hexdigest()
    assert parsed.parse_error == (
        f"cut short: {len(cut):,} bytes where the SQLite header announces {len(content):,} "
        f"({pages} pages of 4096)"
    )
    longer = parse_parts_list(content + bytes(4096), name)
    assert longer.parse_status == INVALID and _error(longer).startswith("longer than announced")


def test_without_a_valid_size_field_a_file_must_be_whole_pages_and_pass_quick_check() -> None:
    content, name = _sandbox_file()
    # A change counter that differs from version-valid-for: the header's page count is not to be trusted.
    unannounced = content[:24] + (7).to_bytes(4, "big") + content[28:]
    assert parse_parts_list(unannounced, name).parse_status == PARSED
    odd = parse_parts_list(unannounced[:-1000], name)
    assert odd.parse_status == INVALID and "not a whole number of 4096-byte pages" in _error(odd)
    cut = parse_parts_list(unannounced[: len(content) // 2 // 4096 * 4096], name)
    assert cut.parse_status == INVALID and _error(cut).startswith("damaged SQLite database: ")
    assert "invalid page number" in _error(cut) and "\n" not in _error(cut)


def test_a_file_of_the_right_size_with_garbled_pages_fails_quick_check() -> None:
    content, name = _sandbox_file()
    half = len(content) // 2
    garbled = content[:half] + (bytes(range(256)) * len(content))[: len(content) - half]
    assert len(garbled) == len(content) and garbled[:100] == content[:100]
    parsed = parse_parts_list(garbled, name)
    assert parsed.parse_status == INVALID
    assert _error(parsed).startswith("damaged SQLite database: ") and "btreeInitPage" in _error(parsed)
