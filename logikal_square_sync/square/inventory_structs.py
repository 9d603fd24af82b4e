"""BatchRetrieveInventoryCounts pages decoded into typed counts (msgspec), with the dict path as the judge.

As for orders (`order_structs.py`): turning each count's dict into a row with
the Python checks of `records.inventory_row` cost more than decoding the page
(an inventory page is cheap to fetch, so this was a share of the full sync
worth cutting). msgspec decodes only the fields the warehouse keeps, checks
their JSON types and parses the timestamps in C. Anything it refuses, and any
value it accepts that the dict path would refuse (an empty id or state, a
timestamp without UTC offset, a quantity that is no decimal), sends the whole
page down the dict path, which accepts it or fails naming the record and the
field. Both paths give identical rows for every count both accept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from logikal_square_sync.square.typed_pages import aware, decimal_quantity, decode_typed_page, page_decoder


class Count(msgspec.Struct):
    catalog_object_id: str | None = None
    location_id: str | None = None
    state: str | None = None
    catalog_object_type: str | None = None
    quantity: str | int | None = None
    calculated_at: datetime | None = None


_DECODER = page_decoder("counts", Count)


def _plain(count: Count) -> bool:
    """Whether the dict path would accept this count as it is (else it must judge the page)."""
    if not (count.catalog_object_id and count.location_id and count.state):
        return False
    return aware(count.calculated_at) and decimal_quantity(count.quantity) is not None


def decode_counts_page(raw: bytes) -> dict[str, Any]:
    """A page: typed `Count`s when every count is plain, else the page as dicts.

    Raises ValueError (as `json.loads` does) when the body is no JSON at all.
    """
    return decode_typed_page(raw, _DECODER, "counts", _plain, "BatchRetrieveInventoryCounts")


def count_struct_row(count: Count, synced_at: datetime) -> dict[str, Any]:
    """The row of a plain count: what `records.inventory_row` gives for the same JSON."""
    return {
        "catalog_object_id": count.catalog_object_id,
        "location_id": count.location_id,
        "state": count.state,
        "catalog_object_type": count.catalog_object_type,
        "quantity": Decimal(count.quantity),  # type: ignore[arg-type]
        "calculated_at": count.calculated_at.astimezone(UTC),  # type: ignore[union-attr]
        "synced_at": synced_at,
    }
