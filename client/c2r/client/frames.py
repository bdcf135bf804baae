"""numpy arrays <-> wire planes and frames (raw little-endian, C order).

The engine plugins reuse these functions, so every check here names the plane, the value it
got and what to send instead: a wrong frame is refused before it costs a network round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from c2r.v1 import coarse2real_pb2 as pb

from .errors import InvalidInput

DTYPES = {np.dtype(np.uint8): pb.UINT8, np.dtype(np.float16): pb.FLOAT16, np.dtype(np.float32): pb.FLOAT32}
NUMPY_DTYPES = {code: dtype for dtype, code in DTYPES.items()}
COLOR_SPACES = {"srgb": pb.SRGB, "linear": pb.LINEAR}
DEPTH_KINDS = {"distance": pb.DISTANCE, "inverse": pb.INVERSE}


def pack_plane(array: np.ndarray, name: str = "plane") -> pb.Plane:
    """One array as a Plane; float64 is narrowed to float32 (the wire has no float64)."""
    return fill_plane(pb.Plane(), array, name)


def fill_plane(plane: pb.Plane, array: np.ndarray, name: str = "plane") -> pb.Plane:
    """Write ``array`` into the Plane message ``plane`` in place (one copy of the pixels into the message)."""
    array = np.asarray(array)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    native = array.dtype.newbyteorder("=")
    if native not in DTYPES:
        raise InvalidInput(f"{name} has dtype {array.dtype}: send uint8, float16 or float32")
    little = np.ascontiguousarray(array, dtype=native.newbyteorder("<"))
    plane.dtype = DTYPES[native]
    plane.shape[:] = array.shape
    plane.data = little.tobytes()
    return plane


def unpack_plane(plane: pb.Plane) -> np.ndarray:
    """A Plane as a read-only array view of its bytes (no copy)."""
    if plane.dtype not in NUMPY_DTYPES:
        raise InvalidInput(f"plane dtype {pb.DType.Name(plane.dtype)} is not one of UINT8, FLOAT16, FLOAT32")
    dtype = NUMPY_DTYPES[plane.dtype].newbyteorder("<")
    shape = tuple(plane.shape)
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow whatever the shape
    data = plane.data  # once: each read of a protobuf bytes field is a copy
    if len(data) != expected:
        raise InvalidInput(f"plane of shape {shape} {dtype.name} needs {expected} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


PLANE_NAMES = ("color", "depth", "normals", "edges")  # wire order (and the shared-memory slot order)


@dataclass
class FramePlanes:
    """One frame's planes as numpy arrays: color (H, W, 3), depth (H, W), normals (H, W, 3), edges (H, W).

    Checked when made: a wrong frame is refused before it costs a round trip. float64 becomes
    float32 (the wire has no float64).
    """

    color: np.ndarray
    depth: np.ndarray | None = None
    normals: np.ndarray | None = None
    edges: np.ndarray | None = None
    color_space: str = "srgb"
    depth_kind: str = "distance"

    def __post_init__(self) -> None:
        for name in PLANE_NAMES:
            array = getattr(self, name)
            if array is not None:
                array = np.asarray(array)
                setattr(self, name, array.astype(np.float32) if array.dtype == np.float64 else array)

    def check(self, index: int) -> "FramePlanes":
        color = self.color
        if color.ndim != 3 or color.shape[2] != 3:
            raise InvalidInput(f"frame {index}: color has shape {color.shape}; send (height, width, 3) RGB")
        for name, array in self.arrays():
            if array.dtype.newbyteorder("=") not in DTYPES:
                raise InvalidInput(f"frame {index}: {name} has dtype {array.dtype}: send uint8, float16 or float32")
        if self.color_space not in COLOR_SPACES:
            raise InvalidInput(f"frame {index}: color_space={self.color_space!r}; choose one of {sorted(COLOR_SPACES)}")
        if (color.dtype == np.uint8) != (self.color_space == "srgb"):
            raise InvalidInput(
                f"frame {index}: {color.dtype} colour with color_space={self.color_space!r}; "
                "send uint8 as 'srgb' or float16/float32 as 'linear'"
            )
        if self.depth_kind not in DEPTH_KINDS:
            raise InvalidInput(f"frame {index}: depth_kind={self.depth_kind!r}; choose one of {sorted(DEPTH_KINDS)}")
        size = color.shape[:2]
        for name, channels in (("depth", None), ("normals", 3), ("edges", None)):
            array = getattr(self, name)
            want = size + ((channels,) if channels else ())
            if array is not None and tuple(array.shape) != want:
                raise InvalidInput(f"frame {index}: {name} has shape {tuple(array.shape)} but the colour is "
                                   f"{size[0]}x{size[1]}: send shape {want}")
        return self

    def arrays(self) -> list[tuple[str, np.ndarray]]:
        """(name, array) of the planes present, in wire order."""
        return [(name, getattr(self, name)) for name in PLANE_NAMES if getattr(self, name) is not None]


def frame_message(index: int, planes: FramePlanes) -> pb.Frame:
    """The Frame message's header fields (no planes): index and the colour and depth conventions."""
    return pb.Frame(index=index, color_space=COLOR_SPACES[planes.color_space], depth_kind=DEPTH_KINDS[planes.depth_kind])


