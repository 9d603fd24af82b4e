"""Epoch-millisecond timestamps and their RFC 3339 spelling.

The sandbox keeps every timestamp as integer epoch milliseconds (numpy-friendly,
exact comparisons) and spells it the way Square does: milliseconds when there
are any, whole seconds (`…:55Z`) when the millisecond part is zero. Clients
must parse both; the generator makes sure both occur.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_ms(ms: int) -> str:
    text = np.datetime_as_string(np.datetime64(int(ms), "ms"), unit="ms")
    return _trim(str(text))


def format_ms_many(values: np.ndarray | Sequence[int]) -> list[str]:
    """Vectorised `format_ms`: one numpy call per page instead of one per stamp."""
    arr = np.asarray(values, dtype=np.int64)
    if arr.size == 0:
        return []
    texts = np.datetime_as_string(arr.astype("datetime64[ms]"), unit="ms").tolist()
    return [_trim(t) for t in texts]


def _trim(text: str) -> str:
    # numpy spells "YYYY-MM-DDTHH:MM:SS.mmm" without a zone.
    if text.endswith(".000"):
        return text[:-4] + "Z"
    return text + "Z"


class InvalidTime(ValueError):
    pass


def parse_rfc3339_us(text: object) -> int:
    """Parse an RFC 3339 timestamp to epoch microseconds.

    Microseconds, not milliseconds, so that a client's sub-millisecond bound
    is honoured exactly when compared with millisecond stamps. A timestamp
    without an offset is rejected: Square's API is zone-explicit and a naive
    stamp in a client is a bug worth surfacing.
    """
    if not isinstance(text, str) or len(text) < 19 or text[10] not in "Tt":
        raise InvalidTime(f"not an RFC 3339 timestamp: {text!r}")
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise InvalidTime(f"not an RFC 3339 timestamp: {text!r}") from exc
    if value.tzinfo is None:
        raise InvalidTime(f"timestamp without a UTC offset: {text!r}")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def datetime_to_us(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def us_floor_ms(us: int) -> int:
    return us // 1000


def us_ceil_ms(us: int) -> int:
    return -((-us) // 1000)
