"""Deterministic building blocks for the generated Square data.

Everything an order looks like is a pure function of (seed, index, version):
a splitmix64 hash over numpy arrays gives per-order and per-line "random"
numbers without storing them, so one million orders cost a few numpy columns
and a page of them is rebuilt on demand, identically every time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

_ALPHABET62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_ALPHABET36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Salts keep the hash streams of different fields independent of each other.
SALT_ORDER_ID = 0x1D
SALT_LINE = 0x2E
SALT_UID = 0x3F


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser over a uint64 array (wrapping arithmetic is the point)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def hash_keys(seed: int, *keys: np.ndarray | int) -> np.ndarray:
    """Hash a seed and aligned integer arrays (or scalars) into uint64s."""
    arrays = [np.asarray(k).astype(np.uint64) for k in keys]
    shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
    h = mix64(np.full(shape, seed & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64))
    for a in arrays:
        h = mix64(h ^ a)
    return h


def base62_fixed(values: np.ndarray, width: int) -> list[str]:
    """Encode non-negative integers as fixed-width base62 strings, vectorised."""
    x = np.asarray(values, dtype=np.uint64).copy()
    n = x.size
    if n == 0:
        return []
    digits = np.empty((n, width), dtype=np.uint8)
    base = np.uint64(62)
    for pos in range(width - 1, -1, -1):
        digits[:, pos] = _ALPHABET62[(x % base).astype(np.intp)]
        x //= base
    raw = digits.tobytes().decode("ascii")
    return [raw[i : i + width] for i in range(0, n * width, width)]


def base62_decode(text: str) -> int:
    value = 0
    for ch in text:
        if "0" <= ch <= "9":
            d = ord(ch) - 48
        elif "A" <= ch <= "Z":
            d = ord(ch) - 55
        elif "a" <= ch <= "z":
            d = ord(ch) - 61
        else:
            raise ValueError(f"not base62: {text!r}")
        value = value * 62 + d
    return value


class OrderIdCodec:
    """Order ids that look like Square's (26 random-looking characters) yet
    decode back to the order's row index, so no id→row map is needed at 1M rows.

    The last six characters are an affine scramble of the index modulo 62**6;
    the first twenty are a hash of it, which also serves as a checksum.
    """

    SUFFIX = 6
    MOD = 62**6
    MULT = 0x2F6B1D3  # odd and not a multiple of 31, hence invertible modulo 62**6

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.offset = int(hash_keys(seed, 0xC0DEC)[()] % np.uint64(self.MOD))
        self.inverse = pow(self.MULT, -1, self.MOD)

    def encode(self, index: np.ndarray) -> list[str]:
        idx = np.asarray(index, dtype=np.int64)
        h1 = hash_keys(self.seed, SALT_ORDER_ID, idx)
        h2 = mix64(h1 ^ np.uint64(0xA5A5A5A5A5A5A5A5))
        cap = np.uint64(62**10)
        p1 = base62_fixed(h1 % cap, 10)
        p2 = base62_fixed(h2 % cap, 10)
        # int64 cannot overflow here below ~10**11 rows.
        scrambled = (idx * self.MULT + self.offset) % self.MOD
        p3 = base62_fixed(scrambled.astype(np.uint64), self.SUFFIX)
        return [a + b + c for a, b, c in zip(p1, p2, p3, strict=True)]

    def decode(self, order_id: str) -> int | None:
        if not isinstance(order_id, str) or len(order_id) != 20 + self.SUFFIX:
            return None
        try:
            scrambled = base62_decode(order_id[-self.SUFFIX :])
        except ValueError:
            return None
        index = ((scrambled - self.offset) * self.inverse) % self.MOD
        if self.encode(np.array([index]))[0] != order_id:
            return None
        return index


def line_uids(seed: int, order_index: np.ndarray, slot: np.ndarray) -> list[str]:
    # A line keeps its uid across order versions, as Square's do.
    h1 = hash_keys(seed, SALT_UID, order_index, slot)
    h2 = mix64(h1 ^ np.uint64(0x5A5A5A5A5A5A5A5A))
    # 11 base62 digits hold any 64-bit value.
    return [a + b for a, b in zip(base62_fixed(h1, 11), base62_fixed(h2, 11), strict=True)]


def random_id(rng: random.Random, length: int, prefix: str = "") -> str:
    return prefix + "".join(rng.choice(_ALPHABET36) for _ in range(length - len(prefix)))


LOCATION_NAMES: Sequence[str] = (
    "Main St",
    "Harbor View",
    "Airport Kiosk",
    "Old Town",
    "Riverside",
    "Market Hall",
    "Station Square",
    "Lakeside",
    "University Ave",
    "Mill Creek",
    "Pier 39",
    "Westfield Mall",
)
TIMEZONES: Sequence[tuple[str, str, str, str]] = (
    # timezone, city, state, postal code
    ("America/Chicago", "Chicago", "IL", "60601"),
    ("America/New_York", "New York", "NY", "10001"),
    ("America/Los_Angeles", "San Francisco", "CA", "94103"),
    ("America/Denver", "Denver", "CO", "80202"),
)
CATEGORY_NAMES: Sequence[str] = (
    "Coffee",
    "Tea",
    "Pastries",
    "Sandwiches",
    "Salads",
    "Merch",
    "Beans",
    "Cold Drinks",
    "Breakfast",
    "Desserts",
    "Smoothies",
    "Snacks",
)
ITEM_ADJECTIVES: Sequence[str] = (
    "Classic",
    "House",
    "Iced",
    "Spiced",
    "Organic",
    "Double",
    "Vanilla",
    "Smoked",
    "Wild",
    "Golden",
)
ITEM_NOUNS: Sequence[str] = (
    "Latte",
    "Espresso",
    "Croissant",
    "Bagel",
    "Chai",
    "Muffin",
    "Mocha",
    "Scone",
    "Panini",
    "Cold Brew",
    "Matcha",
    "Brownie",
    "Granola",
    "Wrap",
    "Tote Bag",
)
VARIATION_NAMES: Sequence[str] = ("Regular", "Large", "Small", "Decaf", "Oat Milk", "Extra Shot")


def numbered(names: Sequence[str], k: int) -> str:
    """The k-th name of a list, numbered once the list runs out (keeps names unique)."""
    base = names[k % len(names)]
    return base if k < len(names) else f"{base} {k // len(names) + 1}"
