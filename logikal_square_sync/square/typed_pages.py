"""What the typed page decoders share (`order_structs.py`, `inventory_structs.py`).

A page decodes into msgspec structs only when the dict path (`records.py`)
would accept every record of it as it is; otherwise the whole page goes down
the dict path as dicts, which accepts it or fails naming the record and the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import orjson


def decimal_quantity(value: str | int | None) -> Decimal | None:
    """A quantity the dict path accepts (a decimal string or an integer, finite), else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        quantity = Decimal(value)
    except InvalidOperation:
        return None
    return quantity if quantity.is_finite() else None


def page_decoder(records: str, record: type) -> msgspec.json.Decoder[Any]:
    """A decoder of pages holding a list of `record` structs under `records`, and a cursor."""
    fields = [(records, list[record] | None, None), ("cursor", str | None, None)]  # type: ignore[valid-type]
    return msgspec.json.Decoder(msgspec.defstruct(f"Page_{records}", fields))


def aware(moment: datetime | None) -> bool:
    return moment is not None and moment.tzinfo is not None


def decode_typed_page(
    raw: bytes,
    decoder: msgspec.json.Decoder[Any],
    records: str,
    plain: Callable[[Any], bool],
    endpoint: str,
) -> dict[str, Any]:
    """The page's `records` typed when every one is `plain`, else the page as dicts; keeps its cursor.

    Raises ValueError (as `json.loads` does) when the body is no JSON at all.
    """
    try:
        page = decoder.decode(raw)
    except msgspec.ValidationError:
        return orjson.loads(raw)
    except msgspec.DecodeError as error:
        raise ValueError(f"{endpoint} page is not JSON: {error}") from error
    found = getattr(page, records) or []
    if not all(plain(record) for record in found):
        return orjson.loads(raw)
    body: dict[str, Any] = {records: found}
    if page.cursor:
        body["cursor"] = page.cursor
    return body