def pack_frame(index: int, planes: FramePlanes) -> pb.Frame:
    """A Frame message carrying ``planes`` as bytes in the stream."""
    planes.check(index)
    frame = frame_message(index, planes)
    for name, array in planes.arrays():
        fill_plane(getattr(frame, name), array, name)
    return frame


def check_message_size(size: int, index: int, limit: int) -> None:
    """Refuse a frame message of ``size`` bytes that the daemon would reject as oversize, with the ways to make it fit."""
    if size > limit:
        raise InvalidInput(
            f"frame {index} is {size / 2**20:.1f} MiB, over the daemon's {limit / 2**20:.0f} MiB message limit: "
            "lower the resolution, send colour as uint8 or half float, or send depth/normals as float16"
        )


# ---------------------------------------------------------------- frames on the wire, pixels outside protobuf
#
# Protobuf (upb) copies a bytes field whenever it is set, serialised, parsed or read: four or
# more copies of a 10 MB 720p frame. So a Realify stream's frames are written by
# ``encode_frame`` (protobuf encodes every field but the pixels, which are joined in once) and
# read by ``split_frame_data`` (the pixel bytes become views of the received message; protobuf
# parses the rest). The bytes on the wire are a plain ClientMessage either way: protobuf
# accepts fields in any order, and anything unusual (a repeated plane, a malformed length) is
# left to protobuf's own parser.

_FRAME = pb.ClientMessage.DESCRIPTOR.fields_by_name["frame"].number
_PLANE_NUMBERS = {name: pb.Frame.DESCRIPTOR.fields_by_name[name].number for name in PLANE_NAMES}
_PLANES = {number: name for name, number in _PLANE_NUMBERS.items()}
_DATA = pb.Plane.DESCRIPTOR.fields_by_name["data"].number
_LEN = 2  # the length-delimited wire type


def serialized(message) -> bytes:
    """The Realify stream's serializer (both ends): a message, or one already encoded (``encode_frame``)."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload_length: int) -> bytes:
    """Tag and length of a length-delimited field."""
    return _varint(number << 3 | _LEN) + _varint(payload_length)


def encode_frame(index: int, planes: FramePlanes) -> bytes:
    """The ClientMessage carrying frame ``index`` with ``planes`` as bytes in the stream: one copy of the pixels."""
    planes.check(index)
    head = frame_message(index, planes).SerializeToString()
    parts: list = [head]
    for name, array in planes.arrays():
        little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        header = pb.Plane(dtype=DTYPES[array.dtype.newbyteorder("=")], shape=list(array.shape)).SerializeToString()
        data = _field(_DATA, little.nbytes)
        parts += [_field(_PLANE_NUMBERS[name], len(header) + len(data) + little.nbytes), header, data, little.reshape(-1).view(np.uint8)]
    frame_length = sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts)
    return b"".join([_field(_FRAME, frame_length), *parts])


def _read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")


def _fields(buf: memoryview, pos: int, end: int) -> list[tuple[int, int, int, int]]:
    """(number, start, value start, end) of each field in buf[pos:end]; value start is -1 unless length-delimited."""
    fields = []
    while pos < end:
        start = pos
        key, pos = _read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        value = -1
        if wire == 0:
            _, pos = _read_varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == _LEN:
            length, value = _read_varint(buf, pos, end)
            pos = value + length
        else:
            raise ValueError(f"wire type {wire}")  # groups: protobuf's parser decides
        if pos > end:
            raise ValueError("field runs past its message")
        fields.append((number, start, value, pos))
    return fields


def split_frame_data(raw: bytes) -> tuple[bytes, dict[str, memoryview]] | None:
    """A received ClientMessage ``raw`` as (the same message without its planes' data, slot -> data as a view
    of ``raw``); None if it carries no frame or is anything but plain (protobuf then parses ``raw`` itself)."""
    buf = memoryview(raw)
    try:
        top = _fields(buf, 0, len(buf))
        frames = [f for f in top if f[0] == _FRAME]
        if len(frames) != 1 or frames[0][2] < 0:
            return None
        data: dict[str, memoryview] = {}
        frame_parts = []
        for number, start, value, end in _fields(buf, frames[0][2], frames[0][3]):
            name = _PLANES.get(number)
            if name is None or value < 0:
                frame_parts.append(buf[start:end])
                continue
            if name in data:
                return None  # a plane twice: protobuf merges them
            plane = _fields(buf, value, end)
            payloads = [f for f in plane if f[0] == _DATA]
            if len(payloads) != 1 or payloads[0][2] < 0:
                return None
            data[name] = buf[payloads[0][2] : payloads[0][3]]
            rest = b"".join(buf[s:e] for n, s, v, e in plane if n != _DATA)
            frame_parts.append(_field(number, len(rest)) + rest)
    except ValueError:
        return None
    frame = b"".join(frame_parts)
    _, start, _, end = frames[0]
    return b"".join([buf[:start], _field(_FRAME, len(frame)), frame, buf[end:]]), data
