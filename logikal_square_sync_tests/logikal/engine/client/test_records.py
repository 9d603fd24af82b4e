"""Listing records are validated as they arrive; a bad one is named precisely."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from logikal_square_sync.common.records import MalformedRecordError
from logikal_square_sync.logikal.engine.client.errors import LogikalResponseError
from logikal_square_sync.logikal.engine.client.records import ElevationRecord, ProjectRecord, parse_records

PROJECT = {
    "id": "5DDB1393-56EB-4280-9F7E-3C3AEC51483C",
    "name": "DOS22309",
    "createdDate": 1711463060,
    "changedDate": 1756302572,
    "isDeleted": False,
    "jobNumber": "0000003948",
    "offerNumber": "OFF44465 NG",
    "personInCharge": "Nick ",
    "estimated": False,
}


def test_a_project_record_becomes_typed_utc_values() -> None:
    (project,) = parse_records(ProjectRecord, [PROJECT], "GET /projects")
    assert project.id == "5ddb1393-56eb-4280-9f7e-3c3aec51483c"  # GUIDs normalised to lowercase
    assert project.changed_at == datetime(2025, 8, 27, 13, 49, 32, tzinfo=UTC)
    assert project.person_in_charge == "Nick "


def test_milliseconds_are_recognised() -> None:
    (project,) = parse_records(ProjectRecord, [{**PROJECT, "changedDate": 1756302572000}], "GET /projects")
    assert project.changed_at == datetime(2025, 8, 27, 13, 49, 32, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": None}, r"project \(record 0; no id; record starts \{.*\): field 'id': expected a GUID"),
        ({"id": "not-a-guid"}, r"project 'not-a-guid' \(record 0\): field 'id': 'not-a-guid' is not a GUID"),
        ({"changedDate": "2025-01-01"}, r"field 'changedDate': expected Unix seconds"),
        ({"changedDate": True}, r"field 'changedDate': expected Unix seconds"),
        ({"changedDate": -5}, r"field 'changedDate': expected Unix seconds, got negative -5"),
        # Past the year 9999 as seconds and as milliseconds: Python's OverflowError/OSError/ValueError.
        ({"changedDate": 1e17}, r"'changedDate': 1e\+17 is out of range for a date"),
        ({"createdDate": 10**20}, r"'createdDate': 100000000000000000000 is out of range for a date"),
        ({"changedDate": 9e15}, r"'changedDate': 9000000000000000.0 is out of range for a date"),
        ({"changedDate": float("inf")}, r"'changedDate': inf is out of range for a date"),
        ({"name": None}, r"field 'name': missing"),
    ],
)
def test_a_malformed_record_is_named_with_its_field(change, message) -> None:
    with pytest.raises(MalformedRecordError, match=message):
        parse_records(ProjectRecord, [{**PROJECT, **change}], "GET /projects")


def test_the_error_names_source_kind_record_and_field() -> None:
    elevation = {"id": "3E62BFD7-0000-4000-8000-000000000001", "width": 2290.0, "changedDate": "yesterday"}
    with pytest.raises(MalformedRecordError) as raised:
        parse_records(ElevationRecord, [elevation], "GET /elevations")
    error = raised.value
    assert type(error) is MalformedRecordError  # the one error every source raises
    assert (error.source, error.kind, error.record_id, error.field, error.position, error.call) == (
        "LogiKal",
        "elevation",
        "3E62BFD7-0000-4000-8000-000000000001",
        "changedDate",
        0,
        "GET /elevations",
    )
    assert str(error) == (
        "GET /elevations: malformed LogiKal elevation '3E62BFD7-0000-4000-8000-000000000001' (record 0): "
        "field 'changedDate': expected Unix seconds (a number), got 'yesterday'"
    )


def test_lax_json_types_are_taken_as_before() -> None:
    (elevation,) = parse_records(
        ElevationRecord,
        [{"id": PROJECT["id"], "amount": "2", "isInRecycleBin": 1, "versionId": None}],
        "GET /elevations",
    )
    assert (elevation.amount, elevation.is_in_recycle_bin, elevation.version_id) == (2.0, True, None)
    assert elevation.created_at is None


def test_a_listing_that_is_not_a_list_or_repeats_an_id_is_refused() -> None:
    with pytest.raises(LogikalResponseError, match="expected a list"):
        parse_records(ProjectRecord, {"id": 1}, "GET /projects")
    with pytest.raises(MalformedRecordError, match="records 0 and 1 both are"):
        parse_records(ProjectRecord, [PROJECT, PROJECT], "GET /projects", key=lambda p: p.id)
    with pytest.raises(
        MalformedRecordError, match=r"elevation \(record 0; no id; .*Expected `object`, got `str`"
    ):
        parse_records(ElevationRecord, ["x"], "GET /elevations")
