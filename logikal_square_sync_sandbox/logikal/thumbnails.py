"""Elevation thumbnails: small but real images, drawn from the elevation's shape.

LogiKal renders PNG, JPG or EMF (swagger). The sandbox draws a PNG (frame in
the elevation's aspect ratio and colour, mullions per field) with numpy and
zlib, so no imaging library is needed. JPG and EMF requests get the same PNG
bytes: no client we know of asks for them (the old middleware only fetched
300×300 PNG Interior thumbnails) and they are answered rather than refused so
a spec-following client never breaks on them.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from .tree import Elevation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 4096

_RAL_RGB = {
    "RAL 9016": (241, 240, 234),
    "RAL 7016": (56, 62, 66),
    "RAL 9005": (14, 14, 16),
    "RAL 7021": (47, 50, 52),
    "RAL 9010": (247, 245, 238),
    "RAL 8019": (64, 58, 58),
}


def render_png(elevation: Elevation, width: int, height: int, *, exterior: bool) -> bytes:
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    # Fit the elevation's aspect ratio into the requested box with a margin.
    scale = min((width * 0.9) / elevation.width, (height * 0.9) / elevation.height)
    frame_w = max(int(elevation.width * scale), 3)
    frame_h = max(int(elevation.height * scale), 3)
    left = (width - frame_w) // 2
    top = (height - frame_h) // 2
    color = np.array(_RAL_RGB.get(elevation.color[0], (120, 120, 120)), dtype=np.uint8)
    bar = max(min(frame_w, frame_h) // 20, 1)
    image[top : top + frame_h, left : left + frame_w] = color
    glass = np.array((170, 205, 225) if not exterior else (150, 185, 210), dtype=np.uint8)
    fields = max(elevation.fields, 1)
    inner_w = frame_w - 2 * bar
    if inner_w > fields and frame_h > 2 * bar:
        step = inner_w / fields
        for field in range(fields):
            x0 = left + bar + int(field * step) + (bar // 2 if field else 0)
            x1 = left + bar + int((field + 1) * step) - (bar // 2 if field < fields - 1 else 0)
            if x1 > x0:
                image[top + bar : top + frame_h - bar, x0:x1] = glass
    return encode_png(image)


def encode_png(image: np.ndarray) -> bytes:
    height, width, _ = image.shape
    # Filter type 0 (None) per scanline: a zero byte in front of every row.
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), image.reshape(height, width * 3)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )
