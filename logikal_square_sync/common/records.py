"""API records declared as msgspec Structs, and the one error naming a record that fails them.

Every source declares its API records as typed `msgspec.Struct`s: field
types and `msgspec.Meta` constraints say what a record must be,
`__post_init__` checks what spans fields, and `dec_hook` types convert
values msgspec has no type for (a LogiKal GUID, Unix seconds). msgspec
checks all of that in C while it decodes, so the fast path costs no more
than decoding; only when a record fails does this module decode the answer
a second time, generically, to name the record by its id (or, without one,
by how it starts) in a `MalformedRecordError`. Nothing here imports Dagster.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")

# `Expected `int`, got `str` - at `$.orders[3].version`` -> the problem and the path.
_AT_PATH = re.compile(r"^(?P<problem>.*) - at `(?P<path>\$[^`]*)`$", re.S)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_GOT_NULL = re.compile(r"^Expected `[^`]*`, got `null`$")
# What `field_error` raises in a __post_init__ (msgspec reports those at the record, not the field).
_FIELD_PROBLEM = re.compile(r"^field `(?P<field>[^`]+)`: (?P<problem>.*)$", re.S)
_RECORD_START_CHARS = 120


class MalformedRecordError(ValueError):
    """A record from a source that is not what the source's API promises.

    Names the source (`Square`), the kind (`order`), the record's id (or,
    without one, how it starts), the field (a path within the record, such
    as `line_items[0].quantity`) and what is wrong; `call` is the API call
    that answered it, `position` the record's index in its listing.
    `record` (for the message only) is the record as decoded generically;
    `whole_answer` says the answer itself, not one record in it, is wrong.
    """

    def __init__(
        self,
        source: str,
        kind: str,
        record_id: str | None,
        field: str | None,
        problem: str,
        call: str | None = None,
        *,
        position: int | None = None,
        record: Any = None,
        whole_answer: bool = False,
    ) -> None:
        self.source = source
        self.kind = kind
        self.record_id = record_id
        self.field = field
        self.problem = problem
        self.call = call
        self.position = position
        super().__init__(self._describe(record, whole_answer))

    def _describe(self, record: Any, whole_answer: bool) -> str:
        if whole_answer:
            name = f"{self.kind} answer"
        else:
            notes = [] if self.position is None else [f"record {self.position}"]
            if not self.record_id:
                notes.append(f"no id; record starts {_start(record)}")
            name = f"{self.kind} {self.record_id!r}" if self.record_id else self.kind
            if notes:
                name += f" ({'; '.join(notes)})"
        what = f"field '{self.field}': {self.problem}" if self.field else self.problem
        prefix = f"{self.call}: " if self.call else ""
        return f"{prefix}malformed {self.source} {name}: {what}"


@dataclasses.dataclass(frozen=True)
class Refused:
    """A record left out of an answer because it failed: the error naming it, and the record as sent."""

    error: MalformedRecordError
    record: Any


def json_text(value: Any) -> str:
    """`value` as JSON text, as a rejected record is kept: what JSON has no type for as its str."""
    return msgspec.json.encode(value, enc_hook=str).decode()


def _start(value: Any) -> str:
    try:
        text = msgspec.json.encode(value).decode()
    except TypeError:
        text = repr(value)
    return text[:_RECORD_START_CHARS]


def field_error(field: str, problem: str) -> ValueError:
    """What a `__post_init__` raises, so that the error names `field` (msgspec names only the record)."""
    return ValueError(f"field `{field}`: {problem}")


@dataclasses.dataclass
class Decoder(Generic[T]):
    """Decodes a source's answers into `target` (Structs, lists of them, a page holding them).

    Made once per answer type. A record that fails raises
    `MalformedRecordError` naming `source`, `kind` (or `kind_of(record)`,
    say a catalog object by its `type`), the record's `id_field`, with
    `by_position` its index too (a bare listing, as LogiKal answers), and
    the field. `dec_hook` converts values of the source's own types;
    `error` is the source's subclass of `MalformedRecordError`, if it has one.
    `strict=False` lets it take numbers and booleans sent as strings
    (and 0/1 as booleans), for a source whose JSON types are loose.
    """

    target: type[T]
    source: str
    kind: str
    id_field: str = "id"
    kind_of: Callable[[dict[str, Any]], str] | None = None
    by_position: bool = False
    dec_hook: Callable[[type, Any], Any] | None = None
    error: type[MalformedRecordError] = MalformedRecordError
    strict: bool = True
    _json: msgspec.json.Decoder[T] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._json = msgspec.json.Decoder(self.target, dec_hook=self.dec_hook, strict=self.strict)

    def decode(self, raw: bytes, *, call: str | None = None) -> T:
        """JSON bytes into `target`.

        Raises `json.JSONDecodeError` (as `json.loads` does) when `raw` is no
        JSON at all, say a body cut short, which an HTTP client retries.
        """
        try:
            return self._json.decode(raw)
        except msgspec.ValidationError as error:
            # Only a failed answer is decoded again, generically, to find the record.
            raise _named(error, msgspec.json.decode(raw), self, call) from None
        except msgspec.DecodeError as error:
            json.loads(raw)  # raises json.JSONDecodeError, which the HTTP client retries
            raise ValueError(f"{self.source} answer is not JSON: {error}") from error

    def decode_salvaging(
        self, raw: bytes, records: str, *, call: str | None = None
    ) -> tuple[T, list[Refused]]:
        """As `decode`, but a record that fails is left out of the list `records` and returned refused.

        Costs nothing while every record is valid; only an answer with a bad
        record is decoded again, generically, and converted without it (once
        per bad record). An answer that is wrong as a whole still raises.
        """
        try:
            return self._json.decode(raw), []
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError as error:
            json.loads(raw)  # raises json.JSONDecodeError, which the HTTP client retries
            raise ValueError(f"{self.source} answer is not JSON: {error}") from error
        return self.convert_salvaging(msgspec.json.decode(raw), records, call=call)

    def convert_salvaging(
        self, data: Any, records: str, *, call: str | None = None
    ) -> tuple[T, list[Refused]]:
        """As `convert`, leaving out of the list `records` each record that fails (`decode_salvaging`)."""
        refused: list[Refused] = []
        while True:
            try:
                return msgspec.convert(data, self.target, dec_hook=self.dec_hook, strict=self.strict), refused
            except msgspec.ValidationError as error:
                named = _named(error, data, self, call)
                match = _AT_PATH.match(str(error))
                steps = _STEP.findall(match["path"].removeprefix("$")) if match else []
                listing = data.get(records) if isinstance(data, dict) else None
                if (
                    len(steps) < 2
                    or steps[0][0] != records
                    or not steps[1][1]
                    or not isinstance(listing, list)
                ):
                    raise named from None
                refused.append(Refused(named, listing.pop(int(steps[1][1]))))

    def convert(self, data: Any, *, call: str | None = None) -> T:
        """Already decoded JSON into `target`."""
        try:
            return msgspec.convert(data, self.target, dec_hook=self.dec_hook, strict=self.strict)
        except msgspec.ValidationError as error:
            raise _named(error, data, self, call) from None


def _named(
    error: msgspec.ValidationError, answer: Any, names: Decoder[Any], call: str | None
) -> MalformedRecordError:
    """The error naming the record at the error's path, looked up in a generic decode of the answer."""
    match = _AT_PATH.match(str(error))
    problem, path = (match["problem"], match["path"]) if match else (str(error), "$")
    steps: list[str | int] = [
        int(index) if index else key for key, index in _STEP.findall(path.removeprefix("$"))
    ]
    # The record is the list element the path enters first; the rest of the path is the field.
    record: Any = answer
    position: int | None = None
    field_steps = steps
    for depth, step in enumerate(steps):
        record = _step_into(record, step)
        if isinstance(step, int):
            position, field_steps = step, steps[depth + 1 :]
            break
    field, problem = _field_and_problem(field_steps, problem, record if position is not None else answer)
    kind, record_id = names.kind, None
    if position is not None and isinstance(record, dict):
        if names.kind_of is not None:
            kind = names.kind_of(record)
        candidate = record.get(names.id_field)
        record_id = candidate if isinstance(candidate, str) and candidate else None
    return names.error(
        names.source,
        kind,
        record_id,
        field,
        problem,
        call,
        # Pages name records by id; a bare listing (LogiKal) also by place.
        position=position if names.by_position else None,
        record=record,
        whole_answer=position is None,
    )


