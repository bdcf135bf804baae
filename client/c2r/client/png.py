"""The project's one PNG encoder: RGB8 frames to PNG bytes or files, all-or-nothing.

Blender's and Unreal's Pythons have no imaging library and Blender saves images only from
the main thread, while zlib is in every Python: an RGB8 PNG is a few lines on top of it, so
the daemon (result frames), the client CLIs and the engine plugins all use this one.
The file appears under its final name only when complete (write to a hidden temporary file
in the same folder, then rename), so a cancelled or crashed run never leaves a half frame
that an image sequence or the Sequencer would pick up.
"""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, level: int = 6) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes (8-bit RGB, no filtering)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"encode_png wants (H, W, 3) uint8, got {image.shape} {image.dtype}")
    height, width, _ = image.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), np.ascontiguousarray(image).reshape(height, width * 3)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bit, colour type 2 = RGB
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _chunk(b"IEND", b"")


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write ``image`` to ``path`` atomically (the folder is created if needed): a reader such as
    an image sequence, the Sequencer or Unreal's Img Media never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = encode_png(image)
    temporary = path.with_name(f".{path.stem}-{uuid.uuid4().hex}.part")
    # os.open honours the umask, unlike tempfile's private 0600 files: frames stay readable by the team.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
