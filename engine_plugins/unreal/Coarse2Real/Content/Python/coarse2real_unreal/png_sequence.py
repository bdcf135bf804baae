"""Write result frames as a PNG sequence with the standard library alone.

Unreal's bundled Python has no image encoder, and Img Media reads PNG sequences directly,
so an 8-bit RGB PNG (zlib-compressed scanlines with filter type 0) is all the review needs.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def encode_png(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> PNG bytes."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"PNG result frames must be (height, width, 3) uint8, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, width * 3)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b"")


def result_path(folder: str, stem: str, frame: int, digits: int = 4) -> str:
    """``<folder>/<stem>.<frame>.png``, numbered like the coarse frames it replaces."""
    return os.path.join(folder, f"{stem}.{frame:0{digits}d}.png")


def write_png(path: str, image: np.ndarray) -> None:
    """Write through a temporary name so a reader (Img Media) never sees half a file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = path + ".partial"
    with open(partial, "wb") as handle:
        handle.write(encode_png(image))
    os.replace(partial, path)