def _field_and_problem(steps: list[str | int], problem: str, within: Any) -> tuple[str | None, str]:
    field = _path_text(steps)
    named = _MISSING.match(problem) or _FIELD_PROBLEM.match(problem)
    if named:
        # msgspec reports a missing field, and a __post_init__ its problem, at the record.
        field = f"{field}.{named['field']}" if field else named["field"]
        return field, named.groupdict().get("problem") or "missing"
    if _GOT_NULL.match(problem):
        return field or None, "missing (null)"
    value = _value_at(within, steps)
    if value is not _ABSENT and steps and repr(value) not in problem:
        problem = f"{problem} (value {_short(value)})"
    return field or None, problem


_ABSENT = object()


def _step_into(value: Any, step: str | int) -> Any:
    if isinstance(step, int):
        return value[step] if isinstance(value, list) and step < len(value) else None
    return value.get(step) if isinstance(value, dict) else None


def _value_at(value: Any, steps: list[str | int]) -> Any:
    for step in steps:
        if isinstance(step, int):
            if not (isinstance(value, list) and step < len(value)):
                return _ABSENT
        elif not (isinstance(value, dict) and step in value):
            return _ABSENT
        value = value[step]
    return value


def _path_text(steps: list[str | int]) -> str:
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _RECORD_START_CHARS else text[:_RECORD_START_CHARS] + "..."
