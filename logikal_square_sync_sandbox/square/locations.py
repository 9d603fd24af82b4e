"""Seller locations: never deleted, some INACTIVE, no `updated_at` at all."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .generator import LOCATION_NAMES, TIMEZONES, numbered, random_id
from .timefmt import format_ms


@dataclass
class LocationRecord:
    id: str
    name: str
    status: str
    type: str
    timezone: str
    city: str
    state: str
    postal_code: str
    street: str
    currency: str
    created_ms: int
    merchant_id: str
    # Sales tax in basis points; orders at this location are taxed with it.
    tax_rate_bp: int

    def render(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "address": {
                "address_line_1": self.street,
                "locality": self.city,
                "administrative_district_level_1": self.state,
                "postal_code": self.postal_code,
                "country": "US",
            },
            "timezone": self.timezone,
            "capabilities": ["CREDIT_CARD_PROCESSING"],
            "status": self.status,
            "created_at": format_ms(self.created_ms),
            "merchant_id": self.merchant_id,
            "country": "US",
            "language_code": "en-US",
            "currency": self.currency,
            "business_name": "Sandbox Coffee Co.",
            "type": self.type,
            "mcc": "5812",
        }


def make_location(
    rng: random.Random,
    ordinal: int,
    merchant_id: str,
    created_ms: int,
    name: str | None = None,
    status: str = "ACTIVE",
) -> LocationRecord:
    tz, city, state, postal = TIMEZONES[ordinal % len(TIMEZONES)]
    return LocationRecord(
        id=random_id(rng, 13, "L"),
        name=name or numbered(LOCATION_NAMES, ordinal),
        status=status,
        type="MOBILE" if ordinal % 5 == 4 else "PHYSICAL",
        timezone=tz,
        city=city,
        state=state,
        postal_code=postal,
        street=f"{100 + rng.randrange(900)} {numbered(LOCATION_NAMES, ordinal)}",
        currency="USD",
        created_ms=created_ms,
        merchant_id=merchant_id,
        tax_rate_bp=rng.choice((625, 725, 825, 887, 1025)),
    )


def generate_locations(seed: int, count: int, before_ms: int) -> list[LocationRecord]:
    """`count` locations; about one in four INACTIVE, never the first one."""
    rng = random.Random(f"{seed}:locations")
    merchant_id = random_id(rng, 13, "ML")
    inactive_count = min(int(count / 4 + 0.5), max(count - 1, 0))
    inactive = set(rng.sample(range(1, count), inactive_count)) if inactive_count else set()
    out = []
    for k in range(count):
        # Seconds-precise creation stamps, a year or two before the order history starts.
        created = before_ms - rng.randrange(30, 700) * 86_400_000 - rng.randrange(86_400) * 1000
        out.append(
            make_location(rng, k, merchant_id, created, status="INACTIVE" if k in inactive else "ACTIVE")
        )
    return out
