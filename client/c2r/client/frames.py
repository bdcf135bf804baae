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
# ``encode_frame`` (protobuf encodes every field but the pixels, which are joined in once),
# the daemon's results by ``encode_results`` likewise, and frames are read by
# ``split_frame_data`` (the pixel bytes become views of the received message; protobuf parses
# the rest). The bytes on the wire are plain messages either way: protobuf accepts fields in
# any order, and anything unusual (a repeated plane, a malformed length) is left to protobuf's
# own parser. A batch (protocol 1.2) is its singles back to back inside one field
# (``join_batch``): FrameBatch.frames has ClientMessage.frame's number, ResultBatch.frames
# ServerMessage.result's, so a single's bytes are exactly a batch element's.

_FRAME = pb.ClientMessage.DESCRIPTOR.fields_by_name["frame"].number
FRAME_BATCH = pb.ClientMessage.DESCRIPTOR.fields_by_name["frames"].number
_RESULT = pb.ServerMessage.DESCRIPTOR.fields_by_name["result"].number
RESULT_BATCH = pb.ServerMessage.DESCRIPTOR.fields_by_name["results"].number
assert pb.FrameBatch.DESCRIPTOR.fields_by_name["frames"].number == _FRAME  # what join_batch relies on
assert pb.ResultBatch.DESCRIPTOR.fields_by_name["frames"].number == _RESULT
_PLANE_NUMBERS = {name: pb.Frame.DESCRIPTOR.fields_by_name[name].number for name in PLANE_NAMES}
_PLANES = {number: name for name, number in _PLANE_NUMBERS.items()}
_DATA = pb.Plane.DESCRIPTOR.fields_by_name["data"].number
_RESULT_COLOR = pb.ResultFrame.DESCRIPTOR.fields_by_name["color"].number
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


def _length(parts: list) -> int:
    return sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts)


def _wrapped(number: int, parts: list) -> list:
    """``parts`` (bytes and uint8 arrays) as the body of length-delimited field ``number``."""
    return [_field(number, _length(parts)), *parts]


def _plane_parts(number: int, array: np.ndarray) -> list:
    """Plane field ``number`` holding ``array``: protobuf encodes the header, the pixels stay a view (joined in later)."""
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    header = pb.Plane(dtype=DTYPES[array.dtype.newbyteorder("=")], shape=list(array.shape)).SerializeToString()
    return _wrapped(number, [header, _field(_DATA, little.nbytes), little.reshape(-1).view(np.uint8)])


def encode_frame(index: int, planes: FramePlanes) -> bytes:
    """The ClientMessage carrying frame ``index`` with ``planes`` as bytes in the stream: one copy of the pixels."""
    planes.check(index)
    parts: list = [frame_message(index, planes).SerializeToString()]
    for name, array in planes.arrays():
        parts += _plane_parts(_PLANE_NUMBERS[name], array)
    return b"".join(_wrapped(_FRAME, parts))


def encode_results(results: list[tuple[int, np.ndarray | bytes, bool]], batch: bool) -> bytes:
    """The ServerMessage carrying ``results`` (index, RGB8 image or PNG bytes, preview): a ResultFrame when ``batch`` is
    false (one result), else a ResultBatch; the pixels are copied once, into the message."""
    if not batch and len(results) != 1:
        raise ValueError(f"{len(results)} results without a batch: a ServerMessage holds one ResultFrame")
    singles: list = []
    for index, image, preview in results:
        if isinstance(image, bytes):
            singles += _wrapped(_RESULT, [pb.ResultFrame(index=index, preview=preview, png=image).SerializeToString()])
        else:
            head = pb.ResultFrame(index=index, preview=preview).SerializeToString()
            singles += _wrapped(_RESULT, [head, *_plane_parts(_RESULT_COLOR, np.asarray(image))])
    return b"".join(_wrapped(RESULT_BATCH, singles) if batch else singles)


def join_batch(number: int, singles: list[bytes]) -> bytes:
    """One message whose batch field ``number`` (FRAME_BATCH, RESULT_BATCH) holds ``singles``: single-frame messages
    as encoded (``encode_frame``, or a small message serialised), which are exactly the batch's elements."""
    return b"".join(_wrapped(number, singles))


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


def _split_frame(buf: memoryview, value: int, end: int) -> tuple[bytes, dict[str, memoryview]] | None:
    """The Frame in buf[value:end] without its planes' data, and slot -> data (views of ``buf``); None if unusual."""
    data: dict[str, memoryview] = {}
    frame_parts = []
    for number, start, plane_value, plane_end in _fields(buf, value, end):
        name = _PLANES.get(number)
        if name is None or plane_value < 0:
            frame_parts.append(buf[start:plane_end])
            continue
        if name in data:
            return None  # a plane twice: protobuf merges them
        plane = _fields(buf, plane_value, plane_end)
        payloads = [f for f in plane if f[0] == _DATA]
        if not payloads:  # no bytes (a shared-memory frame's plane): nothing to split off
            frame_parts.append(buf[start:plane_end])
            continue
        if len(payloads) != 1 or payloads[0][2] < 0:
            return None
        data[name] = buf[payloads[0][2] : payloads[0][3]]
        rest = b"".join(buf[s:e] for n, s, v, e in plane if n != _DATA)
        frame_parts.append(_field(number, len(rest)) + rest)
    return b"".join(frame_parts), data


def split_frame_data(raw: bytes) -> tuple[bytes, list[dict[str, memoryview]]] | None:
    """A received ClientMessage ``raw`` carrying a frame or a FrameBatch, as (the same message without its planes'
    data, per frame in order: slot -> data as a view of ``raw``); None if it carries no frame or is anything but
    plain (protobuf then parses ``raw`` itself)."""
    buf = memoryview(raw)
    try:
        top = _fields(buf, 0, len(buf))
        if len(top) != 1 or top[0][0] not in (_FRAME, FRAME_BATCH) or top[0][2] < 0:
            return None
        number, _, value, end = top[0]
        elements = top if number == _FRAME else _fields(buf, value, end)  # a batch's elements are frame fields too
        if any(n != _FRAME or v < 0 for n, _, v, _ in elements):
            return None
        frames, data = [], []
        for _, _, frame_value, frame_end in elements:
            split = _split_frame(buf, frame_value, frame_end)
            if split is None:
                return None
            frames.append(_field(_FRAME, len(split[0])) + split[0])
            data.append(split[1])
    except ValueError:
        return None
    return (frames[0] if number == _FRAME else join_batch(FRAME_BATCH, frames)), data
