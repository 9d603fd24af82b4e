"""What a warehouse column can hold, checked in Python from the column's declared type.

PostgreSQL refuses a string longer than its `varchar(n)`, a number with more
digits before the point than its `numeric(p, s)` allows, an integer beyond
its type's range and a NUL character in text. SQLite takes all of them
silently. `upsert` and `insert_rows` run these checks on SQLite before they
write, so the demo and the tests refuse what production refuses; on
PostgreSQL the database itself refuses, and these checks run only after a
write has failed, to name the rows it refused (`quarantine.py`). The checks
are made once per table from its columns' types, so they cannot drift from
the schema.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

Check = Callable[[Any], str | None]

_INTEGER_BITS = ((sa.BigInteger, 64), (sa.SmallInteger, 16), (sa.Integer, 32))


class ValueRejected(ValueError):
    """A row holds a value its column cannot: what PostgreSQL would refuse, named by table and column."""

    def __init__(self, table: str, reason: str) -> None:
        self.table = table
        self.reason = reason
        super().__init__(f"{table}: {reason}")


def _text_check(name: str, length: int | None) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        if length is not None and len(value) > length:
            return f"{name} has {len(value)} characters; the column holds {length}"
        if "\x00" in value:
            return f"{name} contains a NUL character, which PostgreSQL text cannot hold"
        return None

    return check


def _numeric_check(name: str, precision: int, scale: int) -> Check:
    step = Decimal(1).scaleb(-scale)
    limit = precision - scale  # digits before the point
    # Room for every digit a fitting value has after rounding; one that needs more does not fit.
    context = Context(prec=precision + 1, rounding=ROUND_HALF_UP)

    def check(value: Any) -> str | None:
        if value is None:
            return None
        try:
            number = Decimal(value)
            if not number.is_finite():
                return f"{name} is {value!r}, not a finite number"
            # PostgreSQL rounds to the scale first (half away from zero), then checks the digits.
            rounded = number.quantize(step, context=context)
        except InvalidOperation:
            return f"{name} {value!r} has more than {limit} digits before the point"
        if rounded and rounded.adjusted() >= limit:
            declared = f"numeric({precision}, {scale})"
            return f"{name} {value} has more than {limit} digits before the point ({declared})"
        return None

    return check


def _integer_check(name: str, bits: int) -> Check:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(value: Any) -> str | None:
        if isinstance(value, int) and not low <= value <= high:
            return f"{name} {value} is outside the {bits}-bit integer range"
        return None

    return check


def _check_for(column: sa.Column[Any]) -> Check | None:
    column_type = column.type
    if isinstance(column_type, sa.types.TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, sa.String):  # Text too
        return _text_check(column.name, column_type.length)
    if isinstance(column_type, sa.Float):  # a Numeric subclass; double precision takes any float
        return None
    if isinstance(column_type, sa.Numeric):
        if column_type.precision is None:
            return None
        return _numeric_check(column.name, column_type.precision, column_type.scale or 0)
    for integer_type, bits in _INTEGER_BITS:
        if isinstance(column_type, integer_type):
            return _integer_check(column.name, bits)
    return None


@functools.cache
def _checks(table: sa.Table) -> dict[str, Check]:
    return {column.name: check for column in table.columns if (check := _check_for(column)) is not None}


def row_problem(table: sa.Table, row: Mapping[str, Any]) -> str | None:
    """Why `table` cannot hold `row` (the first column that cannot hold its value), or None."""
    checks = _checks(table)
    for name, value in row.items():
        check = checks.get(name)
        if check is not None and value is not None:
            problem = check(value)
            if problem is not None:
                return problem
    return None


def enforce(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Raises `ValueRejected` for the first row `table` cannot hold, as PostgreSQL would refuse it."""
    for row in rows:
        problem = row_problem(table, row)
        if problem is not None:
            raise ValueRejected(table.name, problem)
