"""Typed records of the MBIOE listings, validated as they arrive.

A record the sync cannot trust (no id, a date that is not a number) stops
the sync of what contains it with an error naming the call, the record and
the field, before anything is written: writing a half-understood listing
could mark good rows deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from logikal_square_sync.logikal.engine.errors import LogikalResponseError, MalformedRecordError

# Unix seconds before this are plausible dates; beyond it a value is milliseconds
# (the old Odoo addon met both, docs/logikal-api.md §7). 1e11 s is the year 5138.
_MILLISECONDS_ABOVE = 100_000_000_000


def _guid(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a GUID string, got {type(value).__name__}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a GUID") from None


def _unix_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected Unix seconds (a number), got {value!r}")
    if value < 0:
        raise ValueError(f"expected Unix seconds, got negative {value!r}")
    seconds = value / 1000 if value >= _MILLISECONDS_ABOVE else value
    return datetime.fromtimestamp(seconds, UTC)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {type(value).__name__}")


Guid = Annotated[str, BeforeValidator(_guid)]
OptionalGuid = Annotated[str | None, BeforeValidator(lambda v: None if v is None else _guid(v))]
UnixTime = Annotated[datetime | None, BeforeValidator(_unix_time)]
Text = Annotated[str | None, BeforeValidator(_text)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=False, populate_by_name=True)


class DirectoryRecord(_Record):
    name: str = Field(min_length=1)
    path: str = Field(min_length=1)


class ProjectRecord(_Record):
    id: Guid
    name: str
    created_at: UnixTime = Field(None, alias="createdDate")
    changed_at: UnixTime = Field(None, alias="changedDate")
    is_deleted: bool = Field(False, alias="isDeleted")
    job_number: Text = Field(None, alias="jobNumber")
    offer_number: Text = Field(None, alias="offerNumber")
    person_in_charge: Text = Field(None, alias="personInCharge")


class PhaseRecord(_Record):
    id: Guid
    name: Text = None
    description: Text = None


class ElevationRecord(_Record):
    id: Guid
    version_id: OptionalGuid = Field(None, alias="versionId")
    name: Text = None
    amount: float | None = None
    width: float | None = None
    height: float | None = None
    system_description: Text = Field(None, alias="systemDescription")
    user_description: Text = Field(None, alias="userDescription")
    created_at: UnixTime = Field(None, alias="createdDate")
    changed_at: UnixTime = Field(None, alias="changedDate")
    is_in_recycle_bin: bool = Field(False, alias="isInRecycleBin")


R = TypeVar("R", bound=_Record)


def parse_records(model: type[R], data: Any, call: str, *, key: Callable[[R], Any] | None = None) -> list[R]:
    """Validate a listing's `data`; the error names the call, the record's position and id, the field."""
    if not isinstance(data, list):
        raise LogikalResponseError(f"{call}: expected a list in 'data', got {type(data).__name__}")
    records: list[R] = []
    seen: dict[Any, int] = {}
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise MalformedRecordError(f"{call}: record {index} is a {type(item).__name__}, not an object")
        try:
            record = model.model_validate(item)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in issue['loc']) or 'record'}: {issue['msg']}"
                for issue in error.errors()
            )
            raise MalformedRecordError(
                f"{call}: record {index} (id {item.get('id', item.get('path'))!r}) is malformed: {problems}"
            ) from None
        if key is not None:
            identity = key(record)
            if identity in seen:
                raise MalformedRecordError(
                    f"{call}: records {seen[identity]} and {index} both are {identity!r}"
                )
            seen[identity] = index
        records.append(record)
    return records
