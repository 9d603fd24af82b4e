"""Typed records of the MBIOE listings (msgspec Structs), validated as they arrive.

A record the sync cannot trust (no id, a date that is not a number) stops
the sync of what contains it with an error naming the call, the record and
the field, before anything is written: writing a half-understood listing
could mark good rows deleted. The style is the one of every source
(`logikal_square_sync/common/records.py`); LogiKal's own value types, GUIDs and
Unix times, are converted by `_dec_hook`, so an error names their field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import msgspec

from logikal_square_sync.common.records import Decoder, MalformedRecordError
from logikal_square_sync.logikal.engine.client.errors import LogikalResponseError

# Unix seconds before this are plausible dates; beyond it a value is milliseconds
# (the old Odoo addon met both, docs/logikal-api.md §7). 1e11 s is the year 5138.
_MILLISECONDS_ABOVE = 100_000_000_000

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class Guid(str):
    """A GUID, normalised to lowercase with hyphens (the API sends uppercase)."""


class UnixTime(datetime):
    """A LogiKal date: Unix seconds or milliseconds in JSON, an aware UTC datetime here."""


def _guid(value: Any) -> Guid:
    if not isinstance(value, str):
        raise TypeError(f"expected a GUID string, got {type(value).__name__}")
    try:
        return Guid(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a GUID") from None


def _unix_time(value: Any) -> UnixTime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected Unix seconds (a number), got {value!r}")
    if value < 0:
        raise ValueError(f"expected Unix seconds, got negative {value!r}")
    seconds = value / 1000 if value >= _MILLISECONDS_ABOVE else value
    try:
        return UnixTime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        # Past the year 9999 (or NaN): Python raises one of three errors, none naming the record.
        # A ValueError here becomes msgspec's ValidationError, which names the record and field.
        raise ValueError(f"{value!r} is out of range for a date (Unix seconds or milliseconds)") from None


_CONVERTERS: dict[type, Callable[[Any], Any]] = {Guid: _guid, UnixTime: _unix_time}


def _dec_hook(type_: type, value: Any) -> Any:
    converter = _CONVERTERS.get(type_)
    if converter is None:
        raise NotImplementedError(f"no conversion to {type_}")
    return converter(value)


class _Record(msgspec.Struct, frozen=True):
    pass


class DirectoryRecord(_Record, frozen=True):
    name: NonEmpty
    path: NonEmpty


class ProjectRecord(_Record, frozen=True):
    id: Guid
    name: str
    created_at: UnixTime | None = msgspec.field(default=None, name="createdDate")
    changed_at: UnixTime | None = msgspec.field(default=None, name="changedDate")
    is_deleted: bool = msgspec.field(default=False, name="isDeleted")
    job_number: str | None = msgspec.field(default=None, name="jobNumber")
    offer_number: str | None = msgspec.field(default=None, name="offerNumber")
    person_in_charge: str | None = msgspec.field(default=None, name="personInCharge")


class PhaseRecord(_Record, frozen=True):
    id: Guid
    name: str | None = None
    description: str | None = None


class ElevationRecord(_Record, frozen=True):
    id: Guid
    version_id: Guid | None = msgspec.field(default=None, name="versionId")
    name: str | None = None
    amount: float | None = None
    width: float | None = None
    height: float | None = None
    system_description: str | None = msgspec.field(default=None, name="systemDescription")
    user_description: str | None = msgspec.field(default=None, name="userDescription")
    created_at: UnixTime | None = msgspec.field(default=None, name="createdDate")
    changed_at: UnixTime | None = msgspec.field(default=None, name="changedDate")
    is_in_recycle_bin: bool = msgspec.field(default=False, name="isInRecycleBin")


R = TypeVar("R", bound=_Record)

_KINDS: dict[type[_Record], tuple[str, str]] = {
    DirectoryRecord: ("directory", "path"),
    ProjectRecord: ("project", "id"),
    PhaseRecord: ("phase", "id"),
    ElevationRecord: ("elevation", "id"),
}


def _decoder(model: type[_Record]) -> Decoder[Any]:
    kind, id_field = _KINDS[model]
    return Decoder(
        list[model],  # type: ignore[valid-type]
        "LogiKal",
        kind,
        id_field=id_field,
        by_position=True,
        dec_hook=_dec_hook,
        # Lax as the pydantic models were: a number or boolean sent as a string still counts.
        strict=False,
    )


_DECODERS = {model: _decoder(model) for model in _KINDS}


def parse_records(model: type[R], data: Any, call: str, *, key: Callable[[R], Any] | None = None) -> list[R]:
    """Validate a listing's `data`; the error names the call, the record's position and id, the field."""
    if not isinstance(data, list):
        raise LogikalResponseError(f"{call}: expected a list in 'data', got {type(data).__name__}")
    decoder = _DECODERS[model]
    records: list[R] = decoder.convert(data, call=call)
    if key is not None:
        seen: dict[Any, int] = {}
        for index, record in enumerate(records):
            identity = key(record)
            if identity in seen:
                raise MalformedRecordError(
                    "LogiKal",
                    decoder.kind,
                    str(identity),
                    decoder.id_field,
                    f"repeats an earlier record (records {seen[identity]} and {index} both are {identity!r})",
                    call,
                    position=index,
                )
            seen[identity] = index
    return records
