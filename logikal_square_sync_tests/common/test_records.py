"""The shared record validation: a failing record is named by source, kind, id (or start) and field."""

from __future__ import annotations

import json
from typing import Annotated

import msgspec
import pytest

from logikal_square_sync.common.records import Decoder, MalformedRecordError, field_error


class Part(msgspec.Struct):
    size: int
    low: int = 0
    high: int = 0

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise field_error("low", f"{self.low} is above high {self.high}")


class Thing(msgspec.Struct):
    id: Annotated[str, msgspec.Meta(min_length=1)]
    kind: str | None = None
    parts: list[Part] = []


class Page(msgspec.Struct):
    things: list[Thing] = []


class ThirdSourceError(MalformedRecordError):
    pass


PAGES = Decoder(Page, "Third", "thing", kind_of=lambda record: f"{record.get('kind') or 'plain'} thing")
LISTING = Decoder(list[Thing], "Third", "thing", by_position=True, error=ThirdSourceError)


def _error(decoder: Decoder, answer: object) -> MalformedRecordError:
    with pytest.raises(MalformedRecordError) as raised:
        decoder.decode(msgspec.json.encode(answer), call="GET /things")
    return raised.value


def test_a_good_answer_decodes_into_structs() -> None:
    page = PAGES.decode(b'{"things": [{"id": "T-1", "parts": [{"size": 2}]}], "extra": 1}')
    assert page == Page([Thing("T-1", None, [Part(2)])])
    assert LISTING.convert([{"id": "T-2"}]) == [Thing("T-2")]


def test_the_record_is_found_by_the_index_in_the_path_and_the_rest_is_the_field() -> None:
    error = _error(
        PAGES, {"things": [{"id": "T-1"}, {"id": "T-2", "kind": "odd", "parts": [{"size": "big"}]}]}
    )
    assert (error.source, error.kind, error.record_id, error.field, error.call, error.position) == (
        "Third",
        "odd thing",
        "T-2",
        "parts[0].size",
        "GET /things",
        None,
    )
    assert str(error) == (
        "GET /things: malformed Third odd thing 'T-2': field 'parts[0].size': "
        "Expected `int`, got `str` (value 'big')"
    )


def test_missing_fields_and_post_init_problems_name_their_field() -> None:
    missing = _error(PAGES, {"things": [{"id": "T-1", "parts": [{}]}]})
    assert (missing.field, missing.problem) == ("parts[0].size", "missing")
    checked = _error(PAGES, {"things": [{"id": "T-1", "parts": [{"size": 1, "low": 5, "high": 1}]}]})
    assert (checked.field, checked.problem) == ("parts[0].low", "5 is above high 1")
    null = _error(PAGES, {"things": [{"id": "T-1", "parts": [{"size": None}]}]})
    assert null.problem == "missing (null)"


def test_a_record_without_id_is_named_by_how_it_starts_and_in_a_listing_by_position() -> None:
    error = _error(LISTING, [{"id": "T-1"}, {"id": "", "kind": "k"}])
    assert isinstance(error, ThirdSourceError)
    assert (error.record_id, error.position, error.field) == (None, 1, "id")
    start = '{"id":"","kind":"k"}'
    assert str(error).startswith(
        f"GET /things: malformed Third thing (record 1; no id; record starts {start}): "
    )


def test_an_answer_of_the_wrong_shape_is_named_as_the_answer() -> None:
    error = _error(PAGES, {"things": {"id": "T-1"}})
    assert str(error) == (
        "GET /things: malformed Third thing answer: field 'things': Expected `array`, got `object` "
        "(value {'id': 'T-1'})"
    )


def test_a_body_that_is_no_json_raises_json_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        PAGES.decode(b'{"things": [{"id": "T-1"')
