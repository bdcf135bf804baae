"""Is an EXR file completely written? Read from its own structure, never from timing.

Movie Render Queue writes frames from a pool of threads, so a later frame on disk says
nothing about this one, and a size that did not change between two polls may be a writer
that has not been scheduled yet. The file itself says when it is whole: an OpenEXR file is
a header, then an offset table with one entry per chunk, then the chunks, each starting with
its coordinates and its byte count. OpenEXR's writer fills the offset table in last (it holds
zeros until the file is closed), and a writer that copies a finished buffer to disk may stop
anywhere. A file is complete when every offset is set and every chunk it points to, header
and data, lies inside the file. Layout from the OpenEXR file-format spec
("OpenEXR File Layout", openexr.com/en/latest/OpenEXRFileLayout.html).
"""

from __future__ import annotations

import os
import struct

MAGIC = 20000630
SINGLE_PART_TILED, LONG_NAMES, DEEP, MULTI_PART = 0x200, 0x400, 0x800, 0x1000
# Scan lines per chunk for each compression code (OpenEXR spec, "Compression").
LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256}


class Incomplete(Exception):
    """The file ends before its structure does (still being written)."""


def _read_exact(handle, count: int) -> bytes:
    data = handle.read(count)
    if len(data) != count:
        raise Incomplete
    return data


def _read_cstring(handle, limit: int) -> bytes:
    out = bytearray()
    while True:
        byte = _read_exact(handle, 1)
        if byte == b"\0":
            return bytes(out)
        out += byte
        if len(out) > limit:
            raise ValueError(f"attribute name longer than {limit} bytes: not an EXR header")


def _read_header(handle, name_limit: int) -> dict[str, bytes] | None:
    """One header's attributes; None for the empty header that ends a multi-part list."""
    attributes: dict[str, bytes] = {}
    while True:
        name = _read_cstring(handle, name_limit)
        if not name:
            return attributes or None
        _read_cstring(handle, name_limit)  # the attribute's type name
        (size,) = struct.unpack("<i", _read_exact(handle, 4))
        if size < 0:
            raise ValueError(f"attribute {name!r} has a negative size: not an EXR header")
        attributes[name.decode("latin-1")] = _read_exact(handle, size)


def _chunk_count(header: dict[str, bytes], tiled: bool, path: str) -> int:
    if "chunkCount" in header:  # required in multi-part files
        return struct.unpack("<i", header["chunkCount"])[0]
    xmin, ymin, xmax, ymax = struct.unpack("<iiii", header["dataWindow"])
    height, width = ymax - ymin + 1, xmax - xmin + 1
    if tiled:
        tile_x, tile_y, mode = struct.unpack("<IIB", header["tiles"])
        if mode & 0x0F != 0:
            raise ValueError(f"{path}: mip-mapped tiled EXR files are not frames this plugin reads")
        return -(-width // tile_x) * -(-height // tile_y)
    compression = header["compression"][0]
    if compression not in LINES_PER_CHUNK:
        raise ValueError(f"{path}: unknown EXR compression code {compression}; write ZIP, PIZ or uncompressed EXR")
    return -(-height // LINES_PER_CHUNK[compression])


def exr_is_complete(path: str) -> bool:
    """True when the whole EXR is on disk; False while it is still being written.

    A file that cannot be an EXR at all (wrong magic number) raises ValueError: waiting
    would never make it readable.
    """
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as handle:
            magic, version = struct.unpack("<iI", _read_exact(handle, 8))
            if magic != MAGIC:
                raise ValueError(f"{path} is not an OpenEXR file (magic number {magic}); MRQ's EXR output writes these")
            if version & DEEP:
                raise ValueError(f"{path} is a deep EXR file; render flat EXR frames")
            multi_part = bool(version & MULTI_PART)
            name_limit = 255 if version & LONG_NAMES else 31
            headers = []
            while True:
                header = _read_header(handle, name_limit)
                if header is None:
                    break
                headers.append(header)
                if not multi_part:
                    break
            counts = []
            for header in headers:
                tiled = header.get("type", b"").startswith(b"tiled") or (not multi_part and bool(version & SINGLE_PART_TILED))
                counts.append((_chunk_count(header, tiled, path), tiled))
            tables = [struct.unpack(f"<{count}Q", _read_exact(handle, 8 * count)) for count, _ in counts]
            table_end = handle.tell()
            for (_, tiled), offsets in zip(counts, tables):
                # The chunk's own header: [part number] + (y | 4 tile coordinates), then the data size.
                lead = (4 if multi_part else 0) + (16 if tiled else 4)
                for offset in offsets:
                    if offset < table_end or offset + lead + 4 > size:
                        return False  # not filled in yet (zero), or past the end written so far
                    handle.seek(offset + lead)
                    (data_size,) = struct.unpack("<i", _read_exact(handle, 4))
                    if data_size < 0 or offset + lead + 4 + data_size > size:
                        return False
    except Incomplete:
        return False
    except KeyError as missing:
        raise ValueError(f"{path}: the EXR header lacks the required attribute {missing}") from None
    return True
